"""Autolabel's own metrics of an output labeled from an Autolabel config, computed as Autolabel 0.0.16 computes
them, so a user coming from Autolabel reads the numbers they know beside ours (`eval`: `metrics["autolabel"]`).

What Autolabel reports per task type (its `tasks/*.py` metric lists):
- every type: `support` (all rows), `completion_rate` (rows whose answer parsed), `accuracy` (over the rows
  that parsed and have a gold value: the answer equal to the gold cell's text), `auroc` (whether the answer
  is right against its confidence, over the same rows; 1 or 0 when every answer is right or every one wrong);
- question_answering: also `f1`, the mean over the rows of the token-set F1 of answer and gold after
  Autolabel's normalisation (lower case, punctuation and the articles a/an/the removed), a row that failed
  counting 0 but not in the denominator;
- multilabel_classification: also `f1_micro`, `f1_macro`, `f1_weighted` over the label set;
- attribute_extraction: support, completion rate and accuracy per attribute, named `<attribute>:<metric>`.

Where our output and Autolabel's differ in form, the comparison is on the values, not their spelling:
multilabel answers and gold as sets (Autolabel compares the joined strings, so order mattered there);
our unanswerable answer (an empty cell) read as the word "unanswerable" that Autolabel's QA configs ask for;
extracted values compared as text after JSON decoding (Autolabel compares a parsed value with the raw cell);
NER spans (Autolabel's conll2003 layout) as the set of mention texts per type (our gold marks every
occurrence of a mention, Autolabel's lists name it once).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_text(text: str) -> str:
    """Autolabel's normalisation: lower case, punctuation removed, articles removed, whitespace collapsed."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def text_f1(answer: str, gold: str) -> float:
    """Token-set F1 after normalisation; an empty side scores 1 only when both are empty."""
    truth, pred = normalize_text(gold).split(" "), normalize_text(answer).split(" ")
    truth, pred = [t for t in truth if t] or [], [t for t in pred if t] or []
    if not truth or not pred:
        return float(truth == pred)
    common = set(truth) & set(pred)
    if not common:
        return 0.0
    recall, precision = len(common) / len(truth), len(common) / len(pred)
    return 2 * precision * recall / (precision + recall)


def auroc(match: Sequence[bool], confidence: Sequence[float]) -> float | None:
    """Autolabel's AUROC of right-or-wrong against confidence; None when no confidence is known."""
    conf = np.asarray(confidence, dtype=float)
    ok = np.asarray(match, dtype=int)
    keep = ~np.isnan(conf)
    if not keep.any():
        return None
    ok, conf = ok[keep], conf[keep]
    if len(set(ok.tolist())) == 1:
        return float(ok[0])
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(ok, conf))


def _base(parsed: Sequence[bool], has_gold: Sequence[bool], match: Sequence[bool], confidence: Sequence[float]) -> dict[str, Any]:
    n = len(parsed)
    scored = [i for i in range(n) if parsed[i] and has_gold[i]]
    out: dict[str, Any] = {
        "support": n,
        "completion_rate": sum(parsed) / n if n else 0.0,
        "accuracy": sum(match[i] for i in scored) / len(scored) if scored else 0.0,
    }
    area = auroc([match[i] for i in scored], [confidence[i] for i in scored])
    if area is not None:
        out["auroc"] = area
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def single_label(answers: Sequence[Any], gold: Sequence[Any], confidence: Sequence[float]) -> dict[str, Any]:
    """classification and entity_matching: the answer's text against the gold cell's."""
    parsed = [a is not None for a in answers]
    has_gold = [g is not None for g in gold]
    match = [a is not None and g is not None and _text(a) == _text(g) for a, g in zip(answers, gold)]
    return _base(parsed, has_gold, match, confidence)


def question_answering(answers: Sequence[Any], gold: Sequence[Any], confidence: Sequence[float]) -> dict[str, Any]:
    out = single_label(answers, gold, confidence)
    scores, failed = [], 0
    for a, g in zip(answers, gold):
        if a is None or g is None:
            scores.append(0.0)
            failed += 1
        else:
            scores.append(text_f1(_text(a), _text(g)))
    out["f1"] = sum(scores) / (len(scores) - failed) if len(scores) > failed else 0.0
    return out


