// labelmill conflicts page: pick the label that stands for each row where annotators disagree, and take a
// resolution back (the row is a conflict again).
(function () {
  "use strict";
  const cfg = JSON.parse(document.body.dataset.config);
  const box = document.getElementById("conflicts");
  const el = (tag, text) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); return e; };
  const show = (l) => (typeof l === "string" ? l : JSON.stringify(l));
  const ratingsText = (ratings) => Object.entries(ratings).map(([a, l]) => a + ": " + show(l)).join("; ");
  async function post(path, body) {
    const r = await fetch(path, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "X-CSRF-Token": cfg.csrf }, body: JSON.stringify(body) });
    if (!r.ok) { const d = await r.json(); const note = el("p", d.error || "not saved"); note.className = "error"; box.prepend(note); return; }
    refresh();
  }
  function table(headers) {
    const t = el("table"); const head = el("tr");
    headers.forEach((h) => head.append(el("th", h)));
    t.append(head);
    return t;
  }
  async function refresh() {
    const r = await fetch("/api/conflicts", { credentials: "same-origin" });
    const data = await r.json();
    box.textContent = "";
    if (!data.conflicts.length) box.append(el("p", "No conflicts."));
    else {
      const t = table(["row", "text", "ratings", "keep (click twice: the second click resolves)"]);
      data.conflicts.forEach((c) => {
        const tr = el("tr");
        tr.append(el("td", c.row), el("td", c.text), el("td", ratingsText(c.ratings)));
        const td = el("td");
        [...new Set(Object.values(c.ratings).map((l) => JSON.stringify(l)))].forEach((o) => {
          const label = JSON.parse(o);
          const b = el("button", "keep " + show(label)); b.className = "keep";
          b.addEventListener("click", () => {
            if (!b.dataset.armed) { b.dataset.armed = "1"; b.textContent = "confirm: keep " + show(label); return; }
            post("/api/resolve", { row: c.row, label });
          });
          td.append(b);
        });
        tr.append(td); t.append(tr);
      });
      box.append(t);
    }
    if ((data.resolved || []).length) {
      box.append(el("h3", "Resolved"));
      const t = table(["row", "text", "ratings", "kept", "by", "undo"]);
      t.id = "resolved";
      data.resolved.forEach((c) => {
        const tr = el("tr");
        tr.append(el("td", c.row), el("td", c.text), el("td", ratingsText(c.ratings)), el("td", show(c.label)), el("td", c.by));
        const b = el("button", "undo"); b.className = "unresolve";
        b.addEventListener("click", () => post("/api/unresolve", { row: c.row }));
        const td = el("td"); td.append(b); tr.append(td); t.append(tr);
      });
      box.append(t);
    }
  }
  refresh();
})();
