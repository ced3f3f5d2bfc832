"""Labeled output in the formats other tools read.

  label-studio  Label Studio tasks JSON: each row's columns under `data`, the model's label as a
                `prediction` (model version and score). Classification and relation rows give a `choices`
                result; NER rows `labels` results with character offsets; relations rows both entity
                `labels` results and `relation` results linking them by id (Label Studio's relation format).
                Beside it, `<name>.label_config.xml`: the labeling config those results fit (create the
                project with it, then import the tasks); tests check both with label-studio-sdk's validator.
  triples       relations: one JSON line per relation, {row, head, relation, tail, confidence}, with the
                head's and tail's offsets, types and text (relation task: the marked pair and its label).
  spacy         a spaCy DocBin (`.spacy`): NER spans as `doc.ents`; relations as entities plus `doc._.rel`,
                the layout of spaCy's relation-extraction component: {(head token, tail token): {type:
                score}} for every ordered pair of entities, 1.0 (or the model's confidence) where the
                label holds the relation, 0.0 elsewhere. A marked pair's two spans are entities E1 and E2.
                Read it back with `Doc.set_extension("rel", default={})` before `DocBin.get_docs`.

    labelmill export CONFIG LABELED_OUTPUT --format label-studio --out tasks.json
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labelmill.config import Config, load_config
from labelmill.errors import ConfigError, InputDataError
from labelmill.io import read_rows
from labelmill.tasks import make_task
from labelmill.tasks.base import is_missing, load_structured

FORMATS = ("label-studio", "triples", "spacy")


def _cell(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and value != value:
        return None
    return value


def _rows(config: Config, labeled: str | Path) -> Iterator[tuple[int, dict[str, Any], Any, float | None]]:
    frame = read_rows(labeled, config.dataset)
    column = config.output.label_column
    if column not in frame.columns:
        raise InputDataError(f"{labeled}: no column {column!r}; export reads the output of `labelmill run` with this config",
                             fix="pass the file that labelmill run wrote (--out)")
    confidence = config.output.confidence_column
    for i, record in enumerate(frame.to_dict("records")):
        value = record.get(column)
        value = None if not isinstance(value, (list, dict)) and is_missing(value) else load_structured(value)
        score = record.get(confidence)
        yield i, {k: _cell(v) for k, v in record.items()}, value, None if score is None or is_missing(score) else float(score)


def label_studio_result(task_type: str, value: Any, text: str, key: str) -> list[dict[str, Any]]:
    """Label Studio result items for one label: `choices` for closed labels (one or several), `labels`
    spans with character offsets for NER, spans plus `relation` items for relations, a `textarea` for
    QA answers and extraction values. `key` makes the region ids unique."""
    result: list[dict[str, Any]] = []
    if value is None:
        return result
    if task_type in ("ner", "relations"):
        entities = (value or {}).get("entities", []) if task_type == "relations" else (value or [])
        for n, span in enumerate(entities):
            result.append({"id": f"{key}e{n}", "from_name": "label", "to_name": "text", "type": "labels",
                           "value": {"start": span["start"], "end": span["end"], "text": span.get("text", text[span["start"]:span["end"]]), "labels": [span["type"]]},
                           **({"score": span["confidence"]} if span.get("confidence") is not None else {})})
        for rel in (value or {}).get("relations", []) if task_type == "relations" else []:
            result.append({"from_id": f"{key}e{rel['head']}", "to_id": f"{key}e{rel['tail']}", "type": "relation", "direction": "right", "labels": [rel["type"]],
                           **({"score": rel["confidence"]} if rel.get("confidence") is not None else {})})
    elif task_type == "roles":
        from labelmill.tasks.roles import frames_of

        for f, frame in enumerate(frames_of(value)):
            p = frame["predicate"]
            if p.get("start", -1) < 0:
                continue
            result.append({"id": f"{key}p{f}", "from_name": "label", "to_name": "text", "type": "labels",
                           "value": {"start": p["start"], "end": p["end"], "text": p.get("text", text[p["start"]:p["end"]]), "labels": ["V"]}})
            for n, a in enumerate(frame["arguments"]):
                result.append({"id": f"{key}p{f}a{n}", "from_name": "label", "to_name": "text", "type": "labels",
                               "value": {"start": a["start"], "end": a["end"], "text": a.get("text", text[a["start"]:a["end"]]), "labels": [a["role"]]},
                               **({"score": a["confidence"]} if a.get("confidence") is not None else {})})
                result.append({"from_id": f"{key}p{f}", "to_id": f"{key}p{f}a{n}", "type": "relation", "direction": "right", "labels": [a["role"]]})
    elif task_type in ("qa", "generation"):
        result.append({"from_name": "answer", "to_name": "text", "type": "textarea", "value": {"text": [str(value)]}})
    elif task_type == "extraction":
        result.append({"from_name": "values", "to_name": "text", "type": "textarea", "value": {"text": [json.dumps(value, ensure_ascii=False)]}})
    else:
        labels = value if isinstance(value, list) else [value]
        result.append({"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [str(v) for v in labels]}})
    return result


def label_studio_config(config: Config) -> str:
    """The Label Studio labeling config (XML) whose tag names and types are the ones `label_studio_result`
    writes: create the Label Studio project with it, then import the tasks. Written beside every
    label-studio export as `<name>.label_config.xml`."""
    from xml.sax.saxutils import quoteattr

    task, names = config.task, config.label_names
    text = '  <Text name="text" value="$text"/>\n'
    if task in ("ner", "relations"):
        tags = "".join(f"    <Label value={quoteattr(n)}/>\n" for n in names)
        body = f'  <Labels name="label" toName="text">\n{tags}  </Labels>\n' + text
        if task == "relations":
            kinds = "".join(f"    <Relation value={quoteattr(t.name)}/>\n" for t in config.relation.types)
            body += f"  <Relations>\n{kinds}  </Relations>\n"
    elif task == "roles":  # the predicate (V) and its arguments as spans, each argument linked from its predicate
        tags = "".join(f"    <Label value={quoteattr(n)}/>\n" for n in ["V", *names])
        kinds = "".join(f"    <Relation value={quoteattr(n)}/>\n" for n in names)
        body = f'  <Labels name="label" toName="text">\n{tags}  </Labels>\n' + text + f"  <Relations>\n{kinds}  </Relations>\n"
    elif task in ("qa", "generation"):
        body = text + '  <TextArea name="answer" toName="text" maxSubmissions="1"/>\n'
    elif task == "extraction":
        body = text + '  <TextArea name="values" toName="text" maxSubmissions="1"/>\n'
    else:
        choices = "".join(f"    <Choice value={quoteattr(n)}/>\n" for n in names)
        many = "multiple" if task == "multilabel" else "single"
        body = text + f'  <Choices name="label" toName="text" choice="{many}">\n{choices}  </Choices>\n'
    return f"<View>\n{body}</View>\n"


def label_studio_config_path(dest: Path) -> Path:
    """Where an export's labeling config goes: `tasks.json` -> `tasks.label_config.xml`."""
    return dest.with_name(dest.stem + ".label_config.xml")


