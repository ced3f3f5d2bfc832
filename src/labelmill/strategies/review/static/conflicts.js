// labelmill conflicts page: pick the label that stands for each row where annotators disagree.
(function () {
  "use strict";
  const cfg = JSON.parse(document.body.dataset.config);
  const box = document.getElementById("conflicts");
  const el = (tag, text) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); return e; };
  async function refresh() {
    const r = await fetch("/api/conflicts", { credentials: "same-origin" });
    const data = await r.json();
    box.textContent = "";
    if (!data.conflicts.length) { box.append(el("p", "No conflicts.")); return; }
    const table = el("table");
    const head = el("tr");
    ["row", "text", "ratings", "keep (click twice: the second click resolves)"].forEach((h) => head.append(el("th", h)));
    table.append(head);
    data.conflicts.forEach((c) => {
      const tr = el("tr"); const ratings = Object.entries(c.ratings).map(([a, l]) => a + ": " + (typeof l === "string" ? l : JSON.stringify(l))).join("; ");
      tr.append(el("td", c.row), el("td", c.text), el("td", ratings));
      const td = el("td");
      const options = [...new Set(Object.values(c.ratings).map((l) => JSON.stringify(l)))];
      options.forEach((o) => {
        const label = JSON.parse(o);
        const b = el("button", "keep " + (typeof label === "string" ? label : o)); b.className = "keep";
        b.addEventListener("click", async () => {
          if (!b.dataset.armed) { b.dataset.armed = "1"; b.textContent = "confirm: keep " + (typeof label === "string" ? label : o); return; }
          const r = await fetch("/api/resolve", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "X-CSRF-Token": cfg.csrf }, body: JSON.stringify({ row: c.row, label }) });
          if (!r.ok) { const d = await r.json(); const note = el("p", d.error || "not saved"); note.className = "error"; box.prepend(note); return; }
          refresh();
        });
        td.append(b);
      });
      tr.append(td); table.append(tr);
    });
    box.append(table);
  }
  refresh();
})();
