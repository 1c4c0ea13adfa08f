// hostpulse dashboard: what both pages share (login, API reads, the live feed, units).
// Our own small script, no framework, no build. The token stays in this tab's
// sessionStorage and goes out only as "Authorization: Bearer" and as the live feed's first
// message; never in a URL.
"use strict";
window.hostpulse = (function () {
  const KEY = "hostpulse.token";
  const REFUSED = "The token was refused: check it and log in again.";
  const FORBIDDEN = "This token may not read hosts: use a viewer or admin token.";
  const $ = (sel) => document.querySelector(sel);
  const hp = { $, timing: {}, clockOffset: 0, onLogin: null, onLogout: null };
  let socket = null, retry = null;

  hp.token = () => sessionStorage.getItem(KEY);
  hp.showError = (text) => { $("#error").textContent = text; };
  hp.now = () => Date.now() / 1000 + hp.clockOffset;  // the service's clock, as last_seen is

  hp.loggedOut = function (message) {
    sessionStorage.removeItem(KEY);
    hp.closeLive();
    $("#content").hidden = true;
    $("#logout").hidden = true;
    $("#login").hidden = false;
    hp.showError(message || "");
    if (hp.onLogout) hp.onLogout();
  };

  function refused(status) {
    hp.loggedOut(status === 403 ? FORBIDDEN : REFUSED);
    throw new Error("unauthorized");
  }

  hp.api = async function (path) {
    const resp = await fetch(path, { headers: { Authorization: "Bearer " + hp.token() }, cache: "no-store" });
    if (resp.status === 401 || resp.status === 403) refused(resp.status);
    if (!resp.ok) throw new Error(path + ": HTTP " + resp.status);
    return resp.json();
  };

  // One point series ({points, rate}) of GET /hosts/<host>/series as [[ts], [value]].
  // rate=1 asks the service for a counter's per-second rate; an answer that does not say
  // "rate": true and still climbs like a counter is derived here (a service before rate=1).
  hp.series = async function (host, name, since, step, rate) {
    const query = new URLSearchParams({ name: name, since: String(Math.floor(since)), step: String(step) });
    if (rate) query.set("rate", "1");
    const body = await hp.api("/hosts/" + encodeURIComponent(host) + "/series?" + query);
    let points = body.points;
    if (rate && body.rate !== true && looksLikeCounter(points)) points = derive(points);
    return [points.map((p) => p[0]), points.map((p) => p[1])];
  };
  function looksLikeCounter(points) {
    let falls = 0;
    for (let i = 1; i < points.length; i++) if (points[i][1] < points[i - 1][1]) falls++;
    return points.length > 1 && falls <= 1;  // a reset at most
  }
  function derive(points) {
    const out = [];
    for (let i = 1; i < points.length; i++) {
      const dt = points[i][0] - points[i - 1][0], dv = points[i][1] - points[i - 1][1];
      if (dt > 0 && dv >= 0) out.push([points[i][0], dv / dt]);
    }
    return out;
  }

  // The live feed: {"token"} first, then {"type": "hosts", "now", "hosts": [...]} messages.
  hp.openLive = function (first, onHosts) {
    hp.closeLive();
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/live");
    socket = ws;
    ws.onopen = () => ws.send(JSON.stringify(Object.assign({ token: hp.token() }, first)));
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.error) {
        hp.loggedOut(msg.error === "forbidden" ? FORBIDDEN : msg.error === "unauthorized" ? REFUSED : msg.message);
      } else if (msg.type === "hello") {
        hp.showError("");
      } else if (msg.type === "hosts") {
        hp.clockOffset = msg.now - Date.now() / 1000;
        onHosts(msg.hosts);
      }
    };
    ws.onclose = () => {
      if (socket !== ws) return;  // closed on purpose
      socket = null;
      hp.showError("The live feed was lost; reconnecting.");
      retry = setTimeout(() => hp.openLive(first, onHosts), 2000);
    };
  };
  hp.closeLive = function () {
    if (retry !== null) { clearTimeout(retry); retry = null; }
    if (socket !== null) { const ws = socket; socket = null; ws.close(); }
  };

  // Units a person reads.
  hp.percent = (v) => v === undefined || v === null ? "–" : v.toFixed(1) + " %";
  hp.bytes = function (v, suffix) {
    if (v === undefined || v === null) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(i ? 1 : 0) + " " + units[i] + (suffix || "");
  };
  hp.rate = (v) => hp.bytes(v, "/s");
  hp.ago = function (seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 120) return seconds + " s ago";
    if (seconds < 7200) return Math.round(seconds / 60) + " min ago";
    if (seconds < 172800) return Math.round(seconds / 3600) + " h ago";
    return Math.round(seconds / 86400) + " d ago";
  };
  hp.fullestDisk = function (latest) {
    let best;
    for (const [name, value] of Object.entries(latest)) {
      const m = /^disk_usage\.(.*)\.percent$/.exec(name);
      if (m && (best === undefined || value > best.value)) best = { mount: m[1], name: name, value: value };
    }
    return best;
  };
  hp.hostFromPath = () =>
    decodeURIComponent(location.pathname.replace(/^\/dashboard\/hosts\//, "").replace(/\/$/, "")).toLowerCase();

  function loggedIn() {
    $("#login").hidden = true;
    $("#logout").hidden = false;
    $("#content").hidden = false;
    hp.showError("");
    if (hp.onLogin) hp.onLogin();
  }

  hp.start = function () {
    $("#login").addEventListener("submit", (event) => {
      event.preventDefault();
      const field = $("#login input[name=token]");
      sessionStorage.setItem(KEY, field.value.trim());
      field.value = "";
      loggedIn();
    });
    $("#logout").addEventListener("click", () => hp.loggedOut(""));
    if (hp.token()) loggedIn(); else hp.loggedOut("");
  };
  return hp;
})();