def label_studio_value(task_type: str, result: list[dict[str, Any]]) -> Any:
    """The label a Label Studio annotation's result holds (the inverse of `label_studio_result`); None
    when it holds none."""
    if task_type in ("ner", "relations"):
        spans = [{"start": int(r["value"]["start"]), "end": int(r["value"]["end"]), "type": str(r["value"]["labels"][0]),
                  "text": r["value"].get("text")} for r in result if r.get("type") == "labels" and r.get("value", {}).get("labels")]
        if task_type == "ner":
            return sorted(spans, key=lambda s: (s["start"], s["end"]))
        ids = [r.get("id") for r in result if r.get("type") == "labels" and r.get("value", {}).get("labels")]
        relations = [{"head": ids.index(r["from_id"]), "tail": ids.index(r["to_id"]), "type": r["labels"][0]}
                     for r in result if r.get("type") == "relation" and r.get("from_id") in ids and r.get("to_id") in ids and r.get("labels")]
        return {"entities": spans, "relations": relations}
    if task_type == "roles":  # each V with the arguments its relations link (a lone argument goes to the nearest V)
        items = {r.get("id"): r for r in result if r.get("type") == "labels" and r.get("value", {}).get("labels")}
        verbs = [r for r in items.values() if r["value"]["labels"][0] == "V"]
        if not verbs:
            return None
        frames = {v["id"]: {"predicate": {"start": int(v["value"]["start"]), "end": int(v["value"]["end"]), "text": v["value"].get("text")}, "arguments": []} for v in verbs}
        owner = {r["to_id"]: r["from_id"] for r in result if r.get("type") == "relation" and r.get("from_id") in frames}
        for rid, r in items.items():
            if r["value"]["labels"][0] == "V":
                continue
            start = int(r["value"]["start"])
            home = owner.get(rid) or min(frames, key=lambda k: abs(frames[k]["predicate"]["start"] - start))
            frames[home]["arguments"].append({"role": str(r["value"]["labels"][0]), "start": start, "end": int(r["value"]["end"]), "text": r["value"].get("text")})
        out = [{**f, "arguments": sorted(f["arguments"], key=lambda a: (a["start"], a["end"]))} for f in frames.values()]
        return out[0] if len(out) == 1 else {"frames": sorted(out, key=lambda f: f["predicate"]["start"])}
    for r in result:
        if r.get("type") == "textarea":
            texts = r.get("value", {}).get("text") or [""]
            return json.loads(texts[0]) if task_type == "extraction" else str(texts[0])
        if r.get("type") == "choices":
            choices = [str(c) for c in r.get("value", {}).get("choices", [])]
            return choices if task_type == "multilabel" else (choices[0] if choices else None)
    return None


