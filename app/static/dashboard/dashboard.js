// hostpulse dashboard (issue 14, first slice): our own small script, no framework, no build.
// The token stays in this tab's sessionStorage and goes out only as "Authorization: Bearer".
"use strict";
(function () {
  const KEY = "hostpulse.token";
  const REFRESH_MS = 1000;  // a new batch shows within 2 s of its ack (polling until /ws/live)
  // The agent's default interval is 10 s: stale after three intervals, down after ten.
  const STALE_AFTER = 30, DOWN_AFTER = 100;
  const ORDER = { up: 0, stale: 1, down: 2 };
  const $ = (sel) => document.querySelector(sel);
  let timer = null;

  function showError(text) { $("#error").textContent = text; }

  function loggedOut(message) {
    sessionStorage.removeItem(KEY);
    if (timer !== null) { clearTimeout(timer); timer = null; }
    $("#content").hidden = true;
    $("#logout").hidden = true;
    $("#login").hidden = false;
    showError(message || "");
  }

  async function api(path) {
    const token = sessionStorage.getItem(KEY);
    const resp = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (resp.status === 401 || resp.status === 403) {
      loggedOut(resp.status === 401 ? "The token was refused: check it and log in again."
                                    : "This token may not read hosts: use a viewer or admin token.");
      throw new Error("unauthorized");
    }
    if (!resp.ok) throw new Error(path + ": HTTP " + resp.status);
    return resp.json();
  }

  function stateOf(h, now) {
    if (h.state) return h.state;
    const age = now - h.last_seen;
    return age > DOWN_AFTER ? "down" : age > STALE_AFTER ? "stale" : "up";
  }

  function percent(v) { return v === undefined ? "–" : v.toFixed(1) + " %"; }
  function bytes(v) {
    if (v === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(i ? 1 : 0) + " " + units[i];
  }
  function ago(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 120) return seconds + " s ago";
    if (seconds < 7200) return Math.round(seconds / 60) + " min ago";
    if (seconds < 172800) return Math.round(seconds / 3600) + " h ago";
    return Math.round(seconds / 86400) + " d ago";
  }
  function fullestDisk(latest) {
    let best;
    for (const [name, value] of Object.entries(latest)) {
      const m = /^disk_usage\.(.*)\.percent$/.exec(name);
      if (m && (best === undefined || value > best.value)) best = { mount: m[1], value: value };
    }
    return best;
  }

  function card(h, now) {
    const l = h.latest || {};
    const el = document.createElement("article");
    el.className = "card";
    el.dataset.host = h.host;
    el.dataset.state = stateOf(h, now);
    const title = document.createElement("h3");
    const link = document.createElement("a");
    link.href = "/dashboard/hosts/" + encodeURIComponent(h.host);
    link.textContent = h.host;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = el.dataset.state;
    title.append(link, state);
    const disk = fullestDisk(l);
    const load = ["getloadavg.0", "getloadavg.1", "getloadavg.2"].map((k) => l[k]);
    const rows = [
      ["CPU", percent(l.cpu_percent)],
      ["Memory", l["virtual_memory.used"] !== undefined
        ? percent(l["virtual_memory.percent"]) + " (" + bytes(l["virtual_memory.used"]) + " of " + bytes(l["virtual_memory.total"]) + ")"
        : percent(l["virtual_memory.percent"])],
      ["Disk", disk ? percent(disk.value) + " " + disk.mount : "–"],
      ["Load", load[0] === undefined ? "–" : load.map((v) => v === undefined ? "–" : v.toFixed(2)).join(" ")],
      ["Seen", ago(now - h.last_seen)],
    ];
    const dl = document.createElement("dl");
    for (const [k, v] of rows) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = k; dd.textContent = v;
      dd.dataset.field = k.toLowerCase();
      dl.append(dt, dd);
    }
    el.append(title, dl);
    return el;
  }

  let lastHosts = [];
  function renderOverview() {
    const now = Date.now() / 1000;
    const needle = $("#filter").value.trim().toLowerCase();
    const shown = lastHosts
      .filter((h) => h.host.toLowerCase().includes(needle))
      .map((h) => [stateOf(h, now), h])
      .sort((a, b) => (ORDER[a[0]] - ORDER[b[0]]) || (a[1].host < b[1].host ? -1 : a[1].host > b[1].host ? 1 : 0))
      .map(([, h]) => card(h, now));
    $("#hosts").replaceChildren(...shown);
  }

  async function refreshOverview() {
    const body = await api("/hosts");
    lastHosts = body.hosts;
    renderOverview();
  }

  function hostName() {
    return decodeURIComponent(location.pathname.replace(/^\/dashboard\/hosts\//, "").replace(/\/$/, ""));
  }

  async function refreshHost() {
    const name = hostName();
    $("#host-name").textContent = name;
    const body = await api("/hosts");
    const h = body.hosts.find((x) => x.host === name.toLowerCase());
    const tbody = $("#series tbody");
    if (!h) { showError("No batches from host " + name + " yet."); tbody.replaceChildren(); return; }
    showError("");
    const rows = Object.keys(h.latest).sort().map((series) => {
      const tr = document.createElement("tr");
      tr.dataset.series = series;
      const a = document.createElement("td"), b = document.createElement("td");
      a.textContent = series; b.textContent = String(h.latest[series]); b.className = "num";
      tr.append(a, b);
      return tr;
    });
    const seen = document.createElement("tr");
    seen.innerHTML = "<td>last seen</td><td class=num></td>";
    seen.lastChild.textContent = ago(Date.now() / 1000 - h.last_seen);
    tbody.replaceChildren(seen, ...rows);
  }

  async function tick() {
    timer = null;
    try {
      await (document.body.dataset.page === "host" ? refreshHost() : refreshOverview());
    } catch (e) {
      if (e.message === "unauthorized") return;  // logged out, the form shows why
      showError("Could not reach the service: " + e.message);
    }
    if (sessionStorage.getItem(KEY)) timer = setTimeout(tick, REFRESH_MS);
  }

  function loggedIn() {
    $("#login").hidden = true;
    $("#logout").hidden = false;
    $("#content").hidden = false;
    showError("");
    if (timer !== null) clearTimeout(timer);
    tick();
  }

  $("#login").addEventListener("submit", (event) => {
    event.preventDefault();
    const field = $("#login input[name=token]");
    sessionStorage.setItem(KEY, field.value.trim());
    field.value = "";
    loggedIn();
  });
  $("#logout").addEventListener("click", () => loggedOut(""));
  const filter = $("#filter");
  if (filter) filter.addEventListener("input", renderOverview);
  if (sessionStorage.getItem(KEY)) loggedIn(); else loggedOut("");
})();
