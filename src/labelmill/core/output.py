"""The output frame: the input columns plus label, confidence and error (and a strategy's columns), read
from the store, never overwriting an input column."""

from __future__ import annotations

import json
from dataclasses import dataclass
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
    rows = _StoredRows.read(store, run_id, frame, task)
    out = frame.copy()
    labels, confidences = rows.labels, rows.confidences
    if calibrator is not None:
        labels, confidences = _calibrated_columns(out, columns, calibrator, rows)
    out[columns["label"]] = labels
    out[columns["confidence"]] = confidences
    out[columns["error"]] = rows.errors
    if spec.include_distribution:
        out[columns["distribution"]] = rows.dists
    if config.reasoning.chain_of_thought or any(e is not None for e in rows.explanations):
        columns["explanation"] = free_column_name("llm_explanation", list(out.columns))
        out[columns["explanation"]] = rows.explanations
    for suffix, values in rows.extras.items():
        columns[suffix] = free_column_name(f"llm_{suffix}", list(out.columns))
        out[columns[suffix]] = values
    return out, columns, rows.failed


@dataclass
class _StoredRows:
    """A run's annotations as the output's columns: label, confidence, error, distribution, signals,
    explanation and a task's extra outputs per row; rows the run has not reached say so in their error."""

    labels: list[Any]
    confidences: list[float | None]
    errors: list[str]
    dists: list[str]
    signals: list[dict | None]
    explanations: list[str | None]
    extras: dict[str, list[Any]]
    failed: int

    @classmethod
    def read(cls, store: Store, run_id: int, frame: pd.DataFrame, task: Task) -> _StoredRows:
        n = len(frame)
        rows = cls([None] * n, [None] * n, [""] * n, [""] * n, [None] * n, [None] * n, {}, 0)
        records = frame.to_dict("records")
        seen = set()
        for item in store.annotations(run_id):
            seen.add(item.row_index)
            i = item.row_index
            if i >= n:
                continue
            if item.label is None:
                rows.failed += 1
                rows.errors[i] = f"{item.error}: {item.error_detail}" if item.error_detail else item.error
                continue
            rows.labels[i] = task.output_value(Label(value=item.label))
            rows.confidences[i] = item.confidence
            rows.dists[i] = json.dumps(item.distribution) if item.distribution else ""
            rows.explanations[i] = item.explanation
            rows.signals[i] = item.signals
            for suffix, value in task.extra_outputs(item.label, records[i]).items():
                rows.extras.setdefault(suffix, [None] * n)[i] = value
        for i in range(n):
            if i not in seen:  # the run stopped before this row (cost cap, server down): a rerun labels it
                rows.errors[i] = "pending: not labeled yet; rerun to label it"
        return rows


def _calibrated_columns(out: pd.DataFrame, columns: dict[str, str], calibrator: Calibrator, rows: _StoredRows) -> tuple[list[Any], list[float | None]]:
    """The calibrated labels and confidences; the raw ones and `needs_review` added to `out` as columns."""
    labels, confidences = calibrate_rows(calibrator, rows.labels, rows.confidences, [json.loads(d) if d else None for d in rows.dists], rows.signals)
    for role, values in (("label_raw", rows.labels), ("confidence_raw", rows.confidences)):
        columns[role] = free_column_name(f"llm_{role}", list(out.columns) + list(columns.values()))
        out[columns[role]] = list(values)
    threshold = calibrator.threshold
    review = [lab is None or c is None or threshold is None or c < threshold for lab, c in zip(labels, confidences)]
    columns["needs_review"] = free_column_name("llm_needs_review", list(out.columns) + list(columns.values()))
    out[columns["needs_review"]] = review
    return labels, confidences


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
