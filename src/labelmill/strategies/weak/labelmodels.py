"""The label models that combine L[n, m] into P(label | votes): majority vote, Dawid-Skene (ours, abstaining
modelled as an answer) and snorkel's LabelModel (the maintained library's, an optional extra)."""

from __future__ import annotations

from typing import Any

import numpy as np

from labelmill.errors import ConfigError
from labelmill.numeric.weak import ABSTAIN, check_label_matrix, dawid_skene, majority_vote

LABEL_MODELS = ("dawid_skene", "majority_vote", "snorkel")


def combine(L: Any, k: int, how: str, *, seed: int = 0, anchors: tuple[Any, Any, Any] | None = None) -> np.ndarray:
    """(n, k) the label model's probabilities for every row (rows nobody voted on get its prior or uniform).
    `anchors` (dawid_skene): (votes (s, m), gold (s,), known (m,)) on labeled seed rows (see `dawid_skene`)."""
    L = check_label_matrix(L, k)
    if how == "dawid_skene":
        if anchors is not None:
            return dawid_skene(L, k, anchor_L=anchors[0], anchor_y=anchors[1], anchor_known=anchors[2])[0]
        return dawid_skene(L, k)[0]
    if how == "majority_vote":
        return majority_vote(L, k)
    if how == "snorkel":
        return snorkel_label_model(L, k, seed=seed)
    raise ConfigError(f"unknown label model {how!r}", fix=f"use one of: {', '.join(LABEL_MODELS)}")


def snorkel_label_model(L: np.ndarray, k: int, *, seed: int = 0, epochs: int = 500) -> np.ndarray:
    """snorkel's LabelModel (matrix completion over the sub-labelers' agreements), fitted on L itself."""
    try:
        from snorkel.labeling.model import LabelModel
    except ImportError:
        raise ConfigError("label_model: snorkel needs the snorkel package", fix="pip install 'labelmill[weak]' (or use dawid_skene)") from None
    if L.shape[1] < 3:
        raise ConfigError(f"snorkel's LabelModel needs at least 3 sub-labelers; {L.shape[1]} vote here", fix="add sub-labelers, or use label_model: dawid_skene")
    import logging

    logging.getLogger("snorkel").setLevel(logging.WARNING)
    model = LabelModel(cardinality=k, verbose=False, device="cpu")
    model.fit(L, n_epochs=epochs, seed=seed, progress_bar=False)
    probs = np.asarray(model.predict_proba(L), dtype=float)
    uncovered = ~(L != ABSTAIN).any(axis=1)
    probs[uncovered] = 1.0 / k
    return probs


def learned_accuracy(L: np.ndarray, probs: np.ndarray) -> list[float | None]:
    """Per sub-labeler, the label model's estimate of its accuracy: the mean probability it gives the
    sub-labeler's vote on the rows it voted on (the weight it learned, read as an accuracy)."""
    out: list[float | None] = []
    for j in range(L.shape[1]):
        voted = np.flatnonzero(L[:, j] != ABSTAIN)
        out.append(float(probs[voted, L[voted, j]].mean()) if len(voted) else None)
    return out
