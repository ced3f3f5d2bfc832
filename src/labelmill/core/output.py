"""The output frame: the input columns plus label, confidence and error (and a strategy's columns), read
from the store, never overwriting an input column."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from labelmill.config import Config
from labelmill.io import free_column_name
from labelmill.store import Store
from labelmill.tasks import Task
from labelmill.types import Label

if TYPE_CHECKING:
    import pandas as pd

    from labelmill.numeric.calibration import Calibrator


def output_frame(
    store: Store, run_id: int, frame: pd.DataFrame, config: Config, task: Task, calibrator: Calibrator | None = None
) -> tuple[pd.DataFrame, dict[str, str], int]:
    """The input columns plus label, confidence and error columns that never overwrite input columns.

    With a `calibrator` (from `labelmill calibrate`), label and confidence are the calibrated ones; the
    raw ones (as stored) are kept in `llm_label_raw`/`llm_confidence_raw`, and `llm_needs_review` marks
    rows below the calibrated threshold for the target accuracy (and rows without a label).
    """
    spec = config.output
    taken = list(frame.columns)
    columns = {}
    for role, wanted in (("label", spec.label_column), ("confidence", spec.confidence_column), ("error", spec.error_column)):
        columns[role] = free_column_name(wanted, taken)
        taken.append(columns[role])
    if spec.include_distribution:
        columns["distribution"] = free_column_name("llm_distribution", taken)
    labels: list[Any] = [None] * len(frame)
    confidences: list[float | None] = [None] * len(frame)
    errors = [""] * len(frame)
    dists: list[str] = [""] * len(frame)
    row_signals: list[dict | None] = [None] * len(frame)
    explanations: list[str | None] = [None] * len(frame)
    extras: dict[str, list[Any]] = {}
    records = frame.to_dict("records")
    failed = 0
    seen = set()
    for item in store.annotations(run_id):
        seen.add(item.row_index)
        i = item.row_index
        if i >= len(frame):
            continue
        if item.label is not None:
            labels[i] = task.output_value(Label(value=item.label))
            confidences[i] = item.confidence
            dists[i] = json.dumps(item.distribution) if item.distribution else ""
            explanations[i] = item.explanation
            row_signals[i] = item.signals
            for suffix, value in task.extra_outputs(item.label, records[i]).items():
                extras.setdefault(suffix, [None] * len(frame))[i] = value
        else:
            failed += 1
            errors[i] = f"{item.error}: {item.error_detail}" if item.error_detail else item.error
    for i in range(len(frame)):
        if i not in seen:  # the run stopped before this row (cost cap, server down): a rerun labels it
            errors[i] = "pending: not labeled yet; rerun to label it"
    out = frame.copy()
    if calibrator is not None:
        raw_labels, raw_conf = list(labels), list(confidences)
        labels, confidences = calibrate_rows(calibrator, labels, confidences, [json.loads(d) if d else None for d in dists], row_signals)
        for role, values in (("label_raw", raw_labels), ("confidence_raw", raw_conf)):
            columns[role] = free_column_name(f"llm_{role}", list(out.columns) + list(columns.values()))
            out[columns[role]] = values
        threshold = calibrator.threshold
        review = [lab is None or c is None or threshold is None or c < threshold for lab, c in zip(labels, confidences)]
        columns["needs_review"] = free_column_name("llm_needs_review", list(out.columns) + list(columns.values()))
        out[columns["needs_review"]] = review
    out[columns["label"]] = labels
    out[columns["confidence"]] = confidences
    out[columns["error"]] = errors
    if spec.include_distribution:
        out[columns["distribution"]] = dists
    if config.reasoning.chain_of_thought or any(e is not None for e in explanations):
        columns["explanation"] = free_column_name("llm_explanation", list(out.columns))
        out[columns["explanation"]] = explanations
    for suffix, values in extras.items():
        columns[suffix] = free_column_name(f"llm_{suffix}", list(out.columns))
        out[columns[suffix]] = values
    return out, columns, failed


def calibrate_rows(
    calibrator: Calibrator, labels: list[Any], confidences: list[float | None], dists: list[dict | None], signals: list[dict | None] | None = None
) -> tuple[list[Any], list[float | None]]:
    """Calibrated (label, confidence) per row: from the label distribution where there is one, else from the confidence."""
    import numpy as np

    names = calibrator.labels
    out_labels, out_conf = list(labels), list(confidences)
    for i, (label, conf, dist) in enumerate(zip(labels, confidences, dists)):
        if label is None:
            continue
        if calibrator.method == "fused":
            if conf is not None:
                out_conf[i] = float(calibrator.apply(None, np.array([conf]), [signals[i] if signals else None])[1][0])
        elif dist and calibrator.method not in ("isotonic", "platt") and all(n in dist for n in names):
            predicted, calibrated = calibrator.apply(np.array([[float(dist[n]) for n in names]]), np.array([conf if conf is not None else np.nan]))
            out_labels[i], out_conf[i] = names[int(predicted[0])], float(calibrated[0])
        elif conf is not None:
            out_conf[i] = float(calibrator.confidence(np.array([conf]))[0])
    return out_labels, out_conf


def labeled_frame(
    frame: pd.DataFrame, config: Config, labels: list[Any], confidences: list[Any], errors: list[str],
    extra: dict[str, tuple[str, Any]] | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """A strategy's output: the input columns, the label, confidence and error columns named by the config,
    then the strategy's own columns (role -> (wanted name, values)). No column overwrites an input column:
    a taken name becomes name_2, name_3, ...; the returned map says which name each role got."""
    spec = config.output
    out = frame.copy()
    columns: dict[str, str] = {}
    wanted = [("label", spec.label_column, labels), ("confidence", spec.confidence_column, confidences), ("error", spec.error_column, errors)]
    wanted += [(role, name, values) for role, (name, values) in (extra or {}).items()]
    for role, name, values in wanted:
        columns[role] = free_column_name(name, [*frame.columns, *columns.values()])
        out[columns[role]] = values
    return out, columns
