"""A reviewed dataset in the formats people use, and Label Studio annotations back into the store.

  jsonl, csv, parquet  the input columns, the model's label and confidence, and the review columns
                       (review_label, reviewed_by, review_status, final_label, final_confidence); in the
                       CSV a text cell that a spreadsheet would run as a formula (it starts with =, +, -,
                       @, a tab or a carriage return) starts with a ' instead (OWASP's rule for CSV injection)
  label-studio         tasks JSON: the model's label as a `prediction` (model version, score), each
                       person's review as an `annotation`; `data.labelmill_row` ties a task to its row;
                       beside it `<name>.label_config.xml`, the labeling config to create the project with
  argilla              a folder in the layout Argilla 2.x's `Dataset.from_disk` reads: .argilla/settings.json,
                       .argilla/dataset.json and records.json, the model's label as a suggestion (score,
                       agent) and each review as a submitted response
  hf                   a Hugging Face `datasets` folder (`load_from_disk`) with the review columns
  conll                NER: token and BIO tag of the final label per line, sentences apart by a blank line
  spacy                NER, relation, relations: a spaCy DocBin (`.spacy`, what `spacy train` reads) with the
                       final spans as entities and relations in `doc._.rel` (labelmill.exports.spacy_docbin;
                       the spacy extra; spans that do not fall on token boundaries are snapped outwards)

`import_label_studio` reads Label Studio's JSON export (tasks with `annotations`) and adds each
annotation to the review log (kind `import`, annotator `label-studio:<user>`), so an export followed by an
import keeps every label.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelmill.errors import ConfigError, InputDataError, MissingDependencyError
from labelmill.exports import label_studio_config, label_studio_config_path, label_studio_result, label_studio_value

if TYPE_CHECKING:
    from labelmill.strategies.review.run import ReviewSession

EXPORTS = ("jsonl", "csv", "parquet", "label-studio", "argilla", "hf", "conll", "spacy")
FOLDERS = ("argilla", "hf")  # written as a folder (zipped when served by the app)
TOKEN = re.compile(r"\S+")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _stored(session: ReviewSession, i: int) -> dict[str, Any]:
    """Row i's labels in their stored form: the model's, each annotator's, the final one."""
    item = session.table.get(i)
    settled = session.reviewed()
    return {
        "model": None if item is None or item.label is None else session.task.output_value(_as_label(item.label)),
        "confidence": None if item is None else item.confidence,
        "ratings": session.log.ratings().get(i, {}),
        "final": settled.get(i, session.routing.labels[i]),
        "reviewed": i in settled,
    }


def _as_label(value: Any):
    from labelmill.types import Label

    return Label(value=value)


def export(session: ReviewSession, fmt: str, dest: str | Path) -> Path:
    """Write the session's rows with their reviews to `dest` (a file, or a folder for argilla and hf)."""
    if fmt not in EXPORTS:
        raise ConfigError(f"unknown export format {fmt!r}", fix=f"choose one of: {', '.join(EXPORTS)}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    frame, _ = session.labeled_frame()
    if fmt == "jsonl":
        with dest.open("w", encoding="utf-8") as fh:
            for record in frame.to_dict("records"):
                fh.write(json.dumps(_jsonable(record), ensure_ascii=False) + "\n")
    elif fmt == "csv":
        spreadsheet_safe(_flat(frame)).to_csv(dest, index=False)
    elif fmt == "parquet":
        _flat(frame).to_parquet(dest, index=False)
    elif fmt == "label-studio":
        dest.write_text(json.dumps(label_studio_tasks(session), ensure_ascii=False, indent=1), encoding="utf-8")
        label_studio_config_path(dest).write_text(label_studio_config(session.config), encoding="utf-8")
    elif fmt == "argilla":
        write_argilla(session, dest)
    elif fmt == "hf":
        write_hf(frame, dest)
    elif fmt == "conll":
        write_conll(session, dest)
    else:
        write_docbin(session, dest)
    return dest


def export_bytes(session: ReviewSession, fmt: str) -> tuple[bytes, str, str]:
    """(content, file name, media type) for a download from the app; folders come zipped."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", session.config.name or session.config.task)
    suffix = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet", "label-studio": ".label-studio.json", "conll": ".conll", "spacy": ".spacy"}.get(fmt, ".zip")
    media = {"jsonl": "application/x-ndjson", "csv": "text/csv", "label-studio": "application/json", "conll": "text/plain"}.get(fmt, "application/octet-stream")
    with tempfile.TemporaryDirectory() as tmp:
        path = export(session, fmt, Path(tmp) / f"out{suffix if fmt not in FOLDERS else ''}")
        if fmt in FOLDERS:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(path.rglob("*")):
                    if f.is_file():
                        zf.write(f, f.relative_to(path).as_posix())
            return buffer.getvalue(), f"{name}-{fmt}.zip", "application/zip"
        return path.read_bytes(), f"{name}{suffix}", media


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: Any) -> Any:
    """Text cells a spreadsheet would run as a formula, with a ' in front (shown as text, never run)."""
    out = frame.copy()
    for column in out.columns:  # (text columns are object or str dtype, by pandas version: every column is looked at)
        out[column] = out[column].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v)
    return out