def multilabel(answers: Sequence[Any], gold: Sequence[Any], confidence: Sequence[float], labels: Sequence[str]) -> dict[str, Any]:
    """Answers and gold as label sets; F1 micro, macro and weighted over the label set, on the rows that parsed."""
    as_set = lambda v: frozenset(str(x) for x in (v if isinstance(v, (list, tuple, set, frozenset)) else [v]) if x is not None)
    parsed = [a is not None for a in answers]
    has_gold = [g is not None for g in gold]
    match = [a is not None and g is not None and as_set(a) == as_set(g) for a, g in zip(answers, gold)]
    out = _base(parsed, has_gold, match, confidence)
    rows = [i for i in range(len(answers)) if parsed[i] and has_gold[i]]
    if rows:
        from sklearn.metrics import f1_score

        index = {name: j for j, name in enumerate(labels)}
        def binary(values: Any) -> np.ndarray:
            row = np.zeros(len(labels), dtype=int)
            for v in as_set(values):
                if v in index:
                    row[index[v]] = 1
            return row
        truth = np.array([binary(gold[i]) for i in rows])
        pred = np.array([binary(answers[i]) for i in rows])
        for average in ("micro", "macro", "weighted"):
            out[f"f1_{average}"] = float(f1_score(truth, pred, average=average, zero_division=0))
    return out


def attributes(answers: Sequence[dict[str, Any] | None], gold: Sequence[dict[str, Any] | None], names: Sequence[str]) -> dict[str, Any]:
    """attribute_extraction: support, completion rate and accuracy per attribute (`name:metric`)."""
    out: dict[str, Any] = {}
    for name in names:
        values = [None if a is None else a.get(name, None) for a in answers]
        truth = [None if g is None else g.get(name) for g in gold]
        parsed = [a is not None for a in answers]
        has_gold = [t is not None for t in truth]
        match = [p and t is not None and _canonical(v) == _canonical(t) for p, v, t in zip(parsed, values, truth)]
        for key, value in _base(parsed, has_gold, match, [float("nan")] * len(values)).items():
            out[f"{name}:{key}"] = value
    return out


def _canonical(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_text(v) for v in value]
    return _text(value)


def mentions_by_type(spans: Any, types: Sequence[str]) -> dict[str, list[str]] | None:
    """NER spans as Autolabel's attribute layout: {type: [its mention texts, each once, sorted]}."""
    if spans is None:
        return None
    found: dict[str, set[str]] = {t: set() for t in types}
    for span in spans:
        found.setdefault(span["type"], set()).add(span["text"])
    return {t: sorted(texts) for t, texts in found.items()}


def autolabel_section(config: Any, task: Any, frame: Any) -> dict[str, Any]:
    """Autolabel's metrics of an output `frame` (every row, as Autolabel counts them) for a converted config."""
    from labelmill.evaluation.outputs import find_column, predictions

    kind = config.autolabel.task_type
    errors, predicted, confidence = predictions(config, task, frame)
    records = frame.to_dict("records")
    out: dict[str, Any] = {"task_type": kind}
    if kind == "attribute_extraction":
        gold = [task.gold(r) for r in records]
        if config.task == "ner":
            names = list(config.label_names)
            answers = [mentions_by_type(p, names) for p in predicted]
            truth = [mentions_by_type(g, names) for g in gold]
        else:
            names = [a.name for a in config.attributes]
            answers, truth = list(predicted), gold
        out.update(attributes(answers, truth, names))
        return out
    if kind == "multilabel_classification":
        out.update(multilabel(predicted, [task.gold(r) for r in records], confidence, config.label_names))
        return out
    if kind == "named_entity_recognition":  # Autolabel's older NER: its entity F1 is ours (`f1_strict`)
        out.update(_base([p is not None for p in predicted], [True] * len(predicted), [False] * len(predicted), [float("nan")] * len(predicted)))
        out.pop("accuracy")
        return out
    label_column = find_column(frame, config.output.label_column)
    answers = [None if err else (None if _missing(v) else v) for v, err in zip(frame[label_column], errors)]
    gold = [None if _missing(v) else v for v in (frame[config.gold_column] if config.gold_column in frame.columns else [None] * len(frame))]
    if kind == "question_answering":
        # our unanswerable answer is an empty cell; Autolabel's QA configs ask the model to write the word
        answers = [None if err else ("unanswerable" if _missing(v) else v) for v, err in zip(frame[label_column], errors)]
        out.update(question_answering(answers, gold, confidence))
    else:
        out.update(single_label(answers, gold, confidence))
    return out


def _missing(value: Any) -> bool:
    """An empty cell (outputs are read as text: "" or "nan"), as Autolabel's gold "nan"."""
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() in ("", "nan", "None")
