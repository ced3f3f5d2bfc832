// labelmill guideline page: the edits refine proposed, each with its evidence; accept, edit or reject each.
// Every string from the store reaches the page through textContent (a proposal may quote a hostile row).
(function () {
  "use strict";
  const cfg = JSON.parse(document.body.dataset.config);
  const box = document.getElementById("proposals");
  const current = document.getElementById("current");
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
  const what = (p) => p.kind === "add_rule" ? "add rule" : p.kind === "define_label" ? "define " + p.target : "delete rule " + p.target;

  async function send(key, action, text) {
    const r = await fetch("/api/proposal", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": cfg.csrf }, body: JSON.stringify({ key, action, text }) });
    const data = await r.json();
    if (!r.ok) { const note = el("p", data.error || "not saved", "error"); note.id = "proposal-error"; box.prepend(note); return; }
    refresh();
  }

  function card(p) {
    const div = el("div", undefined, "proposal " + p.status);
    div.dataset.key = p.key;
    const head = el("div");
    head.append(el("span", p.status, "state"), document.createTextNode(" · " + what(p) + " · proposed by "), el("span", p.author));
    const text = el("div", p.status === "edited" ? p.decided_text : p.text, "edit-text");
    const evidence = el("div", "Evidence: " + p.evidence, "muted evidence");
    div.append(head, text, evidence);
    if (p.decided_by) div.append(el("div", p.status + " by " + p.decided_by, "muted decided"));
    const area = el("textarea"); area.value = p.status === "edited" ? p.decided_text : p.text; area.hidden = true;
    const accept = el("button", "accept"); accept.className = "accept";
    const edit = el("button", "edit"); edit.className = "edit";
    const reject = el("button", "reject"); reject.className = "reject";
    accept.addEventListener("click", () => send(p.key, "accept"));
    reject.addEventListener("click", () => send(p.key, "reject"));
    edit.addEventListener("click", () => {
      if (area.hidden) { area.hidden = false; edit.textContent = "save wording"; area.focus(); return; }
      send(p.key, "edit", area.value);
    });
    const buttons = el("div"); buttons.append(accept, edit, reject);
    div.append(area, buttons);
    return div;
  }

  const proposeButton = document.getElementById("propose");
  const proposeState = document.getElementById("propose-state");
  let polling = null;

  proposeButton.addEventListener("click", async () => {
    const r = await fetch("/api/propose", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": cfg.csrf }, body: "{}" });
    const data = await r.json();
    if (!r.ok) { proposeState.textContent = data.error || "not started"; return; }
    proposeState.textContent = data.started ? "proposing edits from the reviewed rows..." : "the model is busy (" + data.busy + "); try again shortly";
    refresh();
  });

  async function refresh() {
    const r = await fetch("/api/proposals", { credentials: "same-origin" });
    const data = await r.json();
    box.textContent = "";
    current.textContent = data.guideline;
    proposeState.textContent = data.proposing ? "proposing edits from " + data.reviewed + " reviewed rows..." : "";
    if (data.proposing && polling === null) polling = setInterval(refresh, 2000);
    if (!data.proposing && polling !== null) { clearInterval(polling); polling = null; }
    if (!data.proposals.length) { box.append(el("p", "No proposed edits yet. Propose some from the reviewed rows (20 at least), or run labelmill refine CONFIG DEV --review.")); return; }
    const pending = data.proposals.filter((p) => p.status === "pending").length;
    box.append(el("p", pending + " of " + data.proposals.length + " proposed edits wait for a decision.", "muted summary"));
    data.proposals.forEach((p) => box.append(card(p)));
  }
  refresh();
})();
