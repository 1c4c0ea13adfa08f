// hostpulse host page: the agent's facts, a uPlot chart per series group, a range picker.
// Each range reads the store tier its step needs (a multiple of 3600 s: hourly, of 300 s:
// 5-minute aggregates, else raw samples); counters are read as rates (rate=1).
"use strict";
(function () {
  const hp = window.hostpulse, $ = hp.$;
  // range (s) -> step (s): about 90-720 points a series
  const RANGES = { 900: 10, 3600: 30, 86400: 300, 604800: 1800, 2592000: 3600 };
  const LIVE_REDRAW = 10;  // s between re-reads of a short range while batches arrive
  const COLORS = ["#1d2330", "#2f6fb2", "#d9822b", "#2a9d4b", "#c62828", "#7b4bb3", "#8c6d1f", "#0f8b8d"];
  const UNITS = {
    percent: (v) => v.toFixed(1) + " %",
    bytes: (v) => hp.bytes(v),
    rate: (v) => hp.rate(v),
    plain: (v) => v.toFixed(2),
  };
  // Axis steps of bytes in powers of two (1, 2, 4 ... 512 KiB, MiB, GiB ...), not of ten.
  const BINARY_STEPS = [0, 1, 2, 3, 4, 5].flatMap((k) => [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].map((m) => m * 1024 ** k));
  const host = hp.hostFromPath();
  let range = 900, generation = 0, groups = [], charts = {}, latest = null, drawnAt = 0;
  hp.charts = charts;  // for the tests: group id -> its uPlot

  // Every chart this host's series allow, from the names of its latest values.
  function groupsOf(l) {
    const names = Object.keys(l), out = [];
    const add = (id, title, unit, series) => {
      series = series.filter((s) => s.name in l);
      if (series.length) out.push({ id: id, title: title, unit: unit, series: series });
    };
    const cores = names.map((n) => /^cpu_percent\.(\d+)$/.exec(n)).filter(Boolean).map((m) => +m[1]).sort((a, b) => a - b);
    add("cpu", "CPU", "percent", [{ name: "cpu_percent", label: "total", width: 2 }]
      .concat(cores.map((c) => ({ name: "cpu_percent." + c, label: "core " + c, width: 1 }))));
    add("memory", "Memory used", "bytes", [{ name: "virtual_memory.used", label: "used" }]);
    add("swap", "Swap used", "bytes", [{ name: "swap_memory.used", label: "used" }]);
    for (const n of names.sort()) {
      const m = /^disk_usage\.(.*)\.percent$/.exec(n);
      if (m) add("disk:" + m[1], "Disk use " + m[1], "percent", [{ name: n, label: m[1] }]);
    }
    add("disk-io", "Disk I/O", "rate", [
      { name: "disk_io_counters.read_bytes", label: "read", rate: true },
      { name: "disk_io_counters.write_bytes", label: "write", rate: true },
    ]);
    add("network", "Network", "rate", [
      { name: "net_io_counters.bytes_recv", label: "received", rate: true },
      { name: "net_io_counters.bytes_sent", label: "sent", rate: true },
    ]);
    add("load", "Load", "plain", [
      { name: "getloadavg.0", label: "1 min" },
      { name: "getloadavg.1", label: "5 min" },
      { name: "getloadavg.2", label: "15 min" },
    ]);
    return out;
  }

  // Series of different timestamps on one x axis: their union, null where one has none.
  function align(list) {
    const xs = [...new Set(list.flatMap((s) => s[0]))].sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    return [xs].concat(list.map(([ts, vs]) => {
      const ys = new Array(xs.length).fill(null);
      ts.forEach((t, i) => { ys[index.get(t)] = vs[i]; });
      return ys;
    }));
  }

  function chartBox(group) {
    const box = document.createElement("section");
    box.className = "chart";
    box.dataset.group = group.id;
    const title = document.createElement("h3");
    title.textContent = group.title;
    const plot = document.createElement("div");
    plot.className = "plot";
    box.append(title, plot);
    return box;
  }

  function draw(group, data, since, until) {
    const box = document.querySelector('.chart[data-group="' + CSS.escape(group.id) + '"]');
    const fmt = UNITS[group.unit];
    const opts = {
      width: Math.max(300, box.clientWidth - 16),
      height: 190,
      scales: {
        x: { time: true, range: () => box.xrange },
        y: group.unit === "percent" ? { range: [0, 100] } : { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [{}, {
        values: (u, splits) => splits.map((v) => v === null ? "" : fmt(v)),
        size: (u, values) => values ? 16 + 7 * Math.max(...values.map((v) => v.length)) : 40,  // the labels whole
        incrs: group.unit === "bytes" || group.unit === "rate" ? BINARY_STEPS : undefined,
      }],
      series: [{ value: (u, ts) => ts === null ? "–" : new Date(ts * 1000).toLocaleString() }].concat(
        group.series.map((s, i) => ({
          label: s.label,
          stroke: COLORS[i % COLORS.length],
          width: s.width || 1.5,
          value: (u, v) => v === null || v === undefined ? "–" : fmt(v),
        })),
      ),
    };
    box.xrange = [since, until];
    const old = charts[group.id];
    if (old && old.series.length === data.length) {
      old.setData(data);  // a re-read of the same range: the cursor and legend stay
    } else {
      if (old) old.destroy();
      charts[group.id] = new uPlot(opts, data, box.querySelector(".plot"));
    }
    box.dataset.points = String(data.slice(1).reduce((n, ys) => n + ys.filter((v) => v !== null).length, 0));
    box.dataset.range = String(range);
  }

  async function drawAll() {
    const mine = ++generation, step = RANGES[range], until = hp.now(), since = until - range;
    document.body.dataset.drawn = "";
    drawnAt = until;
    await Promise.all(groups.map(async (group) => {
      const list = await Promise.all(group.series.map((s) => hp.series(host, s.name, since, step, s.rate)));
      if (mine === generation) draw(group, align(list), since, until);
    }));
    if (mine === generation) document.body.dataset.drawn = String(range);
  }

  function facts(h) {
    const l = h.latest, rows = [
      ["State", h.state],
      ["Last seen", hp.ago(hp.now() - h.last_seen) + " (" + new Date(h.last_seen * 1000).toLocaleString() + ")"],
      ["Dropped samples", String(h.dropped)],
      ["Series", String(Object.keys(l).length)],
    ];
    if (l.boot_time) rows.push(["Up since", new Date(l.boot_time * 1000).toLocaleString()]);
    if (l.pids !== undefined) rows.push(["Processes", String(l.pids)]);
    $("#facts").replaceChildren(...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = k; dd.textContent = v;
      dd.dataset.fact = k.toLowerCase().replace(/ /g, "-");
      return [dt, dd];
    }));
    $("#host-state").textContent = h.state;
    document.body.dataset.state = h.state;
    const rowsOfSeries = Object.keys(l).sort().map((series) => {
      const tr = document.createElement("tr");
      tr.dataset.series = series;
      const a = document.createElement("td"), b = document.createElement("td");
      a.textContent = series; b.textContent = String(l[series]); b.className = "num";
      tr.append(a, b);
      return tr;
    });
    $("#series tbody").replaceChildren(...rowsOfSeries);
  }

  function onHosts(entries) {
    const h = entries.find((e) => e.host === host);
    if (!h) return;
    const fresh = !latest || h.last_seen !== latest.last_seen;
    latest = h;
    facts(h);
    if (fresh && range <= 3600 && hp.now() - drawnAt >= LIVE_REDRAW && document.body.dataset.drawn) drawAll();
  }

  function pick(seconds) {
    range = seconds;
    for (const b of document.querySelectorAll("#ranges button")) b.setAttribute("aria-pressed", String(+b.dataset.range === range));
    drawAll().catch((e) => { if (e.message !== "unauthorized") hp.showError("Could not read the series: " + e.message); });
  }

  hp.onLogin = async function () {
    $("#host-name").textContent = host;
    let body;
    try {
      body = await hp.api("/hosts");
    } catch (e) {
      if (e.message !== "unauthorized") hp.showError("Could not reach the service: " + e.message);
      return;
    }
    const h = body.hosts.find((x) => x.host === host);
    if (!h) { hp.showError("No batches from host " + host + " yet."); return; }
    latest = h;
    facts(h);
    groups = groupsOf(h.latest);
    $("#charts").replaceChildren(...groups.map(chartBox));
    pick(range);
    hp.openLive({ hosts: [host] }, onHosts);
  };
  hp.onLogout = function () {
    generation++;
    for (const id of Object.keys(charts)) { charts[id].destroy(); delete charts[id]; }
    $("#charts").replaceChildren();
  };
  for (const b of document.querySelectorAll("#ranges button")) b.addEventListener("click", () => pick(+b.dataset.range));
  window.addEventListener("resize", () => {
    for (const [id, u] of Object.entries(charts)) {
      const box = document.querySelector('.chart[data-group="' + CSS.escape(id) + '"]');
      u.setSize({ width: Math.max(300, box.clientWidth - 16), height: 190 });
    }
  });
  hp.start();
})();
