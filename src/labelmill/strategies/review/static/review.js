// labelmill review page: keyboard-first. Row text is only ever set with textContent, never parsed as HTML.
(function () {
  "use strict";
  const cfg = JSON.parse(document.body.dataset.config);
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; };
  let row = null, picked = null, history = [], pos = -1, message = "";
  let chosen = [], digits = "", digitTimer = null;  // relations: entities clicked (head, then tail); digits typed so far
  const SPANS = cfg.task === "ner" || cfg.task === "relations" || cfg.task === "roles";
  const SPANLIST = cfg.task === "ner" || cfg.task === "roles";  // a flat list of typed spans (roles: the arguments, typed by role)
  let pred = null;  // roles: the predicate, shown marked and never an argument
  const spansOf = () => (cfg.task === "relations" ? picked.entities : picked);
  $("guideline").textContent = cfg.guidelines || "(no guideline in the config)";

  async function call(method, url, body) {
    const opts = { method, headers: { "X-CSRF-Token": cfg.csrf }, credentials: "same-origin" };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const r = await fetch(url, opts);
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || r.statusText);
    return data;
  }

  let statusTimer = null;
  function showStatus(s) {
    // the loop refits, and model jobs run, on the server's own time: meanwhile, ask again shortly for the new status
    if (s && (s.refitting || s.background) && statusTimer === null) {
      statusTimer = setTimeout(async () => {
        statusTimer = null;
        try { const r = await fetch("/api/status", { credentials: "same-origin" }); if (r.ok) { lastStatus = await r.json(); showStatus(lastStatus); } } catch (e) { /* next save */ }
      }, 500);
    }
    const box = $("status"); box.textContent = "";
    if (!s) return;
    const pct = (x) => (x === null || x === undefined) ? "n/a" : (100 * x).toFixed(1) + "%";
    const line = el("div");
    line.append(el("strong", s.in_queue + " rows in the queue"), el("span", " of " + s.rows + " \u00b7 reviewed " + s.reviewed +
      (s.yours !== undefined ? " (" + s.yours + " by you)" : "") +
      " \u00b7 trusted (above threshold, never queued) " + s.trusted + " \u00b7 conflicts " + s.conflicts));
    const why = Object.entries(s.queue_reasons || {}).map(([k, v]) => k + ": " + v).join(", ");
    const range = s.interval ? "95% interval " + pct(s.interval[0]) + " \u2013 " + pct(s.interval[1]) + ", from " + s.audit_rows + " random audit rows"
      : "lower bound " + pct(s.lower_bound) + "; an interval after 10 random audit rows (" + (s.audit_rows || 0) + " so far)";
    const est = el("div", "estimated accuracy of the whole dataset " + pct(s.estimated_accuracy) + " (" + range +
      "; target " + pct(s.target) + ")" + (s.target_reached ? " \u2014 target reached" : (s.reviews_to_target !== null ? " \u00b7 about " + s.reviews_to_target + " more reviews to reach it" : "")));
    est.id = "estimate";
    box.append(line, el("div", "why rows are queued: " + (why || "none"), "muted"), est);
    if (s.budget_left !== null && s.budget_left !== undefined) box.append(el("div", "budget left: " + s.budget_left + " rows", "muted"));
    if (s.tier && (s.tier.running || s.tier.rows)) box.append(el("div", s.tier.running ? "a stronger model (" + s.tier.model + ") is labeling the rows the first labeler was least sure of"
      : s.tier.model + " labeled the " + s.tier.rows + " rows the first labeler was least sure of", "muted"));
    if (s.relabel && s.relabel.search_after && !s.relabel.searching && !s.relabel.search) {
      const line = el("div", "after " + s.relabel.search_after + " reviewed rows (" + s.reviewed + " so far), a search of the relabel step's demos on them", "muted");
      line.id = "relabel-search";
      box.append(line);
    }
    if (s.relabel && s.relabel.running) box.append(el("div", "relabeling the least sure rows with reviewed rows as demos", "muted"));
    if (s.relabel && (s.relabel.searching || s.relabel.search)) {
      const f = s.relabel.search, best = f && f.best_few_shot;
      const said = s.relabel.searching || !f ? "searching the relabel step's demos on the reviewed rows (zero-shot against few-shot)"
        : f.relabel === "on" ? "relabel step: " + best.k + "-shot " + best.selection + " demos beat zero-shot on " + f.dev_rows + " reviewed rows (" +
          pct(best.accuracy) + " against " + pct(f.zero_shot_accuracy) + ")"
        : "relabel step off: demos did not beat zero-shot on " + f.dev_rows + " reviewed rows";
      const line = el("div", said, "muted");
      line.id = "relabel-search";
      box.append(line);
    }
    if (message) box.append(el("div", message, message.startsWith("error") ? "error" : "saved"));
  }

  // characters a reader cannot see that change what is read: zero-width, bidi embeddings, overrides and isolates, BOM
  const HIDDEN = /[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;
  const HIDDEN_ALL = new RegExp(HIDDEN.source, "g");
  function shown(box, s) {  // the text, each hidden character as a visible [U+XXXX] mark (text nodes only)
    let at = 0;
    for (const m of s.matchAll(HIDDEN_ALL)) {
      box.append(document.createTextNode(s.slice(at, m.index)));
      box.append(el("span", "[U+" + m[0].codePointAt(0).toString(16).toUpperCase().padStart(4, "0") + "]", "hidden-char"));
      at = m.index + m[0].length;
    }
    box.append(document.createTextNode(s.slice(at)));
  }

  function labelText(v) { return (v === null || v === undefined) ? "" : (typeof v === "string" ? v : JSON.stringify(v)); }

  function render() {
    const box = $("row"); box.textContent = ""; $("nearest").textContent = "";
    if (!row) { box.append(el("p", "Nothing left to review for you. Thank you!", "saved")); return; }
    box.append(el("div", "row " + row.index + (row.confidence !== null && row.confidence !== undefined ? " \u00b7 model: " + labelText(row.model_label) + " (confidence " + row.confidence.toFixed(2) + ")" : ""), "muted"));
    const text = el("div", null, "text"); text.id = "row-text";
    if (SPANS && picked) {
      let at = 0; const spans = spansOf().concat(pred ? [pred] : []).sort((a, b) => a.start - b.start);
      spans.forEach((s) => { if (s.start < at) return; text.append(document.createTextNode(row.text.slice(at, s.start)));
        const m = el("span", row.text.slice(s.start, s.end), "span"); m.dataset.type = s.type;
        if (s === pred) { m.classList.add("pred"); m.title = "the predicate"; }
        else if (SPANLIST) { m.title = s.type + " (click to remove)"; m.addEventListener("click", () => { picked = picked.filter((x) => x !== s); render(); }); }
        else {
          const k = chosen.indexOf(s); if (k === 0) m.classList.add("head"); if (k === 1) m.classList.add("tail");
          m.title = s.type + " (click: head, then tail; X removes a clicked entity)";
          m.addEventListener("click", () => { const at2 = chosen.indexOf(s); chosen = at2 >= 0 ? chosen.filter((x) => x !== s) : (chosen.length >= 2 ? [s] : chosen.concat([s])); render(); });
        }
        text.append(m); at = s.end; });
      text.append(document.createTextNode(row.text.slice(at)));
    } else if (cfg.task === "relation" || cfg.task === "temporal") { marked(text, row.text); }
    else { shown(text, row.text); }
    const hidden = (row.text.match(HIDDEN_ALL) || []).length;
    if (hidden) box.append(el("div", "this row holds " + hidden + " invisible or direction-changing character" + (hidden > 1 ? "s" : "") +
      (SPANS ? "" : ", shown as [U+....]"), "error hidden-chars"));
    box.append(text);
    if (row.explanation) box.append(el("p", "model's explanation: " + row.explanation, "muted"));
    const labels = el("div", null, "labels"); labels.id = "labels";
    if (cfg.task === "qa") {
      labels.append(el("div", "answer: " + (picked === "" ? "(unanswerable)" : labelText(picked)), "muted"));
      labels.append(el("div", "select the answer in the text and press A; U marks it unanswerable; Enter saves", "muted"));
    } else if (cfg.task === "extraction") {
      const area = el("textarea"); area.id = "extraction"; area.rows = 6; area.cols = 60; area.value = JSON.stringify(picked || {}, null, 1);
      labels.append(area, el("div", "edit the values, then Ctrl+Enter saves", "muted"));
    } else if (cfg.task === "relations") {
      labels.append(el("div", "entity types: select text, then type the number", "muted"));
      cfg.labels.forEach((name, n) => { const b = el("button", (n + 1) + " " + name); b.addEventListener("click", () => addEntity(n)); labels.append(b); });
      labels.append(el("div", "relation types: click two entities (head, then tail), then type the number", "muted"));
      cfg.relation_types.forEach((name, n) => { const b = el("button", (n + 1) + " " + name); b.addEventListener("click", () => addRelation(n)); labels.append(b); });
      const list = el("ul", null, "relations"); list.id = "relations";
      picked.relations.forEach((r) => { const li = el("li"); li.append(el("span", r.head.text, "arg"), el("strong", " —" + r.type + "→ "), el("span", r.tail.text, "arg"));
        li.title = "click to remove"; li.addEventListener("click", () => { picked.relations = picked.relations.filter((x) => x !== r); render(); }); list.append(li); });
      labels.append(el("div", picked.relations.length ? "relations (click one to remove it):" : "no relations", "muted"), list);
    } else {
      cfg.labels.forEach((name, n) => {
        const b = el("button", (n + 1) + " " + name);
        const on = cfg.task === "multilabel" || SPANLIST ? false : picked === name;
        if (cfg.task === "multilabel" && Array.isArray(picked) && picked.includes(name)) b.classList.add("picked");
        if (on) b.classList.add("picked");
        if (!cfg.blind && labelText(row.model_label) === name) b.classList.add("model");
        b.addEventListener("click", () => choose(n));
        labels.append(b);
      });
      if (SPANLIST) labels.append(el("div", "select text, then press a digit to add a span of that " + (cfg.task === "roles" ? "role" : "type") + "; click a span to remove it", "muted"));
    }
    box.append(labels);
    if (row.reasons && row.reasons.length) { const ul = el("ul", null, "reasons"); row.reasons.forEach((r) => ul.append(el("li", r))); box.append(ul); }
    if (row.cluster && row.cluster.length) box.append(el("div", "B accepts " + row.cluster.length + " confident rows like this one with the same label", "muted"));
    const others = Object.entries(row.reviews || {}).filter(([a]) => a !== cfg.annotator);
    if (others.length) box.append(el("div", "other annotators: " + others.map(([a, l]) => a + ": " + labelText(l)).join("; "), "muted"));
    (row.nearest || []).forEach((n) => { const li = el("li"); li.append(el("strong", labelText(n.label) + " "), el("span", n.text)); $("nearest").append(li); });
  }

  function setRow(r) {
    row = r; message = message || "";
    if (!row) { picked = null; render(); return; }
    const cur = row.current; chosen = []; pred = null;
    if (cfg.task === "relations") {
      const entities = ((cur && cur.entities) || []).map((s) => Object.assign({}, s));
      picked = { entities, relations: ((cur && cur.relations) || []).filter((r) => entities[r.head] && entities[r.tail]).map((r) => ({ head: entities[r.head], tail: entities[r.tail], type: r.type })) };
    } else if (cfg.task === "roles") {
      const p = cur && cur.predicate; pred = p && p.start >= 0 ? { start: p.start, end: p.end, type: "V", text: p.text } : null;
      picked = ((cur && cur.arguments) || []).map((a) => ({ start: a.start, end: a.end, type: a.role, text: a.text }));
    } else if (cfg.task === "multilabel" || cfg.task === "ner") picked = Array.isArray(cur) ? cur.slice() : [];
    else if (cfg.task === "extraction") picked = cur || {};
    else picked = cur === undefined ? null : cur;
    render();
  }

  // a relation's marked pair: <e1>..</e1> and <e2>..</e2> shown as highlighted spans (text nodes only)
  function marked(box, value) {
    const re = /<(\/?)(e[12])>/g; let at = 0, open = null, m;
    const put = (t) => { if (!t) return; if (open) { const s = el("span", t, "pair " + open); s.dataset.type = open; box.append(s); } else box.append(document.createTextNode(t)); };
    while ((m = re.exec(value)) !== null) { put(value.slice(at, m.index)); open = m[1] ? null : m[2]; at = re.lastIndex; }
    put(value.slice(at));
  }

  function selected() {
    const sel = window.getSelection(); const box = $("row-text");
    if (!sel || sel.isCollapsed || !box || !box.contains(sel.anchorNode)) return null;
    const range = sel.getRangeAt(0); const pre = document.createRange(); pre.selectNodeContents(box); pre.setEnd(range.startContainer, range.startOffset);
    const start = pre.toString().length; sel.removeAllRanges();
    return { start, end: start + range.toString().length };
  }

  function addEntity(n) {
    const where = selected();
    if (!where) { message = "select some text first"; showStatus(lastStatus); return; }
    const span = { start: where.start, end: where.end, type: cfg.labels[n], text: row.text.slice(where.start, where.end) };
    if (pred && !(pred.end <= span.start || pred.start >= span.end)) { message = "the predicate itself is not an argument"; showStatus(lastStatus); return; }
    const gone = spansOf().filter((s) => !(s.end <= span.start || s.start >= span.end));
    if (SPANLIST) picked = picked.filter((s) => !gone.includes(s)).concat([span]);
    else { picked.entities = picked.entities.filter((s) => !gone.includes(s)).concat([span]); picked.relations = picked.relations.filter((r) => !gone.includes(r.head) && !gone.includes(r.tail)); chosen = []; }
    render();
  }

  function addRelation(n) {
    if (chosen.length !== 2) { message = "click two entities first: the head, then the tail"; showStatus(lastStatus); return; }
    const [head, tail] = chosen; const type = cfg.relation_types[n];
    if (!picked.relations.some((r) => r.head === head && r.tail === tail && r.type === type)) picked.relations.push({ head, tail, type });
    chosen = []; render();
  }

  function choices() { // how many options a typed number picks among now
    if (cfg.task === "relations") { const sel = window.getSelection(); return sel && !sel.isCollapsed ? cfg.labels.length : cfg.relation_types.length; }
    return cfg.labels.length;
  }

  // digits: "7" picks option 7 at once when no option 70-79 exists; with ten or more options "1" waits a
  // moment for a second digit ("1", "4": option 14)
  function digit(d) {
    digits += d; clearTimeout(digitTimer);
    const n = Number(digits), count = choices();
    const fire = () => { const k = Number(digits); digits = ""; if (k >= 1) choose(k - 1); };
    if (n * 10 > count || digits.length >= 2) fire(); else digitTimer = setTimeout(fire, 700);
  }

  function choose(n) {
    if (!row) return;
    if (cfg.task === "relations") { const sel = window.getSelection(); if (sel && !sel.isCollapsed) { if (n < cfg.labels.length) addEntity(n); } else if (n < cfg.relation_types.length) addRelation(n); return; }
    if (n >= cfg.labels.length) return;
    const name = cfg.labels[n];
    if (cfg.task === "multilabel") { picked = picked.includes(name) ? picked.filter((x) => x !== name) : picked.concat([name]); }
    else if (SPANLIST) { addEntity(n); return; }
    else { picked = name; }
    render();
  }

  let lastStatus = null;
  async function load(promise) {
    try { const data = await promise; if ("row" in data) setRow(data.row); if (data.status) lastStatus = data.status; if (row && (pos < 0 || history[pos] !== row.index)) { /* a queue row */ } }
    catch (e) { message = "error: " + e.message; }
    showStatus(lastStatus);
  }

  async function save() {
    if (!row) return;
    let label = picked;
    if (cfg.task === "extraction") { try { label = JSON.parse($("extraction").value); } catch (e) { message = "error: not valid JSON"; showStatus(lastStatus); return; } }
    if (cfg.task === "relations") {
      const ents = picked.entities;
      label = { entities: ents.map((s) => ({ start: s.start, end: s.end, type: s.type })),
        relations: picked.relations.map((r) => ({ head: ents.indexOf(r.head), tail: ents.indexOf(r.tail), type: r.type })).filter((r) => r.head >= 0 && r.tail >= 0) };
    }
    if (cfg.task === "roles") label = { arguments: picked.map((s) => ({ start: s.start, end: s.end, role: s.type })) };
    if (label === null || label === undefined) label = row.current;
    const index = row.index;
    try {
      const data = await call("POST", "/api/review", { row: index, label });
      history = history.slice(0, pos + 1); history.push(index); pos = history.length;
      message = "saved row " + index; lastStatus = data.status; setRow(data.row);
    } catch (e) { message = "error: " + e.message; }
    showStatus(lastStatus);
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.target && ev.target.tagName === "TEXTAREA") { if (ev.key === "Enter" && ev.ctrlKey) { ev.preventDefault(); save(); } return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (/^[0-9]$/.test(ev.key)) { ev.preventDefault(); digit(ev.key); }
    else if (ev.key === "Enter") { ev.preventDefault(); save(); }
    else if (ev.key === "z" || ev.key === "Z") { ev.preventDefault(); message = ""; load(call("POST", "/api/undo").then((d) => { message = d.undone === null ? "nothing to undo" : "undid row " + d.undone; if (d.undone !== null) { history = history.filter((i) => i !== d.undone); pos = history.length; } return d; })); }
    else if (ev.key === "ArrowLeft") { ev.preventDefault(); if (pos > 0) { pos -= 1; message = "back to row " + history[pos]; load(call("GET", "/api/row/" + history[pos])); } }
    else if (ev.key === "ArrowRight") { ev.preventDefault(); if (pos < history.length - 1) { pos += 1; load(call("GET", "/api/row/" + history[pos])); } else { pos = history.length; message = ""; load(call("GET", "/api/next")); } }
    else if ((ev.key === "b" || ev.key === "B") && row && row.cluster && row.cluster.length) { ev.preventDefault(); load(call("POST", "/api/bulk_accept", { rows: row.cluster.concat([row.index]) }).then((d) => { message = "accepted " + d.accepted + " rows"; return call("GET", "/api/next"); })); }
    else if (cfg.task === "qa" && (ev.key === "a" || ev.key === "A")) { const s = window.getSelection().toString(); if (s) { picked = s; render(); } }
    else if (cfg.task === "qa" && (ev.key === "u" || ev.key === "U")) { picked = ""; render(); }
    else if (cfg.task === "relations" && (ev.key === "x" || ev.key === "X" || ev.key === "Delete") && chosen.length === 1) {
      const gone = chosen[0]; picked.entities = picked.entities.filter((s) => s !== gone); picked.relations = picked.relations.filter((r) => r.head !== gone && r.tail !== gone); chosen = []; render();
    }
  });

  load(call("GET", "/api/next"));
})();
