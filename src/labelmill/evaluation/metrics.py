"""Evaluation against gold labels: task metrics, the threshold table, calibration error.

The numeric core is plain functions over arrays: `correct (n,)` booleans, `confidence (n,)` floats with
NaN for rows that got no label.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from labelmill.config import Config
from labelmill.numeric.calibration import expected_calibration_error
from labelmill.io import read_rows
from labelmill.evaluation.autolabel_metrics import autolabel_section
from labelmill.evaluation.outputs import closed_labels, predictions, values_of
from labelmill.evaluation.unlabeled import summarize
from labelmill.core.strategy import EvalContext, all_strategies
from labelmill.tasks import make_task

# the metrics `eval` prints first, those a task reports, in this order; accuracy always with completion rate
HEADLINE_METRICS = (
    "accuracy", "completion_rate", "f1_strict", "f1_partial", "exact_match", "f1", "precision", "recall",
    "row_accuracy", "macro_f1", "micro_f1", "official_macro_f1", "relation_f1_strict", "entity_f1", "ece",
)
DISPLAY_THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99)


def threshold_table(correct: np.ndarray, confidence: np.ndarray, thresholds=DISPLAY_THRESHOLDS) -> list[dict[str, float]]:
    """For each threshold: the share of all rows with confidence >= it, and the accuracy of those rows."""
    n = len(correct)
    conf = np.where(np.isnan(confidence), -np.inf, confidence)
    rows = []
    for t in thresholds:
        mask = conf >= t
        kept = int(mask.sum())
        rows.append({"threshold": float(t), "share": kept / n if n else 0.0, "rows": kept, "accuracy": float(correct[mask].mean()) if kept else float("nan")})
    return rows


def threshold_for_target(correct: np.ndarray, confidence: np.ndarray, target: float) -> dict[str, float] | None:
    """The lowest confidence threshold whose rows at or above it reach `target` accuracy (max share)."""
    valid = ~np.isnan(confidence)
    conf, ok = confidence[valid], correct[valid].astype(float)
    if not len(conf):
        return None
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    cum_acc = np.cumsum(ok) / np.arange(1, len(ok) + 1)
    # only cut between distinct confidence values: ties are all in or all out
    last_of_value = np.r_[conf[1:] != conf[:-1], True]
    candidates = np.where(last_of_value & (cum_acc >= target))[0]
    if not len(candidates):
        return None
    i = candidates[-1]
    return {"threshold": float(conf[i]), "share": (i + 1) / len(correct), "accuracy": float(cum_acc[i]), "rows": int(i + 1)}


def evaluate(config: Config, output: Any, *, target: float = 0.95) -> dict[str, Any]:
    """Metrics of a labeled output (file or DataFrame) against its gold column."""
    frame = read_rows(output, config.dataset)
    task = make_task(config)
    needed = task.gold_columns()
    absent = [c for c in needed if c not in frame.columns]
    if not needed or absent:  # no gold: what a user can still learn from the labels alone
        why = "the config names no gold_column" if not needed else f"gold column {absent[0]!r} is not in the output"
        return summarize(config, task, frame, why)
    # Autolabel's metrics count every row of the output, those without gold too: before the filter below
    from_autolabel = {"autolabel": autolabel_section(config, task, frame)} if config.autolabel.task_type else {}
    all_gold = [task.gold(record) for record in frame.to_dict("records")]
    outside = _gold_outside_labels(task, all_gold)
    has_gold = [g is not None for g in all_gold]
    frame = frame[has_gold].reset_index(drop=True)
    gold = [g for g in all_gold if g is not None]
    errors, predicted, confidence = predictions(config, task, frame)
    metrics = task.metrics(gold, predicted)
    metrics.update(task.record_metrics(frame.to_dict("records"), predicted))
    # every report has the completion rate beside accuracy, whatever the task's own metrics say
    metrics.setdefault("n_rows", len(gold))
    metrics.setdefault("completion_rate", sum(p is not None for p in predicted) / len(gold) if gold else 0.0)
    correct = np.array([task.is_correct(g, p) for g, p in zip(gold, predicted)], dtype=bool)
    ece, bins = expected_calibration_error(correct, confidence)

    failure_kinds: dict[str, int] = {}
    for err in errors:
        if err:
            kind = err.split(":")[0]
            failure_kinds[kind] = failure_kinds.get(kind, 0) + 1
    metrics.update(
        {
            "ece": ece,
            "reliability": bins,
            "threshold_table": threshold_table(correct, confidence),
            **_thresholds(correct, confidence, target),
            "failures": failure_kinds,
            "n_rows_without_gold": int(len(has_gold) - sum(has_gold)),
            "gold_outside_labels": outside,
            "warnings": [f"gold values outside the config's labels: {', '.join(f'{k!r} ({v} rows)' for k, v in outside.items())}; "
                         "no label can match them, so they count as errors"] if outside else [],
        }
    )
    # a calibrated output (run --calibration) keeps the model's own label and confidence: before vs after
    if "llm_label_raw" in frame.columns and "llm_confidence_raw" in frame.columns:
        _, raw_pred, raw_c = predictions(config, task, frame, "llm_label_raw", "llm_confidence_raw")
        raw_ok = np.array([task.is_correct(g, p) for g, p in zip(gold, raw_pred)], dtype=bool)
        metrics["ece_before_calibration"], metrics["reliability_before_calibration"] = expected_calibration_error(raw_ok, raw_c)
        metrics["accuracy_before_calibration"] = float(raw_ok.mean())
    # what each strategy reads from an output it wrote (cascade sources, FreeAL's student and rounds)
    context = EvalContext(frame, task, gold, np.asarray(correct, dtype=bool), output if isinstance(output, (str, Path)) else None)
    for strategy in all_strategies():
        metrics.update(strategy.evaluate(context))
    metrics.update(from_autolabel)
    return metrics


def _thresholds(correct: np.ndarray, confidence: np.ndarray, target: float) -> dict[str, Any]:
    """The lowest threshold whose rows reach `target` here, and the one the bound `calibrate` uses certifies
    (Clopper-Pearson, 95%; None when these rows cannot certify one)."""
    from labelmill.numeric.calibration import threshold_with_bound

    chosen = threshold_for_target(correct, confidence, target)
    certified = threshold_with_bound(confidence, correct, target) if 0 < target < 1 else None
    return {
        "target": target,
        "threshold_for_target": chosen["threshold"] if chosen else None,
        "auto_share_at_target": chosen["share"] if chosen else 0.0,
        "auto_accuracy_at_target": chosen["accuracy"] if chosen else None,
        "threshold_with_bound": certified["threshold"] if certified else None,
        "share_with_bound": certified["seed_share"] if certified else 0.0,
        "lower_bound_at_threshold": certified["lower_bound"] if certified else None,
    }


def _gold_outside_labels(task: Any, gold: list[Any]) -> dict[str, int]:
    """{gold value: rows} of gold values a closed-label task cannot predict (a typo, a renamed label)."""
    labels = closed_labels(task)
    if labels is None:
        return {}
    outside = Counter(str(v) for g in gold for v in values_of(g) if v not in labels)
    return dict(outside)


def default_report_path(output: str | Path) -> Path:
    path = Path(output)
    return path.with_name(path.stem + ".report.html")
