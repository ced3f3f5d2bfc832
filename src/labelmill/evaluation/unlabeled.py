"""`eval` without gold labels: what the labels alone say, and what to do next.

A new user has no gold column. The output still tells a lot: how the answers spread over the labels (a
label the model almost never gives, with confident answers, is a silent failure), how confident it was,
and which rows it was least sure of (the ones to review first).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelmill.config import Config
from labelmill.evaluation.outputs import closed_labels, predictions, values_of

RARE_SHARE = 0.02  # a label under this share of the answers gets a warning
CONSTANT_SHARE = 0.9  # one label over this share of the answers (with enough rows) gets a warning
SHOWN_ROWS = 10


def summarize(config: Config, task: Any, frame: Any, why: str) -> dict[str, Any]:
    """Label counts, the spread of confidence, the least confident rows, warnings and the next commands."""
    n = len(frame)
    _, predicted, confidence = predictions(config, task, frame)
    labeled = int(sum(p is not None for p in predicted))
    out: dict[str, Any] = {"gold": False, "why_no_gold": why, "n_rows": n, "completion_rate": labeled / n if n else 0.0,
                           "label_counts": _counts(task, predicted), "confidence": _spread(confidence)}
    out["least_confident"] = _least_confident(task, frame, predicted, confidence)
    out["warnings"] = _warnings(out["label_counts"], labeled, n - labeled)
    out["next"] = [
        "review the least confident rows first: labelmill review CONFIG OUTPUT (the queue starts with them; "
        "your answers become the labels, the examples and the estimate of the whole dataset's accuracy)",
        "or label a few hundred rows by hand, put them in gold_column, and run labelmill eval / labelmill calibrate for a threshold with a bound",
    ]
    return out


def _counts(task: Any, predicted: list[Any]) -> dict[str, int] | None:
    """{label: answers} over the config's labels (zeros included), for the tasks with a closed label set."""
    labels = closed_labels(task)
    if labels is None:
        return None
    counts = dict.fromkeys(map(str, labels), 0)
    for v in (str(v) for p in predicted for v in values_of(p)):
        counts[v] = counts.get(v, 0) + 1
    return counts


def _spread(confidence: np.ndarray) -> dict[str, float] | None:
    c = confidence[~np.isnan(confidence)]
    if not len(c):
        return None
    q = np.quantile(c, [0.1, 0.25, 0.5, 0.75, 0.9])
    return {"mean": float(c.mean()), "p10": float(q[0]), "p25": float(q[1]), "median": float(q[2]), "p75": float(q[3]), "p90": float(q[4]),
            "share_below_0.5": float((c < 0.5).mean()), "share_below_0.7": float((c < 0.7).mean()), "share_below_0.9": float((c < 0.9).mean())}


def _least_confident(task: Any, frame: Any, predicted: list[Any], confidence: np.ndarray) -> list[dict[str, Any]]:
    """The rows the model was least sure of (rows with no label first), with their text, for a first look."""
    order = np.argsort(np.where(np.isnan(confidence), -1.0, confidence), kind="stable")[:SHOWN_ROWS]
    records = frame.to_dict("records")
    rows = []
    for i in order.tolist():
        text = task.render(records[i])
        rows.append({"row": i, "label": None if predicted[i] is None else str(predicted[i]),
                     "confidence": None if np.isnan(confidence[i]) else round(float(confidence[i]), 4),
                     "text": text if len(text) <= 160 else text[:157] + "..."})
    return rows


def _warnings(counts: dict[str, int] | None, labeled: int, failed: int) -> list[str]:
    warnings = []
    if failed:
        warnings.append(f"{failed} rows got no label (the output's error column says why)")
    if not counts or labeled < 10:
        return warnings
    hint = "add a few examples of it, try a stronger model (model.name: qwen2.5-coder-1.5b), or review 50 rows"
    for label, count in counts.items():
        if count < RARE_SHARE * labeled:
            warnings.append(f"label {label!r} is {count} of {labeled} answers ({count / labeled:.0%}): the model may not be choosing it; {hint}")
    top, most = max(counts.items(), key=lambda kv: kv[1])
    if labeled >= 20 and len(counts) > 1 and most > CONSTANT_SHARE * labeled:
        warnings.append(f"label {top!r} is {most / labeled:.0%} of the answers: nearly constant; check the guideline and the label names")
    return warnings