def _flat(frame: Any) -> Any:
    """Lists and dicts as JSON text, for CSV and Parquet."""
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, (list, dict))).any():
            out[column] = out[column].map(lambda v: json.dumps(_jsonable(v), ensure_ascii=False) if isinstance(v, (list, dict)) else v)
    return out


# Label Studio --------------------------------------------------------------------------------------
def label_studio_tasks(session: ReviewSession) -> list[dict[str, Any]]:
    cfg = session.config
    kind = cfg.task
    tasks = []
    model_version = f"labelmill:{cfg.model.backend}:{cfg.model.name}"
    for i, record in enumerate(session.records):
        data = {str(k): _jsonable(v) for k, v in record.items()}
        data["labelmill_row"] = i
        text = session.texts[i]
        if kind in ("ner", "relations", "relation", "temporal", "roles") or "text" not in data:
            data["text"] = text
        labels = _stored(session, i)
        item: dict[str, Any] = {"id": i + 1, "data": data}
        prediction = label_studio_result(kind, labels["model"], text, f"p{i}")
        if prediction:
            item["predictions"] = [{"model_version": model_version, "score": labels["confidence"], "result": prediction}]
        annotations = []
        for n, (who, value) in enumerate(sorted(labels["ratings"].items())):
            annotations.append({"id": i * 100 + n + 1, "completed_by": {"email": f"{who}@labelmill.local", "labelmill_annotator": who}, "result": label_studio_result(kind, value, text, f"a{i}_{n}"),
                                "was_cancelled": False, "ground_truth": False})
        if annotations:
            item["annotations"] = annotations
        tasks.append(item)
    return tasks


def import_label_studio(session: ReviewSession, path: str | Path) -> int:
    """Add the annotations in a Label Studio JSON export to the review log; returns how many. Tasks are
    matched to rows by `data.labelmill_row` (set by our export), else by their text."""
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputDataError(f"cannot read Label Studio export {path}: {exc}", fix="export JSON from Label Studio (Export > JSON)") from None
    if not isinstance(tasks, list):
        raise InputDataError(f"{path} is not a Label Studio JSON export (a list of tasks)")
    by_text = {t: i for i, t in enumerate(session.texts)}
    items = []
    for n, task in enumerate(tasks, start=1):
        if not isinstance(task, dict):
            raise InputDataError(f"{path}: task {n} is not an object")
        data = task.get("data") or {}
        row = data.get("labelmill_row")
        if not isinstance(row, int):
            row = by_text.get(str(data.get("text", "")))
        if row is None or not 0 <= row < len(session.records):
            raise InputDataError(f"{path}: task {n} matches no row of this run", fix="import the export of this same dataset")
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            value = label_studio_value(session.config.task, annotation.get("result") or [])
            if value is None:
                continue
            label = session.check_label(value, row)
            item = session.table.get(row)
            items.append((row, session.row_hashes[row], _ls_user(annotation.get("completed_by")), label, session.routing.labels[row],
                          None if item is None else item.label, None if item is None else item.confidence))
    count = session.log.add_many(items, kind="import")
    session.refit()
    return count


def _ls_user(value: Any) -> str:
    """Our own annotator's name when the annotation came from our export, else label-studio:<user>."""
    if isinstance(value, dict):
        if value.get("labelmill_annotator"):
            return str(value["labelmill_annotator"])
        value = value.get("email") or value.get("username") or value.get("id")
    return f"label-studio:{value if value is not None else 'unknown'}"


# Argilla ----------------------------------------------------------------------------------------------
def _options(names: list[str]) -> list[dict[str, Any]]:
    return [{"value": n, "text": n, "description": None} for n in names]


def argilla_settings(session: ReviewSession) -> dict[str, Any]:
    kind = session.config.task
    names = [str(n) for n in (session.names or session.config.label_names)]
    if kind == "multilabel":
        question = {"type": "multi_label_selection", "options": _options(names), "visible_options": None, "options_order": "natural"}
    elif kind == "ner":
        question = {"type": "span", "field": "text", "allow_overlapping": False, "options": _options(names), "visible_options": None}
    elif kind in ("qa", "extraction", "relations"):
        question = {"type": "text", "use_markdown": False}
    else:
        question = {"type": "label_selection", "options": _options(names), "visible_options": None}
    return {
        "guidelines": session.config.guidelines or None,
        "questions": [{"name": "label", "title": "label", "description": None, "required": True, "settings": question}],
        "fields": [{"name": "text", "title": "text", "required": True, "description": None, "settings": {"type": "text", "use_markdown": False}}],
        "vectors": [],
        "metadata": [{"name": "row", "title": "row", "visible_for_annotators": True, "settings": {"type": "integer", "min": None, "max": None}}],
        "allow_extra_metadata": True,
        "distribution": {"strategy": "overlap", "min_submitted": max(1, session.overlap)},
        "mapping": None,
    }


