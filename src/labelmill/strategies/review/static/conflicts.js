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
    data.conflicts.forEach((c) => {
      const tr = el("tr"); const ratings = Object.entries(c.ratings).map(([a, l]) => a + ": " + (typeof l === "string" ? l : JSON.stringify(l))).join("; ");
      tr.append(el("td", c.row), el("td", c.text), el("td", ratings));
      const td = el("td");
      const options = [...new Set(Object.values(c.ratings).map((l) => JSON.stringify(l)))];
      options.forEach((o) => { const b = el("button", "keep " + JSON.parse(o)); b.addEventListener("click", async () => {
        await fetch("/api/resolve", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "X-CSRF-Token": cfg.csrf }, body: JSON.stringify({ row: c.row, label: JSON.parse(o) }) });
        refresh(); }); td.append(b); });
      tr.append(td); table.append(tr);
    });
    box.append(table);
  }
  refresh();
})();
