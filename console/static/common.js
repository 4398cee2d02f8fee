// Shared helpers. Everything shown comes from JSON and is set with textContent: caller
// transcripts are untrusted input and must never become markup.
"use strict";

const hl = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (k === "text") e.textContent = v == null ? "" : String(v);
        else if (k === "cls") e.className = v;
        else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v);
      }
    }
    for (const c of children) if (c != null) e.append(c);   // strings become text nodes
    return e;
  }

  function text(id, value) {
    const e = document.getElementById(id);
    if (e) e.textContent = value == null ? "" : String(value);
  }

  async function api(method, url, body) {
    const opts = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (method !== "GET") {
      opts.headers["X-CSRF-Token"] = csrf();
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body || {});
    }
    const r = await fetch(url, opts);
    if (r.status === 401) { location.href = "/login"; throw new Error("logged out"); }
    const type = r.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await r.json() : await r.text();
    if (!r.ok) {
      const err = new Error(typeof data === "string" ? data : (data.error || r.statusText));
      err.status = r.status;
      throw err;
    }
    return data;
  }

  // A websocket that comes back after a drop (server restart, fell behind, network).
  function live(path, onMessage, onState) {
    let delay = 500;
    function connect() {
      const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + path);
      ws.onopen = () => { delay = 500; onState(true); };
      ws.onmessage = (ev) => { try { onMessage(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
      ws.onclose = () => { onState(false); setTimeout(connect, delay); delay = Math.min(delay * 2, 10000); };
    }
    connect();
  }

  function connBadge(up) {
    const b = document.getElementById("conn");
    b.textContent = up ? "live" : "offline";
    b.className = "badge " + (up ? "on" : "off");
  }

  function secs(s) {
    if (s == null) return "—";
    s = Math.round(s);
    return s < 60 ? s + " s" : Math.floor(s / 60) + " min " + (s % 60) + " s";
  }

  return { el, text, api, live, connBadge, secs, csrf };
})();
