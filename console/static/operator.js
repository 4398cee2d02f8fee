// Operator page: screen pops over a websocket, the case form, pause and resume, and the
// count of callbacks owed.
"use strict";

(() => {
  const { el, text, api, live, connBadge, secs } = hl;
  let member = document.querySelector('meta[name="hotline-member"]').content;
  let pop = null;        // the call on screen
  let caseView = null;   // its case as last read
  let reasons = [];

  function show(id, on) { document.getElementById(id).classList.toggle("hidden", !on); }

  function renderPop(p) {
    const changed = !pop || pop.uniqueid !== p.uniqueid;
    pop = p;
    show("pop-empty", false); show("pop-fields", true);
    const phase = document.getElementById("pop-phase");
    phase.textContent = p.phase;
    phase.className = "badge phase-" + p.phase;
    text("pop-caller", p.caller || "withheld");
    text("pop-name", p.caller_name || "—");
    text("pop-case", p.case || "…");
    text("pop-topic", p.topic || "unknown");
    text("pop-waited", secs(p.waited_s));
    text("pop-queue", p.queue);
    text("pop-ivr", (p.ivr_path || []).join(" → "));
    text("pop-route", p.route_reason || "");
    text("pop-transcript", p.transcript || "");
    if (changed) {
      text("pop-confidence", ""); text("pop-department", "—");
      const h = document.getElementById("pop-history");
      h.replaceChildren(el("li", { cls: "muted", text: "loading…" }));
      clearForm();
    }
    if (p.case) text("form-number", p.case);
  }

  function renderDetail(d) {
    if (!pop || d.uniqueid !== pop.uniqueid) return;
    const h = document.getElementById("pop-history");
    if (d.error) { h.replaceChildren(el("li", { cls: "error", text: d.error })); return; }
    h.replaceChildren(...(d.history.length ? d.history.map((c) =>
      el("li", null, el("span", { cls: "mono", text: c.number }), " ",
         el("span", { cls: "muted", text: c.created_at.replace("T", " ").slice(0, 16) }), " ",
         el("span", { cls: "badge", text: c.status }), " ",
         el("strong", { text: c.topic || "—" }), " ", el("span", { text: c.description }))) :
      [el("li", { cls: "muted", text: "none in 90 days" })]));
    const dep = d.suggested_department;
    text("pop-department", dep ? dep.name + " (" + dep.code + ")" : "—");
    if (d.case) {
      caseView = d.case;
      text("pop-confidence", d.case.topic_confidence == null ? "" :
           "confidence " + Math.round(d.case.topic_confidence * 100) + "%");
      if (!pop.transcript && d.case.transcript) text("pop-transcript", d.case.transcript);
      fillForm(d.case, dep);
    }
  }

  function clearForm() {
    caseView = null;
    for (const f of ["case_type", "topic", "district", "description", "action", "reason"])
      document.getElementById("f-" + f).value = "";
    document.getElementById("f-urgency").value = "normal";
    text("form-number", ""); text("form-status", ""); text("save-result", "");
  }

  function fillForm(c, dep) {
    text("form-number", c.number); text("form-status", c.status);
    document.getElementById("f-case_type").value = c.case_type || "";
    document.getElementById("f-urgency").value = c.urgency || "normal";
    document.getElementById("f-topic").value = c.topic || "";
    document.getElementById("f-district").value = c.district || "";
    document.getElementById("f-description").value = c.description || "";
    if (dep) document.getElementById("f-department").value = dep.code;
  }

  function renderAgent(a) {
    const b = document.getElementById("agent-state");
    if (!a.queues.length) { b.textContent = member + ": in no queue"; b.className = "badge"; return; }
    b.textContent = member + (a.paused ? ": paused" : ": ready") + " (" + a.queues.map((q) => q.queue).join(", ") + ")";
    b.className = "badge " + (a.paused ? "paused" : "on");
  }

  function onMessage(m) {
    if (m.type === "pop") renderPop(m);
    else if (m.type === "pop_detail") renderDetail(m);
    else if (m.type === "agent") renderAgent(m);
  }

  function start() {
    show("signin-card", !member);
    show("controls", !!member);
    text("member-label", member ? "Answering as " + member : "");
    if (member) live("/ws/operator", onMessage, connBadge);
  }

  document.getElementById("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("POST", "/api/operator/signin", {
        member: document.getElementById("signin-member").value.trim(),
        interface: document.getElementById("signin-interface").value.trim() });
      member = r.member; start();
    } catch (e) { alert(e.message); }
  });

  async function pause(paused, reason) {
    try { await api("POST", "/api/operator/pause", { paused, reason: reason || "" }); }
    catch (e) { alert(e.message); }
  }
  document.getElementById("pause-btn").addEventListener("click", () =>
    pause(true, document.getElementById("pause-reason").value));
  document.getElementById("wrapup-btn").addEventListener("click", () => pause(true, "wrap-up"));
  document.getElementById("resume-btn").addEventListener("click", async () => {
    await pause(false);
    if (pop && (pop.phase === "wrapup" || pop.phase === "missed")) {
      pop = null; show("pop-fields", false); show("pop-empty", true);
      text("pop-phase", "idle"); text("pop-transcript", "");
      document.getElementById("pop-history").replaceChildren(el("li", { cls: "muted", text: "—" }));
      clearForm();
    }
  });

  document.getElementById("reveal-btn").addEventListener("click", async () => {
    if (!pop || !pop.case) return;
    const reason = prompt("Why do you need the full number? (recorded)");
    if (!reason) return;
    try { const r = await api("POST", "/api/cases/" + encodeURIComponent(pop.case) + "/reveal", { reason });
          text("pop-caller", r.number || "withheld"); }
    catch (e) { alert(e.message); }
  });

  document.getElementById("case-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const number = (caseView && caseView.number) || (pop && pop.case);
    if (!number) { text("save-result", "no case on screen"); return; }
    const v = (id) => document.getElementById("f-" + id).value;
    // Only the fields this operator changed, each with the value the form showed: a
    // supervisor's or the call's writes to other fields stay, and a field someone else
    // changed meanwhile is refused (409) instead of overwritten.
    const body = {}, base = {};
    for (const f of ["case_type", "topic", "urgency", "district", "description"]) {
      const shown = caseView ? caseView[f] : null;
      if (v(f) === (shown || (f === "urgency" ? "normal" : ""))) continue;
      if (!v(f) && f !== "description") continue;   // a chooser left empty clears nothing
      body[f] = v(f); base[f] = shown == null ? null : shown;
    }
    if (caseView) body.base = base;
    text("save-result", "saving…");
    if (v("action")) { body.action = v("action"); body.department = v("department") || null; body.reason = v("reason") || null; }
    const url = "/api/cases/" + encodeURIComponent(number);
    try {
      const c = await api("POST", url, body);
      // The form shows the case as saved, others' changes included, so the next save
      // compares against what is on the screen.
      caseView = c; fillForm(c, null);
      text("save-result", "saved (version " + c.version + ")");
    } catch (e) {
      if (e.status !== 409 || !caseView) { text("save-result", "not saved: " + e.message); return; }
      // Someone else changed a field this operator changed too: keep what the operator
      // typed, show the rest as it is now, and let a second save replace the other's text
      // knowingly (the error names the field and its new value).
      try {
        const now = await api("POST", url, {});     // no changes: the case as it is
        const typed = {};
        for (const f of Object.keys(body)) if (f !== "base") typed[f] = v(f);
        caseView = now; fillForm(now, null);
        for (const [f, val] of Object.entries(typed)) {
          const field = document.getElementById("f-" + f);
          if (field) field.value = val;
        }
      } catch (e2) { console.error(e2); }
      text("save-result", "not saved: " + e.message + " Your text is kept: save again to replace theirs.");
    }
  });

  // How many callbacks (回拨) the centre owes, and how many are overdue: one line, refreshed.
  async function loadOwed() {
    try {
      const r = await api("GET", "/api/callbacks?limit=1");
      const b = document.getElementById("callbacks-owed");
      b.textContent = `回拨 ${r.owed} owed` + (r.overdue ? `, ${r.overdue} overdue` : "");
      b.className = "badge" + (r.overdue ? " off" : "");
    } catch (e) { console.error(e); }
  }
  loadOwed();
  setInterval(loadOwed, 30000);

  (async () => {
    try {
      const st = await api("GET", "/api/operator/state");
      reasons = st.pause_reasons;
      document.getElementById("pause-reason").replaceChildren(...reasons.filter((r) => r !== "wrap-up").map((r) => el("option", { value: r, text: r })));
      if (!document.getElementById("signin-member").value && st.member) member = st.member;
      const deps = await api("GET", "/api/departments").catch(() => []);
      document.getElementById("f-department").append(...deps.map((d) => el("option", { value: d.code, text: d.name })));
    } catch (e) { console.error(e); }
    start();
  })();
})();
