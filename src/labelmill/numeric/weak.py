"""Weak supervision over a label matrix `L[n, m]`: row i, sub-labeler j, a label index in 0..k-1 or -1 for
abstain (the contract `Store.label_matrix` reads back). Functions over arrays: the public ones validate,
the kernels trust.

- `lf_summary`: per sub-labeler polarity, coverage, overlaps, conflicts (and empirical accuracy where
  gold exists) - snorkel's analysis table;
- `majority_vote`: vote shares per row;
- `dawid_skene`: each sub-labeler's confusion matrix and the class prior by EM (Dawid & Skene 1979), which
  weighs accurate sub-labelers over noisy ones and gives calibrated-looking probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ABSTAIN = -1


def check_label_matrix(L: Any, k: int) -> np.ndarray:
    """L as an int array (n, m) with values in -1..k-1, or a ValueError saying what is wrong."""
    L = np.asarray(L)
    if L.ndim != 2:
        raise ValueError(f"a label matrix is 2-D (rows x sub-labelers); this one has shape {L.shape}")
    if L.size and not np.issubdtype(L.dtype, np.integer):
        raise ValueError(f"a label matrix holds label indices (int), not {L.dtype}")
    if k < 2:
        raise ValueError(f"weak supervision needs at least two labels; k = {k}")
    if L.size and (L.min() < ABSTAIN or L.max() >= k):
        raise ValueError(f"label indices must be -1 (abstain) or 0..{k - 1}; found {int(L.min())}..{int(L.max())}")
    return L.astype(int)


def _one_hot_votes(L: np.ndarray, k: int) -> np.ndarray:
    """(n, m, k) one-hot votes, all zeros where a sub-labeler abstained."""
    votes = np.zeros((*L.shape, k))
    rows, cols = np.nonzero(L != ABSTAIN)
    votes[rows, cols, L[rows, cols]] = 1.0
    return votes


def majority_vote(L: Any, k: int) -> np.ndarray:
    """(n, k) the share of each label among a row's votes; a row nobody voted on is uniform."""
    L = check_label_matrix(L, k)
    counts = _one_hot_votes(L, k).sum(axis=1)
    total = counts.sum(axis=1, keepdims=True)
    return np.where(total > 0, counts / np.maximum(total, 1), 1.0 / k)


