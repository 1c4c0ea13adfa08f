// hostpulse overview: a card per host from the live feed, sparklines of the last 15 minutes.
// The feed brings every host once, then the hosts that changed; a card's history is read
// (GET /hosts/<host>/series) once, when the card first scrolls into view, and then grown
// from the feed: no request per host and refresh.
"use strict";
(function () {
  const hp = window.hostpulse, $ = hp.$;
  const ORDER = { up: 0, stale: 1, down: 2 };
  const WINDOW = 900, STEP = 10;  // the sparklines' 15 minutes, raw tier
  const FETCHES_AT_ONCE = 4;
  const cards = new Map();  // host -> {h, el, fields, spark, previous, loaded}
  let shownOrder = "", observer = null, queue = [], fetching = 0, ticker = null;

  const METRICS = [
    // [field, label, sparkline: value from latest, y range max (null: the data's)]
    ["cpu", "CPU", (l) => l.cpu_percent, 100],
    ["memory", "Memory", (l) => l["virtual_memory.percent"], 100],
    ["disk", "Disk", (l) => { const d = hp.fullestDisk(l); return d && d.value; }, 100],
    ["network", "Network", null, null],
    ["load", "Load", (l) => l["getloadavg.0"], null],
  ];

  function newCard(host) {
    const el = document.createElement("article");
    el.className = "card";
    el.dataset.host = host;
    const title = document.createElement("h3");
    const link = document.createElement("a");
    link.href = "/dashboard/hosts/" + encodeURIComponent(host);
    link.textContent = host;
    const state = document.createElement("span");
    state.className = "state";
    title.append(link, state);
    const dl = document.createElement("dl");
    const fields = { state: state }, spark = {};
    for (const [key, label] of METRICS.concat([["seen", "Seen"]])) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = label;
      dd.dataset.field = key;
      fields[key] = dd;
      dl.append(dt, dd);
      if (key !== "seen") {
        const canvas = document.createElement("canvas");
        canvas.className = "spark";
        canvas.dataset.spark = key;
        dl.append(canvas);
        spark[key] = { canvas: canvas, t: [], v: [] };
      } else {
        dl.append(document.createElement("span"));
      }
    }
    el.append(title, dl);
    const card = { h: null, el: el, fields: fields, spark: spark, previous: null, loaded: false };
    if (observer) observer.observe(el);
    return card;
  }

  // Bytes per second from two consecutive counter values (the change over the change of last_seen).
  function networkRate(card, h) {
    const l = h.latest, recv = l["net_io_counters.bytes_recv"], sent = l["net_io_counters.bytes_sent"];
    if (recv === undefined || sent === undefined) return null;
    const before = card.previous;
    card.previous = { t: h.last_seen, recv: recv, sent: sent };
    if (!before || h.last_seen <= before.t || recv < before.recv || sent < before.sent) return card.rate || null;
    const dt = h.last_seen - before.t;
    card.rate = { recv: (recv - before.recv) / dt, sent: (sent - before.sent) / dt };
    return card.rate;
  }

  function update(card, h) {
    const l = h.latest || {}, f = card.fields, fresh = !card.h || card.h.last_seen !== h.last_seen;
    card.h = h;
    card.el.dataset.state = h.state;
    f.state.textContent = h.state;
    f.cpu.textContent = hp.percent(l.cpu_percent);
    f.memory.textContent = l["virtual_memory.used"] !== undefined
      ? hp.percent(l["virtual_memory.percent"]) + " (" + hp.bytes(l["virtual_memory.used"]) + " of " + hp.bytes(l["virtual_memory.total"]) + ")"
      : hp.percent(l["virtual_memory.percent"]);
    const disk = hp.fullestDisk(l);
    f.disk.textContent = disk ? hp.percent(disk.value) + " " + disk.mount : "–";
    const load = ["getloadavg.0", "getloadavg.1", "getloadavg.2"].map((k) => l[k]);
    f.load.textContent = load[0] === undefined ? "–" : load.map((v) => v === undefined ? "–" : v.toFixed(2)).join(" ");
    const rate = fresh ? networkRate(card, h) : card.rate;
    f.network.textContent = rate ? "↓ " + hp.rate(rate.recv) + " ↑ " + hp.rate(rate.sent) : "–";
    f.seen.textContent = hp.ago(hp.now() - h.last_seen);
    if (!fresh) return;
    for (const [key, , pick] of METRICS) {
      const value = key === "network" ? (rate ? rate.recv + rate.sent : undefined) : pick(l);
      if (value !== undefined && value !== null) push(card.spark[key], h.last_seen, value);
    }
    if (card.el.isConnected) drawCard(card);
  }

  function push(s, t, v) {
    if (s.t.length && t <= s.t[s.t.length - 1]) return;
    s.t.push(t); s.v.push(v);
    const cut = t - WINDOW;
    let i = 0;
    while (i < s.t.length && s.t[i] < cut) i++;
    if (i) { s.t.splice(0, i); s.v.splice(0, i); }
  }

  // A sparkline: our own few lines on a canvas (five uPlot instances a card cost more than
  // the whole overview's budget of 1 s for 100 hosts).
  function draw(s, max) {
    const c = s.canvas, ratio = window.devicePixelRatio || 1;
    const w = c.clientWidth || 80, h = c.clientHeight || 18;
    if (c.width !== w * ratio) { c.width = w * ratio; c.height = h * ratio; }
    const ctx = c.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    c.dataset.points = String(s.t.length);
    if (s.t.length < 2) return;
    const end = hp.now(), start = end - WINDOW;
    const top = max || Math.max(...s.v) * 1.1 || 1;
    ctx.beginPath();
    for (let i = 0; i < s.t.length; i++) {
      const x = ((s.t[i] - start) / WINDOW) * w, y = h - 1 - (Math.min(s.v[i], top) / top) * (h - 2);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    }
    ctx.strokeStyle = "#2f6fb2";
    ctx.lineWidth = 1.25;
    ctx.stroke();
  }
  function drawCard(card) {
    for (const [key, , , max] of METRICS) draw(card.spark[key], max);
  }

  // History, once per card, when it first shows: a few requests at a time.
  function wanted(entries) {
    for (const entry of entries) {
      const card = cards.get(entry.target.dataset.host);
      if (entry.isIntersecting && card && !card.loaded) {
        card.loaded = true;
        queue.push(card);
      }
    }
    pump();
  }
  function pump() {
    while (fetching < FETCHES_AT_ONCE && queue.length) {
      const card = queue.shift();
      fetching++;
      history(card).catch((e) => { card.loaded = e.message === "unauthorized"; })
        .finally(() => { fetching--; pump(); });
    }
  }
  async function history(card) {
    const host = card.el.dataset.host, l = card.h.latest, since = hp.now() - WINDOW;
    const disk = hp.fullestDisk(l);
    const reads = {
      cpu: l.cpu_percent !== undefined && hp.series(host, "cpu_percent", since, STEP),
      memory: l["virtual_memory.percent"] !== undefined && hp.series(host, "virtual_memory.percent", since, STEP),
      disk: disk && hp.series(host, disk.name, since, STEP),
      load: l["getloadavg.0"] !== undefined && hp.series(host, "getloadavg.0", since, STEP),
      recv: l["net_io_counters.bytes_recv"] !== undefined && hp.series(host, "net_io_counters.bytes_recv", since, STEP, true),
      sent: l["net_io_counters.bytes_sent"] !== undefined && hp.series(host, "net_io_counters.bytes_sent", since, STEP, true),
    };
    const keys = Object.keys(reads), values = await Promise.all(keys.map((k) => reads[k] || null));
    const got = Object.fromEntries(keys.map((k, i) => [k, values[i]]));
    if (got.recv && got.sent) {
      const sent = new Map(got.sent[0].map((t, i) => [t, got.sent[1][i]]));
      const t = got.recv[0].filter((x) => sent.has(x));
      got.network = [t, t.map((x) => got.recv[1][got.recv[0].indexOf(x)] + sent.get(x))];
      const last = (s) => s[1].length ? s[1][s[1].length - 1] : undefined;
      if (!card.rate && last(got.recv) !== undefined && last(got.sent) !== undefined) {
        card.rate = { recv: last(got.recv), sent: last(got.sent) };  // until the feed brings two batches
        card.fields.network.textContent = "↓ " + hp.rate(card.rate.recv) + " ↑ " + hp.rate(card.rate.sent);
      }
    }
    for (const key of ["cpu", "memory", "disk", "network", "load"]) {
      if (!got[key]) continue;
      const s = card.spark[key], first = s.t.length ? s.t[0] : Infinity;
      const keep = got[key][0].map((t, i) => [t, got[key][1][i]]).filter(([t]) => t < first);
      s.t = keep.map((p) => p[0]).concat(s.t);
      s.v = keep.map((p) => p[1]).concat(s.v);
    }
    if (card.el.isConnected) drawCard(card);
  }

  function compare(a, b) {
    return (ORDER[a.h.state] - ORDER[b.h.state]) || (a.h.host < b.h.host ? -1 : a.h.host > b.h.host ? 1 : 0);
  }

  // Cards in order (state, then name), filtered; moved only when the order changed.
  function render() {
    const needle = $("#filter").value.trim().toLowerCase();
    const shown = [...cards.values()].filter((c) => c.h.host.includes(needle)).sort(compare);
    const order = shown.map((c) => c.h.host).join("\n");
    if (order !== shownOrder) {
      shownOrder = order;
      $("#hosts").replaceChildren(...shown.map((c) => c.el));
      for (const c of shown) drawCard(c);
    }
  }

  function onHosts(entries) {
    const first = cards.size === 0, started = performance.now();
    for (const h of entries) {
      let card = cards.get(h.host);
      if (!card) { card = newCard(h.host); cards.set(h.host, card); }
      update(card, h);
    }
    render();
    if (first && cards.size) {
      void document.body.offsetHeight;  // layout included in the measure
      const t = hp.timing;
      t.renderMs = performance.now() - started;
      t.cards = cards.size;
      requestAnimationFrame(() => requestAnimationFrame(() => { t.cardsShownAt = performance.now(); }));
    }
  }

  function tick() {
    for (const card of cards.values()) card.fields.seen.textContent = hp.ago(hp.now() - card.h.last_seen);
  }

  hp.onLogin = function () {
    observer = "IntersectionObserver" in window ? new IntersectionObserver(wanted, { rootMargin: "200px" }) : null;
    hp.openLive({}, onHosts);
    if (ticker === null) ticker = setInterval(tick, 1000);
  };
  hp.onLogout = function () {
    if (observer) observer.disconnect();
    observer = null;
    cards.clear();
    queue = [];
    shownOrder = "";
    if (ticker !== null) { clearInterval(ticker); ticker = null; }
    $("#hosts").replaceChildren();
  };
  $("#filter").addEventListener("input", render);
  hp.start();
})();
