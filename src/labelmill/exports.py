"""Labeled output in the formats other tools read.

  label-studio  Label Studio tasks JSON: each row's columns under `data`, the model's label as a
                `prediction` (model version and score). Classification and relation rows give a `choices`
                result; NER rows `labels` results with character offsets; relations rows both entity
                `labels` results and `relation` results linking them by id (Label Studio's relation format).
  triples       relations: one JSON line per relation, {row, head, relation, tail, confidence}, with the
                head's and tail's offsets, types and text (relation task: the marked pair and its label).

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

FORMATS = ("label-studio", "triples")


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


def label_studio_tasks(config: Config, labeled: str | Path) -> list[dict[str, Any]]:
    task_type = config.task
    shown = make_task(config).render  # the text as the model saw it (relation: the marked pair)
    tasks = []
    for i, record, value, score in _rows(config, labeled):
        data = {k: v for k, v in record.items() if not k.startswith("llm_")}
        result: list[dict[str, Any]] = []
        if task_type in ("ner", "relations"):
            data["text"] = shown(record)
            entities = (value or {}).get("entities", []) if task_type == "relations" else (value or [])
            for n, span in enumerate(entities):
                result.append({"id": f"r{i}e{n}", "from_name": "label", "to_name": "text", "type": "labels",
                               "value": {"start": span["start"], "end": span["end"], "text": span.get("text", data["text"][span["start"]:span["end"]]), "labels": [span["type"]]},
                               **({"score": span["confidence"]} if span.get("confidence") is not None else {})})
            for rel in (value or {}).get("relations", []) if task_type == "relations" else []:
                result.append({"from_id": f"r{i}e{rel['head']}", "to_id": f"r{i}e{rel['tail']}", "type": "relation", "direction": "right", "labels": [rel["type"]],
                               **({"score": rel["confidence"]} if rel.get("confidence") is not None else {})})
        elif value is not None:
            if task_type == "relation":
                data["text"] = shown(record)
            labels = value if isinstance(value, list) else [value]
            result.append({"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [str(v) for v in labels]}})
        item: dict[str, Any] = {"id": i + 1, "data": data}
        if result:
            item["predictions"] = [{"model_version": f"labelmill:{config.model.backend}:{config.model.name}", "score": score, "result": result}]
        tasks.append(item)
    return tasks


def relation_triples(config: Config, labeled: str | Path) -> list[dict[str, Any]]:
    from labelmill.tasks.relation import read_span

    if config.task not in ("relation", "relations"):
        raise ConfigError(f"the triples format is for relation and relations tasks; this config is {config.task!r}", fix="use --format label-studio")
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
        spec = config.relation
        text = str(record.get(spec.text_column) or "")
        if spec.head_column and spec.tail_column and "<e1>" not in text:
            head, tail = read_span(record.get(spec.head_column), text, spec.head_column), read_span(record.get(spec.tail_column), text, spec.tail_column)
        else:
            from labelmill.tasks.relation import marked_texts

            e1, e2 = marked_texts(text)
            head, tail = {"text": e1}, {"text": e2}
        out.append({"row": i, "head": head, "relation": value, "tail": tail, "confidence": score})
    return out


def export(config: str | Path | dict | Config, labeled: str | Path, fmt: str, dest: str | Path) -> Path:
    """Write `labeled` (the output of a run with `config`) to `dest` in format `fmt`."""
    cfg = config if isinstance(config, Config) else load_config(config)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}", fix=f"choose one of: {', '.join(FORMATS)}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "label-studio":
        dest.write_text(json.dumps(label_studio_tasks(cfg, labeled), ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        with dest.open("w", encoding="utf-8") as fh:
            for item in relation_triples(cfg, labeled):
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    return dest
