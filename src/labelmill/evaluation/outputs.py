"""Reading a labeled output back: our columns (or their `_N` twins when the input had the same names), and
each row's prediction, confidence and error as eval compares them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from labelmill.config import Config
from labelmill.errors import InputDataError

if TYPE_CHECKING:
    import pandas as pd


def find_column(frame: pd.DataFrame, wanted: str) -> str:
    """Our added column: `wanted`, or the last `wanted_N` when the input already had that name."""
    matches = [c for c in frame.columns if c == wanted or re.fullmatch(re.escape(wanted) + r"_\d+", c)]
    if not matches:
        raise InputDataError(f"the output has no column {wanted!r}", fix="pass the file that `labelmill run` wrote, with the same config")
    return matches[-1]


def is_nan(value: Any) -> bool:
    try:
        return bool(np.isnan(float(value)))
    except (TypeError, ValueError):
        return True


def predictions(config: Config, task: Any, frame: pd.DataFrame, label: str | None = None, confidence: str | None = None) -> tuple[list[str], list[Any], np.ndarray]:
    """(error per row, prediction per row, confidence per row) from the output's label, confidence and error
    columns (or the `label`/`confidence` columns named): a row with an error has neither prediction nor confidence."""
    label_col = find_column(frame, label or config.output.label_column)
    conf_col = find_column(frame, confidence or config.output.confidence_column)
    error_col = find_column(frame, config.output.error_column)
    errors = [str(e) if e is not None and str(e) not in ("", "nan", "None") else "" for e in frame[error_col]]
    predicted = [None if err else task.parse_output(v) for v, err in zip(frame[label_col], errors)]
    conf = np.array([np.nan if err or c in (None, "") or is_nan(c) else float(c) for c, err in zip(frame[conf_col], errors)])
    return errors, predicted, conf


def closed_labels(task: Any) -> list[str] | None:
    """The label set of a task that answers from one (classification, matching, multilabel), else None."""
    labels = getattr(task, "labels", None)
    return list(labels) if labels and task.config.task in ("classification", "matching", "multilabel") else None


def values_of(value: Any) -> list[Any]:
    """A cell's labels: the labels of a multilabel answer, or the one label (None left out)."""
    return [v for v in (value if isinstance(value, (list, tuple, set)) else [value]) if v is not None]
