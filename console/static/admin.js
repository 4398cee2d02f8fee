// Admin page: the live board over a websocket, the callbacks owed, queue controls, routing
// parameters, skill advisor and audit log.
"use strict";

(() => {
  const { el, text, api, live, connBadge, secs } = hl;
  // The board's times carry the centre's offset, the audit log's are UTC: show both on the
  // screen's clock so they compare.
  const clock = (iso) => new Date(iso).toTimeString().slice(0, 8);
  const SVG = "http://www.w3.org/2000/svg";
  let groupsSeen = "";

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = String(v); else e.setAttribute(k, String(v));
    }
    for (const c of children) e.append(c);
    return e;
  }

  // Calls per 15 minutes as bars, mean wait as a line (own scale on the right).
  function plot(series) {
    const W = 360, H = 110, L = 26, R = 30, T = 8, B = 18;
    const n = Math.max(series.length, 1), bw = (W - L - R) / n;
    const maxCalls = Math.max(1, ...series.map((s) => s.calls));
    const maxWait = Math.max(1, ...series.map((s) => s.mean_wait_s || 0));
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot", role: "img" });
    g.append(svg("title", { text: "calls and mean wait per 15 minutes" }));
    series.forEach((s, i) => {
      const h = (H - T - B) * s.calls / maxCalls;
      if (s.calls) g.append(svg("rect", { x: L + i * bw + 1, y: H - B - h, width: Math.max(1, bw - 2), height: h, class: "bar" },
                   svg("title", { text: `${s.t}: ${s.calls} calls, ${s.answered} answered, ${s.abandoned} abandoned` })));
      if (i % 8 === 0) g.append(svg("text", { x: L + i * bw, y: H - 4, class: "axis", text: s.t }));
    });
    const pts = series.map((s, i) => s.mean_wait_s == null ? null :
      `${L + i * bw + bw / 2},${H - B - (H - T - B) * s.mean_wait_s / maxWait}`).filter(Boolean);
    if (pts.length) g.append(svg("polyline", { points: pts.join(" "), class: "waitline" }));
    g.append(svg("text", { x: 2, y: T + 8, class: "axis", text: maxCalls }));
    g.append(svg("text", { x: W - R + 3, y: T + 8, class: "axis wait", text: Math.round(maxWait) + "s" }));
    return g;
  }

  function stat(label, value, cls) {
    return el("div", { cls: "stat " + (cls || "") }, el("span", { cls: "v", text: value }), el("span", { cls: "l", text: label }));
  }
  const pct = (x) => x == null ? "—" : Math.round(x * 100) + "%";

  async function member(op, queue, m, extra) {
    try {
      await api("POST", "/api/admin/member", Object.assign({ op, queue, interface: m.interface, member: m.name || "" }, extra || {}));
      text("action-result", `${op} ${m.name || m.interface} in ${queue}: done`);
    } catch (e) { text("action-result", `${op} failed: ${e.message}`); }
    refreshAudit();
  }

  function memberRow(q, m) {
    const pen = el("input", { type: "number", min: "0", value: m.penalty, cls: "narrow", "aria-label": "penalty" });
    const state = m.paused ? "paused" + (m.reason ? " (" + m.reason + ")" : "") : m.busy ? "on call" : "available";
    return el("tr", { "data-member": m.name, "data-queue": q, "data-sig": JSON.stringify(m) },
      el("td", { cls: "who" }, m.name, el("span", { cls: "iface mono", text: m.interface })),
      el("td", null, el("span", { cls: "badge " + (m.paused ? "paused" : m.busy ? "busy" : "on"), text: state })),
      el("td", null, pen, el("button", { type: "button", cls: "small", text: "set", onclick: () => member("penalty", q, m, { penalty: Number(pen.value) }) })),
      el("td", { cls: "acts" },
        m.paused ? el("button", { type: "button", cls: "small", text: "resume", onclick: () => member("resume", q, m) })
                 : el("button", { type: "button", cls: "small", text: "pause", onclick: () => member("pause", q, m, { reason: "supervisor" }) }),
        el("button", { type: "button", cls: "small danger", text: "remove", onclick: () => { if (confirm(`Remove ${m.name} from ${q}?`)) member("remove", q, m); } })));
  }

  // Put exactly `wanted` into `parent`, in order, moving or removing only what differs: a
  // node that stays is never detached, so a half-typed penalty, the focus and a click in
  // progress survive the board's updates (several a second when calls come and go).
  function reconcile(parent, wanted) {
    wanted.forEach((node, i) => { if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null); });
    while (parent.children.length > wanted.length) parent.lastElementChild.remove();
  }

  function groupCard(queue) {
    const card = el("article", { cls: "card group", id: "group-" + queue });
    card.hl = { title: el("h2"), stats: el("div", { cls: "stats" }), plot: el("div", { cls: "plotbox" }),
                rows: el("tbody"), series: "" };
    card.append(el("div", { cls: "row" }, card.hl.title, el("span", { cls: "muted mono", text: queue })),
                card.hl.stats, card.hl.plot, el("table", { cls: "table small members" }, card.hl.rows));
    return card;
  }

  function updateGroup(card, g, b) {
    const h = card.hl;
    h.title.textContent = g.group;
    h.stats.replaceChildren(
      stat("waiting", g.waiting, g.waiting ? "warn" : ""), stat("longest wait", secs(g.longest_wait_s)),
      stat("available", g.agents.available), stat("on call", g.agents.on_call),
      stat("wrap-up", g.agents.wrap_up), stat("paused", g.agents.paused),
      stat("phone offline", g.agents.unavailable, g.agents.unavailable ? "warn" : ""),
      stat("ASA", secs(g.asa_s)), stat(`SL ${b.service_level_s}s`, pct(g.service_level)),
      stat("abandoned today", `${g.abandoned} (${pct(g.abandon_rate)})`),
      stat("timed out to another queue", g.timed_out));
    const series = JSON.stringify(g.series);
    if (series !== h.series) { h.series = series; h.plot.replaceChildren(plot(g.series)); }
    const old = new Map([...h.rows.children].map((tr) => [tr.dataset.member, tr]));
    reconcile(h.rows, g.members.map((m) => {
      const tr = old.get(m.name);
      if (tr && tr.dataset.sig === JSON.stringify(m)) return tr;   // unchanged: keep it as it is
      const fresh = memberRow(g.queue, m);
      const typed = tr && tr.querySelector("input");
      // The member changed under an edit (e.g. went on a call): keep what was being typed.
      if (typed && (typed === document.activeElement || typed.value !== typed.getAttribute("value"))) {
        fresh.querySelector("input").value = typed.value;
      }
      return fresh;
    }));
  }

  function renderBoard(b) {
    text("board-at", "as of " + clock(b.at));
    const root = document.getElementById("board");
    const cards = new Map([...root.children].map((c) => [c.id, c]));
    reconcile(root, b.groups.map((g) => {
      const card = cards.get("group-" + g.queue) || groupCard(g.queue);
      updateGroup(card, g, b);
      return card;
    }));
    const names = b.groups.map((g) => g.queue).join(",");
    if (names !== groupsSeen) {
      groupsSeen = names;
      document.getElementById("add-queue").replaceChildren(...b.groups.map((g) => el("option", { value: g.queue, text: g.group })));
    }
  }

  document.getElementById("add-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = (id) => document.getElementById(id).value.trim();
    member("add", v("add-queue"), { name: v("add-member"), interface: v("add-interface") }, { penalty: Number(v("add-penalty") || 0) });
  });

  async function loadParams() {
    try {
      const p = await api("GET", "/api/admin/params");
      const props = p.schema.properties;
      document.getElementById("params-fields").replaceChildren(...Object.entries(p.params).map(([k, v]) => {
        const typ = props[k] && props[k].type;
        const input = typ === "boolean" ? el("input", { type: "checkbox", id: "p-" + k, "data-type": typ })
          : el("input", { type: "number", step: typ === "integer" ? "1" : "any", id: "p-" + k, value: v, "data-type": typ, cls: "narrow" });
        if (typ === "boolean") input.checked = v;
        return el("label", { title: (props[k] && props[k].description) || "" }, k, " ", input);
      }));
    } catch (e) { text("params-result", e.message); }
  }

  document.getElementById("params-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const i of document.querySelectorAll("#params-fields input")) {
      const k = i.id.slice(2), t = i.dataset.type;
      body[k] = t === "boolean" ? i.checked : t === "integer" ? parseInt(i.value, 10) : parseFloat(i.value);
    }
    try {
      const r = await api("POST", "/api/admin/params", body);
      const n = Object.keys(r.changed).length;
      text("params-result", n ? "applied: " + Object.keys(r.changed).join(", ") : "no change");
    } catch (e) { text("params-result", "refused: " + e.message); }
    refreshAudit();
  });

  function renderAdvisor(a) {
    const s = a.running ? "simulating…" : a.error ? "failed: " + a.error :
      a.summary ? `ASA ${a.summary.baseline_asa_s}s → ${a.summary.final_asa_s}s with ${a.summary.k} change(s)` : "no proposals yet";
    text("advisor-status", s);
    document.getElementById("advisor-rows").replaceChildren(...a.proposals.map((p) => el("tr", null,
      el("td", { cls: "mono small", text: p.skills_before }), el("td", { text: `${p.queue} (proficiency ${p.proficiency})` }),
      el("td", { text: p.member || "nobody" }), el("td", { text: `${p.asa_before_s}s → ${p.asa_after_s}s ±${p.delta_se_s}` }),
      el("td", null, p.applied ? el("span", { cls: "badge on", text: "applied" }) :
        el("button", { type: "button", cls: "small primary", text: "apply", onclick: async () => {
          try { const r = await api("POST", "/api/admin/advisor/apply", { index: p.index }); renderAdvisor(r.advisor); }
          catch (e) { text("advisor-status", e.message); }
          refreshAudit(); } })))));
    if (a.running) setTimeout(async () => renderAdvisor(await api("GET", "/api/admin/advisor")), 2000);
  }
  document.getElementById("advisor-run").addEventListener("click", async () => {
    try { renderAdvisor(await api("POST", "/api/admin/advisor/run", {})); } catch (e) { text("advisor-status", e.message); }
    refreshAudit();
  });

  async function refreshAudit() {
    try {
      const rows = await api("GET", "/api/admin/audit");
      document.getElementById("audit-rows").replaceChildren(...rows.slice(0, 30).map((r) => el("tr", { cls: r.ok ? "" : "refused" },
        el("td", { text: clock(r.at) }), el("td", { text: r.actor }), el("td", { text: r.action }),
        el("td", { cls: "mono wrap", text: r.target }), el("td", { cls: "small wrap", text: r.ok ? JSON.stringify(r.detail) : "refused: " + r.error }))));
    } catch (e) { console.error(e); }
  }

  // Callbacks owed (回拨), the one due first first. The list has masked numbers only: the
  // number to dial comes from the audited reveal. Each settle sends the attempts shown, so a
  // callback another operator settled or tried meanwhile is refused, not settled twice.
  const CB_PAGE = 50;
  let cbOffset = 0;
  // "2026-03-12T17:00+08:00" -> "2026-03-12 17:00": the centre's clock, as the server sends it.
  const localPart = (iso) => iso.slice(0, 16).replace("T", " ");

  async function settleCallback(c, result) {
    let note = null;
    if (result === "given_up") {
      note = prompt(`Stop calling back case ${c.number}? Why (optional):`, "");
      if (note === null) return;
    }
    try {
      await api("POST", "/api/callbacks/" + encodeURIComponent(c.number), { result, note: note || null, attempts: c.attempts });
      text("callbacks-result", `${c.number}: ${result.replace("_", " ")}`);
    } catch (e) { text("callbacks-result", `${c.number}: ${e.message}`); }
    loadCallbacks();
  }

  async function revealNumber(c, shown) {
    const reason = prompt("Why do you need the full number? (recorded)", "callback 回拨");
    if (!reason) return;
    try {
      const r = await api("POST", "/api/cases/" + encodeURIComponent(c.number) + "/reveal", { reason });
      shown.textContent = r.number || "withheld";
    } catch (e) { text("callbacks-result", `${c.number}: ${e.message}`); }
  }

  function callbackRow(c) {
    const shown = el("span", { cls: "mono", text: c.caller || "withheld" });
    const act = (result, label, cls) => el("button", { type: "button", cls: "small " + (cls || ""), text: label, onclick: () => settleCallback(c, result) });
    return el("tr", { cls: c.overdue ? "overdue" : "", "data-case": c.number },
      el("td", null, localPart(c.due), c.overdue ? el("span", { cls: "badge off", text: "overdue" }) : null),
      el("td", { cls: "mono", text: c.number }),
      el("td", null, shown, c.caller ? el("button", { type: "button", cls: "link small", text: "reveal", onclick: () => revealNumber(c, shown) }) : null),
      el("td", { text: c.reason }), el("td", { text: c.topic || c.queue || "—" }), el("td", { text: c.attempts }),
      el("td", { cls: "acts" }, act("reached", "reached", "primary"), act("no_answer", "no answer"), act("given_up", "given up", "danger")));
  }

  async function loadCallbacks() {
    try {
      const r = await api("GET", `/api/callbacks?limit=${CB_PAGE}&offset=${cbOffset}`);
      if (!r.callbacks.length && cbOffset > 0) { cbOffset = Math.max(0, cbOffset - CB_PAGE); return loadCallbacks(); }
      text("callbacks-count", `${r.owed} owed, ${r.overdue} overdue`);
      document.getElementById("callbacks-newer").hidden = r.offset === 0;
      document.getElementById("callbacks-older").hidden = r.next_offset == null;
      document.getElementById("callback-rows").replaceChildren(...r.callbacks.map(callbackRow));
    } catch (e) { text("callbacks-result", e.message); }
  }
  document.getElementById("callbacks-newer").addEventListener("click", () => { cbOffset = Math.max(0, cbOffset - CB_PAGE); loadCallbacks(); });
  document.getElementById("callbacks-older").addEventListener("click", () => { cbOffset += CB_PAGE; loadCallbacks(); });

  live("/ws/board", (m) => { if (m.type === "board") renderBoard(m); }, connBadge);
  loadCallbacks();
  setInterval(loadCallbacks, 30000);
  loadParams();
  api("GET", "/api/admin/advisor").then(renderAdvisor).catch(() => {});
  refreshAudit();
  setInterval(refreshAudit, 15000);
})();