def dawid_skene(
    L: Any, k: int, *, max_iter: int = 200, tol: float = 1e-7, smoothing: float = 0.01,
    anchor_L: Any = None, anchor_y: Any = None, anchor_known: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EM over the class of each row: (probs (n, k), confusions (m, k, k) with confusions[j, y, l] = P(j says l |
    y, j votes), prior (k,)). Abstaining is modelled as one more answer (P(j abstains | y)): a sub-labeler
    that only ever votes one label (a keyword rule, "is it toxic? yes") is informative through when it
    fires, which plain Dawid-Skene cannot see. Started from the majority vote; `smoothing` keeps every
    entry above zero.

    Anchors (semi-supervised): `anchor_L` (s, m) the sub-labelers' votes on labeled rows (seed or dev rows)
    and `anchor_y` (s,) their gold label indices. Their classes are known, so they pin each sub-labeler's
    confusions to what it really does: EM can no longer settle on a solution that swaps two classes, which
    it does with a biased zero-shot voter on a few hundred rows. `anchor_known` (m,) False for a sub-labeler
    with no votes on those rows (they then say nothing about it)."""
    L = check_label_matrix(L, k)
    anchors = None
    if anchor_L is not None:
        anchor_L = check_label_matrix(anchor_L, k)
        anchor_y = np.asarray(anchor_y, dtype=int)
        if anchor_L.shape[1] != L.shape[1] or len(anchor_y) != len(anchor_L) or (len(anchor_y) and (anchor_y.min() < 0 or anchor_y.max() >= k)):
            raise ValueError("anchors need one row of votes per gold label, the same sub-labelers as L, and labels in 0..k-1")
        known = np.ones(L.shape[1], dtype=bool) if anchor_known is None else np.asarray(anchor_known, dtype=bool)
        anchors = (_answers(anchor_L, k) * known[None, :, None], np.eye(k)[anchor_y])
    post, confusions, prior = _dawid_skene(L, k, max_iter, tol, smoothing, anchors)
    voted = confusions[:, :, :k]
    return post, voted / voted.sum(axis=2, keepdims=True), prior


def _answers(L: np.ndarray, k: int) -> np.ndarray:
    """(n, m, k + 1): one-hot answers, abstain being answer k."""
    return np.concatenate([_one_hot_votes(L, k), (L == ABSTAIN)[:, :, None].astype(float)], axis=2)


def _dawid_skene(L: np.ndarray, k: int, max_iter: int, tol: float, smoothing: float,
                 anchors: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy.special import softmax

    votes = _one_hot_votes(L, k)  # (n, m, k)
    counts = votes.sum(axis=1)
    total = counts.sum(axis=1, keepdims=True)
    post = np.where(total > 0, counts / np.maximum(total, 1), 1.0 / k)
    answers = _answers(L, k)
    fixed_answers, fixed_post = anchors if anchors is not None else (np.zeros((0, *answers.shape[1:])), np.zeros((0, k)))
    if anchors is not None and len(fixed_post):  # start where the labeled rows say, not at the vote
        prior = (fixed_post.sum(axis=0) + 1.0) / (fixed_post.sum() + k)
        confusions = np.einsum("iy,ijl->jyl", fixed_post, fixed_answers) + 1.0
        confusions /= confusions.sum(axis=2, keepdims=True)
        log_post = np.log(prior)[None, :] + np.einsum("ijl,jyl->iy", answers, np.log(confusions))
        post = softmax(log_post, axis=1)
    for _ in range(max_iter):
        prior = (post.sum(axis=0) + fixed_post.sum(axis=0) + smoothing) / (post.sum() + fixed_post.sum() + k * smoothing)
        # M step: confusions[j, y, l] = P(j answers l | y), l in labels + abstain
        confusions = np.einsum("iy,ijl->jyl", post, answers) + np.einsum("iy,ijl->jyl", fixed_post, fixed_answers) + smoothing
        confusions /= confusions.sum(axis=2, keepdims=True)
        # E step: log P(y) + sum over sub-labelers of log P(its answer | y)
        log_post = np.log(prior)[None, :] + np.einsum("ijl,jyl->iy", answers, np.log(confusions))
        log_post -= log_post.max(axis=1, keepdims=True)
        new = np.exp(log_post)
        new /= new.sum(axis=1, keepdims=True)
        change = np.abs(new - post).max()
        post = new
        if change < tol:
            break
    return post, confusions, prior


def lf_summary(L: Any, k: int, gold: Any = None) -> list[dict[str, Any]]:
    """Per sub-labeler: polarity (the labels it gives), coverage (share of rows it votes on), overlaps (share
    of rows it and another vote on), conflicts (share where another votes otherwise), and, with `gold` (n,)
    label indices (-1 = unknown), its empirical accuracy on the rows with gold it voted on and how many."""
    L = check_label_matrix(L, k)
    n, m = L.shape
    voted = L != ABSTAIN
    gold = None if gold is None else np.asarray(gold, dtype=int)
    rows = []
    for j in range(m):
        others = np.delete(L, j, axis=1)
        others_vote = (others != ABSTAIN).any(axis=1) if m > 1 else np.zeros(n, dtype=bool)
        disagree = ((others != ABSTAIN) & (others != L[:, [j]])).any(axis=1) if m > 1 else np.zeros(n, dtype=bool)
        row: dict[str, Any] = {
            "polarity": sorted(int(v) for v in np.unique(L[voted[:, j], j])),
            "coverage": float(voted[:, j].mean()) if n else 0.0,
            "overlaps": float((voted[:, j] & others_vote).mean()) if n else 0.0,
            "conflicts": float((voted[:, j] & disagree).mean()) if n else 0.0,
        }
        if gold is not None:
            known = voted[:, j] & (gold != ABSTAIN)
            row["gold_rows"] = int(known.sum())
            row["empirical_accuracy"] = float((L[known, j] == gold[known]).mean()) if known.any() else None
        rows.append(row)
    return rows


_Z90 = 1.2816


def precision_thresholds(scores: Any, hits: Any, min_precision: float, *, can_vote: Any = None, min_support: int = 5) -> np.ndarray:
    """(k,) per label, the lowest score threshold at which the rows scoring at least that much are label l
    with the precision it needs (the lower bound of its 90% interval, on at least `min_support` rows): the most coverage at that precision.
    The precision needed is `min_precision`, and at least halfway from the label's share of the rows to 1
    (a vote must halve the error of guessing the label: on a 90% majority label, 0.95), so a sub-labeler
    that fires everywhere never votes for the majority label by default. NaN where no threshold reaches
    it (or `can_vote[l]` is False): that label is never voted.
    `scores` (n, k) a sub-labeler's probability per label, `hits` (n, k) True where l is a gold label."""
    scores, hits = np.asarray(scores, dtype=float), np.asarray(hits, dtype=bool)
    n, k = scores.shape
    out = np.full(k, np.nan)
    for label in range(k):
        if can_vote is not None and not can_vote[label]:
            continue
        needed = max(min_precision, (hits[:, label].mean() + 1.0) / 2.0) if n else min_precision
        order = np.argsort(-scores[:, label], kind="stable")
        s, h = scores[order, label], hits[order, label]
        correct = np.cumsum(h)
        count = np.arange(1, n + 1)
        last = np.r_[s[1:] != s[:-1], True]  # a threshold keeps every row tied with it
        rate = correct / count  # judged by its Wilson lower bound (90%): five lucky rows on top are not a precision
        z2 = _Z90 * _Z90
        lower = (rate + z2 / (2 * count) - _Z90 * np.sqrt(rate * (1 - rate) / count + z2 / (4 * count * count))) / (1 + z2 / count)
        ok = last & (count >= min_support) & (lower >= needed) & (s > 0)
        if ok.any():
            out[label] = s[np.flatnonzero(ok).max()]
    return out


def vote_precision(V: Any, hits: Any) -> tuple[float, float | None]:
    """A sub-labeler's (coverage, accuracy) from V[n, k] (1 for, 0 against, -1 no vote) and `hits` (n, k):
    coverage is the share of rows it votes on, accuracy the share of its votes that agree with the gold."""
    V, hits = np.asarray(V), np.asarray(hits, dtype=bool)
    voted = (V != ABSTAIN).any(axis=1)
    right = ((V == 1) & hits).sum() + ((V == 0) & ~hits).sum()
    total = (V != ABSTAIN).sum()
    return (float(voted.mean()) if len(V) else 0.0), (float(right / total) if total else None)
