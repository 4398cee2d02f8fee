// Department page: the open cases dispatched to this department and its steps.
"use strict";

(() => {
  const { el, text, api } = hl;
  const STEPS = { dispatched: ["start"], transferred: ["start", "return"], processing: ["reply", "return"] };

  async function step(c, action) {
    const reason = action === "start" ? null : prompt(action === "reply" ? "Reply to the centre:" : "Why return it?");
    if (action !== "start" && !reason) return;
    try { await api("POST", "/api/department/cases/" + encodeURIComponent(c.number), { action, reason, expected_version: c.version });
          text("dept-result", `${c.number}: ${action} done`); }
    catch (e) { text("dept-result", `${c.number}: ${e.message}`); }
    load();
  }

  // "2026-03-12T17:00+08:00" -> "2026-03-12 17:00": the server sends the centre's time with
  // its offset; the part before the offset is what the centre's clock says (not the browser's).
  const localPart = (iso) => iso.slice(0, 16).replace("T", " ");

  // The list comes a page at a time (newest first); older pages behind "Older".
  const PAGE = 100;
  let offset = 0;

  async function load() {
    try {
      const q = new URLSearchParams(location.search);   // a supervisor's ?code=
      q.set("limit", PAGE); q.set("offset", offset);
      const r = await api("GET", "/api/department/cases?" + q);
      text("dept-title", "Open cases of " + r.department);
      document.getElementById("dept-newer").hidden = r.offset === 0;
      document.getElementById("dept-older").hidden = r.next_offset == null;
      document.getElementById("dept-rows").replaceChildren(...r.cases.map((c) => el("tr", null,
        el("td", { cls: "mono", text: c.number }), el("td", null, el("span", { cls: "badge", text: c.status })),
        el("td", { text: c.case_type || "—" }), el("td", { text: c.topic || "—" }), el("td", { text: c.district || "—" }),
        el("td", { text: c.description || "" }), el("td", { text: c.deadline ? localPart(c.deadline) : "—" }),
        el("td", null, ...(STEPS[c.status] || []).map((a) => el("button", { type: "button", cls: "small", text: a, onclick: () => step(c, a) }))))));
    } catch (e) { text("dept-result", e.message); }
  }
  document.getElementById("dept-newer").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  document.getElementById("dept-older").addEventListener("click", () => { offset += PAGE; load(); });
  load();
  setInterval(load, 30000);
})();
