"""The store read back as types: one `StoredLabel` per annotation, a run's labels as arrays (`LabelTable`),
and the weak-supervision label matrix `L[n, m]` (-1 = abstain) over several runs.

Strategies read labels through these, never through SQL or dict keys, so a column added to the
annotations table changes one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ABSTAIN = -1


@dataclass
class Annotation:
    """One row's label (or typed failure) with its provenance."""

    row_index: int
    row_hash: str
    label: Any  # JSON-able value, None on failure
    error: str | None
    error_detail: str | None
    confidence: float | None
    distribution: dict[str, float] | None
    signals: dict[str, float] | None
    raw_answer: str | None
    method: str
    backend: str
    model_id: str
    model_sha256: str | None
    prompt_hash: str
    guidelines_hash: str
    cache_key: str
    cached: bool
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    source: str = "llm"
    explanation: str | None = None



@dataclass
class StoredLabel(Annotation):
    """One row's stored label (or typed failure) with its provenance, as read back from a run."""

    run_id: int = 0
    created_at: float = 0.0
    id: int | None = field(default=None, compare=False)

    @property
    def has_label(self) -> bool:
        return self.label is not None

    def probabilities(self, names: Sequence[str]) -> np.ndarray | None:
        """The label distribution over `names` in that order, or None where it does not cover them all."""
        if self.label is None or not self.distribution or not all(n in self.distribution for n in names):
            return None
        return np.array([float(self.distribution[n]) for n in names])

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StoredLabel:
        row = dict(row)
        row["cached"] = bool(row["cached"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in row.items() if k in known})


@dataclass
class LabelTable:
    """A run's labels over rows 0..n-1, as arrays (rows with no annotation hold None / NaN / -1)."""

    rows: list[StoredLabel | None]
    names: list[str]

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, i: int) -> StoredLabel | None:
        return self.rows[i] if 0 <= i < len(self.rows) else None

    @property
    def labels(self) -> list[Any]:
        """(n,) the labels, None where a row has none."""
        return [None if r is None else r.label for r in self.rows]

    @property
    def label_ids(self) -> np.ndarray:
        """(n,) each label's index in `names`; -1 where there is none or it is not in `names`."""
        index = {n: i for i, n in enumerate(self.names)}
        return np.array([index.get(r.label, ABSTAIN) if r is not None and isinstance(r.label, str) else ABSTAIN for r in self.rows], dtype=int)

    @property
    def confidence(self) -> np.ndarray:
        """(n,) the stored confidence, NaN where a row has no label or no confidence."""
        return np.array([np.nan if r is None or r.label is None or r.confidence is None else float(r.confidence) for r in self.rows])

    @property
    def probs(self) -> np.ndarray:
        """(n, k) the label distributions over `names`; a row without a full distribution is all NaN."""
        out = np.full((len(self.rows), len(self.names)), np.nan)
        for i, r in enumerate(self.rows):
            p = None if r is None else r.probabilities(self.names)
            if p is not None:
                out[i] = p
        return out

    @property
    def has_distribution(self) -> np.ndarray:
        """(n,) True where the row has a distribution over every name."""
        return ~np.isnan(self.probs).any(axis=1) if self.names else np.zeros(len(self.rows), dtype=bool)

    @property
    def signals(self) -> list[dict[str, float] | None]:
        return [None if r is None else r.signals for r in self.rows]

    @property
    def errors(self) -> list[str | None]:
        return [None if r is None else r.error for r in self.rows]


def label_table(items: Sequence[StoredLabel], n_rows: int | None = None, names: Sequence[str] = ()) -> LabelTable:
    """Index stored labels by row: rows 0..n_rows-1 (default: up to the last row stored)."""
    n = n_rows if n_rows is not None else (max((s.row_index for s in items), default=-1) + 1)
    rows: list[StoredLabel | None] = [None] * n
    for s in items:
        if 0 <= s.row_index < n:
            rows[s.row_index] = s
    return LabelTable(rows, list(names))


def label_matrix(tables: Sequence[LabelTable]) -> np.ndarray:
    """L[n, m]: column j holds table j's label index per row, -1 where it abstained (no label, or a label
    outside its names). All tables must cover the same rows and share the same names."""
    if not tables:
        return np.zeros((0, 0), dtype=int)
    n = len(tables[0])
    if any(len(t) != n for t in tables) or any(t.names != tables[0].names for t in tables):
        raise ValueError("label_matrix needs tables over the same rows and the same label names")
    return np.stack([t.label_ids for t in tables], axis=1)