def _argilla_value(kind: str, value: Any) -> Any:
    if kind == "ner":
        return [{"start": s["start"], "end": s["end"], "label": s["type"]} for s in value or []]
    if kind in ("extraction", "relations"):
        return json.dumps(value, ensure_ascii=False)
    return value


def write_argilla(session: ReviewSession, dest: Path) -> Path:
    kind = session.config.task
    if dest.exists():
        shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
    (dest / ".argilla").mkdir(parents=True)
    settings = argilla_settings(session)
    (dest / ".argilla" / "settings.json").write_text(json.dumps(settings, ensure_ascii=False), encoding="utf-8")
    dataset = {"id": None, "name": session.config.name or session.config.task, "status": "draft", "guidelines": settings["guidelines"],
               "allow_extra_metadata": True, "distribution": settings["distribution"], "workspace_id": None}
    (dest / ".argilla" / "dataset.json").write_text(json.dumps(dataset, ensure_ascii=False), encoding="utf-8")
    agent = f"labelmill:{session.config.model.backend}:{session.config.model.name}"
    records = []
    for i in range(len(session.records)):
        labels = _stored(session, i)
        suggestions = {}
        if labels["model"] is not None:
            score = labels["confidence"]
            if kind == "ner":
                score = [score for _ in labels["model"]] if score is not None else None
            suggestions["label"] = {"value": _argilla_value(kind, labels["model"]), "score": score, "agent": agent}
        responses = [{"value": _argilla_value(kind, v), "user_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"labelmill:{who}")), "status": "submitted"}
                     for who, v in sorted(labels["ratings"].items())]
        records.append({"id": f"row-{i}", "fields": {"text": session.texts[i]}, "metadata": {"row": i}, "suggestions": suggestions,
                        "responses": {"label": responses} if responses else {}, "vectors": {}, "status": "completed" if responses else "pending",
                        "_server_id": None})
    (dest / "records.json").write_text(json.dumps(_jsonable(records), ensure_ascii=False), encoding="utf-8")
    return dest


# Hugging Face datasets ----------------------------------------------------------------------------------
def write_hf(frame: Any, dest: Path) -> Path:
    try:
        import datasets
    except ImportError:
        raise MissingDependencyError("datasets", "hf", "the Hugging Face datasets export") from None
    if dest.exists():
        shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
    datasets.Dataset.from_pandas(_flat(frame), preserve_index=False).save_to_disk(str(dest))
    return dest


# CoNLL / BIO --------------------------------------------------------------------------------------------
def bio_tokens(text: str, spans: list[dict[str, Any]], tokens: list[str] | None = None) -> list[tuple[str, str]]:
    """(token, BIO tag) pairs: the NER task's own tagging over `tokens` (or whitespace tokens)."""
    from labelmill.tasks.ner import spans_to_bio

    words = tokens if tokens else TOKEN.findall(text)
    return list(zip(words, spans_to_bio(text, spans or [], tokens)))


def write_conll(session: ReviewSession, dest: Path) -> Path:
    if session.config.task != "ner":
        raise ConfigError(f"the conll format is for NER; this config is {session.config.task!r}", fix="use jsonl, csv, label-studio or argilla")
    with dest.open("w", encoding="utf-8") as fh:
        for i in range(len(session.records)):
            final = _stored(session, i)["final"] or []
            column = session.config.ner.tokens_column
            tokens = session.records[i].get(column) if column else None
            tokens = json.loads(tokens) if isinstance(tokens, str) and tokens.startswith("[") else tokens
            for token, tag in bio_tokens(session.texts[i], final, list(tokens) if isinstance(tokens, (list, tuple)) else None):
                fh.write(f"{token}\t{tag}\n")
            fh.write("\n")
    return dest


def write_docbin(session: ReviewSession, dest: Path) -> Path:
    from labelmill.exports import spacy_docbin, spacy_rows

    cfg = session.config
    if cfg.task not in ("ner", "relation", "relations", "roles"):
        raise ConfigError(f"the spacy format is for ner, relation, relations and roles tasks; this config is {cfg.task!r}", fix="use jsonl, csv, label-studio or argilla")
    items = ((session.records[i], _stored(session, i)["final"]) for i in range(len(session.records)))
    return spacy_docbin(spacy_rows(cfg, items), [k.name for k in cfg.relation.types], dest)


def read_conll(path: str | Path) -> list[list[tuple[str, str]]]:
    """Sentences of (token, tag) from a CoNLL/BIO file (tab or space separated, last column the tag)."""
    sentences, current = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if current:
                sentences.append(current)
                current = []
            continue
        parts = line.split()
        current.append((parts[0], parts[-1]))
    if current:
        sentences.append(current)
    return sentences