def label_studio_tasks(config: Config, labeled: str | Path) -> list[dict[str, Any]]:
    task_type = config.task
    shown = make_task(config).display_text  # the text as a person reads it (relation, temporal: the marked pair; roles: the sentence)
    tasks = []
    for i, record, value, score in _rows(config, labeled):
        data = {k: v for k, v in record.items() if not k.startswith("llm_")}
        if task_type in ("ner", "relations", "relation", "temporal", "roles") or "text" not in data:
            data["text"] = shown(record)  # the labeling config shows $text
        result = label_studio_result(task_type, value, str(data.get("text", "")), f"r{i}")
        item: dict[str, Any] = {"id": i + 1, "data": data}
        if result:
            item["predictions"] = [{"model_version": f"labelmill:{config.model.backend}:{config.model.name}", "score": score, "result": result}]
        tasks.append(item)
    return tasks


def relation_triples(config: Config, labeled: str | Path) -> list[dict[str, Any]]:
    if config.task not in ("relation", "relations"):
        raise ConfigError(f"the triples format is for relation and relations tasks; this config is {config.task!r}", fix="use --format label-studio")
    task = make_task(config)
    out = []
    for i, record, value, score in _rows(config, labeled):
        if value is None:
            continue
        if config.task == "relations":
            entities = value.get("entities", [])
            for rel in value.get("relations", []):
                head, tail = entities[int(rel["head"])], entities[int(rel["tail"])]
                out.append({"row": i, "head": {k: head.get(k) for k in ("start", "end", "type", "text")}, "relation": rel["type"],
                            "tail": {k: tail.get(k) for k in ("start", "end", "type", "text")}, "confidence": rel.get("confidence")})
            continue
        _, head, tail = task.pair(record)  # offsets into the plain text, however the row marks the pair
        out.append({"row": i, "head": head, "relation": value, "tail": tail, "confidence": score})
    return out


def spacy_rows(config: Config, items: Iterator[tuple[dict[str, Any], Any]]) -> Iterator[tuple]:
    """(text, entities, relations or None[, span groups]) for each (record, label value) of an NER, relation,
    relations or roles config: what `spacy_docbin` writes. A marked pair's label becomes a relation between
    its spans E1 and E2 in the label's direction (none: no relation). Roles go to `doc.spans`: group "srl"
    holds every predicate (V) and argument (labeled by role), group "srl_N" the Nth predicate's."""
    from labelmill.tasks.relation import split_label

    task = make_task(config)
    for record, value in items:
        if config.task == "ner":
            yield task.render(record), list(value or []), None
        elif config.task == "relations":
            value = value or {}
            yield task.render(record), list(value.get("entities") or []), list(value.get("relations") or [])
        elif config.task == "roles":
            from labelmill.tasks.roles import frames_of

            groups: dict[str, list[dict[str, Any]]] = {"srl": []}
            for n, frame in enumerate(f for f in frames_of(value) if f["predicate"].get("start", -1) >= 0):
                spans = [{**frame["predicate"], "type": "V"}] + [{**a, "type": a["role"]} for a in frame["arguments"]]
                groups[f"srl_{n}"] = spans
                groups["srl"] += spans
            yield task.display_text(record), [], None, groups
        elif config.task == "relation":
            text, e1, e2 = task.pair(record)
            entities = [{**e1, "type": "E1"}, {**e2, "type": "E2"}]
            found = split_label(str(value)) if value is not None and str(value) != config.relation.none_label else None
            relations = [] if found is None else [{"head": 1 if found[1] else 0, "tail": 0 if found[1] else 1, "type": found[0]}]
            yield text, entities, relations
        else:
            raise ConfigError(f"the spacy format is for ner, relation, relations and roles tasks; this config is {config.task!r}",
                              fix="use --format label-studio (or jsonl, csv with --project)")


