"""Confidence signals: from a label distribution (scoring) or from token log-probabilities (generation)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def label_distribution(logprobs: Sequence[float]) -> np.ndarray:
    """Candidate log-probabilities normalised into a distribution over the closed label set (scipy's softmax)."""
    from scipy.special import softmax

    return softmax(np.asarray(logprobs, dtype=np.float64))


def distribution_signals(probs: np.ndarray) -> dict[str, float]:
    """Top probability, margin to the runner-up, and normalised entropy (0 = certain, 1 = uniform)."""
    ordered = np.sort(probs)[::-1]
    top = float(ordered[0])
    margin = float(ordered[0] - ordered[1]) if len(ordered) > 1 else 1.0
    from scipy.special import entr

    entropy = float(entr(np.asarray(probs, dtype=np.float64)).sum())
    norm_entropy = entropy / math.log(len(probs)) if len(probs) > 1 else 0.0
    return {"top_prob": top, "margin": margin, "entropy": norm_entropy}


def mean_token_prob(token_logprobs: Sequence[float]) -> float | None:
    """Mean probability of the generated tokens (what Autolabel's logprob_average reports)."""
    if not token_logprobs:
        return None
    return float(np.mean(np.exp(np.asarray(token_logprobs, dtype=np.float64))))


class TokenText:
    """The raw generated text and the probability of each of its tokens, to score a part of the text.

    None-like (`ok` False) when the backend gave no token texts matching the log-probabilities.
    """

    def __init__(self, tokens: Sequence[str], token_logprobs: Sequence[float]):
        self.ok = bool(tokens) and len(tokens) == len(token_logprobs)
        self.raw = "".join(tokens) if self.ok else ""
        lengths = np.array([len(t) for t in tokens]) if self.ok else np.zeros(0, dtype=int)
        self.ends = np.cumsum(lengths)
        self.starts = self.ends - lengths
        self.probs = np.exp(np.asarray(token_logprobs, dtype=np.float64)) if self.ok else np.zeros(0)

    def mean_prob(self, start: int, end: int) -> float | None:
        """Mean probability of the tokens overlapping raw[start:end]."""
        mask = (self.ends > start) & (self.starts < end)
        return float(self.probs[mask].mean()) if mask.any() else None