def spacy_docbin(rows: Iterator[tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None]], relation_types: list[str], dest: str | Path) -> Path:
    """Write (text, entities, relations) rows as a DocBin. Spans that do not fall on token boundaries are
    snapped outwards; one overlapping an earlier span is left out, with the relations that name it."""
    from labelmill.errors import MissingDependencyError

    try:
        import spacy
        from spacy.tokens import Doc, DocBin
    except ImportError:
        raise MissingDependencyError("spacy", "spacy", "the spaCy DocBin export") from None
    if not Doc.has_extension("rel"):
        Doc.set_extension("rel", default={})
    nlp = spacy.blank("xx")
    docs = DocBin(store_user_data=True)
    for text, entities, relations, *more in rows:
        doc = nlp.make_doc(text)
        for group, spans in (more[0] if more else {}).items():  # span groups may overlap (an argument of two predicates)
            made = [doc.char_span(int(s["start"]), int(s["end"]), label=str(s["type"]), alignment_mode="expand") for s in spans]
            doc.spans[group] = [m for m in made if m is not None]
        kept: dict[int, Any] = {}
        for n in sorted(range(len(entities)), key=lambda k: (int(entities[k]["start"]), -int(entities[k]["end"]))):
            span = entities[n]
            made = doc.char_span(int(span["start"]), int(span["end"]), label=str(span["type"]), alignment_mode="expand")
            if made is not None and all(made.start >= s.end or made.end <= s.start for s in kept.values()):
                kept[n] = made
        doc.ents = sorted(kept.values(), key=lambda s: s.start)
        if relations is not None:
            rel = {(a.start, b.start): {t: 0.0 for t in relation_types} for i, a in kept.items() for j, b in kept.items() if i != j}
            for r in relations:
                head, tail = kept.get(int(r["head"])), kept.get(int(r["tail"]))
                if head is not None and tail is not None:
                    rel.setdefault((head.start, tail.start), {t: 0.0 for t in relation_types})[str(r["type"])] = float(r.get("confidence") or 1.0)
            doc._.rel = rel
        docs.add(doc)
    dest = Path(dest)
    docs.to_disk(dest)
    return dest


def read_docbin(path: str | Path) -> list[Any]:
    """The docs of a DocBin written by `spacy_docbin` (with `doc._.rel` registered)."""
    import spacy
    from spacy.tokens import Doc, DocBin

    if not Doc.has_extension("rel"):
        Doc.set_extension("rel", default={})
    return list(DocBin().from_disk(path).get_docs(spacy.blank("xx").vocab))


def export(config: str | Path | dict | Config, labeled: str | Path, fmt: str, dest: str | Path) -> Path:
    """Write `labeled` (the output of a run with `config`) to `dest` in format `fmt`."""
    cfg = config if isinstance(config, Config) else load_config(config)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}", fix=f"choose one of: {', '.join(FORMATS)}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "label-studio":
        dest.write_text(json.dumps(label_studio_tasks(cfg, labeled), ensure_ascii=False, indent=1), encoding="utf-8")
        label_studio_config_path(dest).write_text(label_studio_config(cfg), encoding="utf-8")
    elif fmt == "spacy":
        items = ((record, value) for _, record, value, _ in _rows(cfg, labeled))
        spacy_docbin(spacy_rows(cfg, items), [k.name for k in cfg.relation.types], dest)
    else:
        with dest.open("w", encoding="utf-8") as fh:
            for item in relation_triples(cfg, labeled):
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    return dest
