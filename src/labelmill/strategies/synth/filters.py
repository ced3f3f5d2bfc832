"""Filters and diversity figures for synthesized rows (issue 19, first part): rule filters (length, keywords,
refusals), near-duplicate removal by MinHash over word shingles and then by embedding similarity, and a
diversity-aware selection under a budget (DEITA-style: best first, skipping what is too close to a row
already kept). Each filter says how many rows it removed; `distinct_n` and `embedding_spread` say how
varied what is left is. Pure functions over texts and arrays: the pipelines call them.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)
REFUSALS = (
    r"\bas an ai\b", r"\bi(?: am|'m) (?:sorry|unable|not able)\b", r"\bi can(?:no|')t (?:help|assist|provide|do that|create|generate|write)\b",
    r"\blanguage model\b", r"\bi do not have (?:access|the ability)\b",
)
# a generated row that talks about the request instead of being a row: "This example fits the task", "Label: World"
META = (
    r"\bth(?:is|e) (?:above )?example\b", r"\bexample (?:input|text|sentence)\b", r"(?:^|\s)label\s*:", r"\b(?:the|this) task\b",
    r"\bhere(?:'s| is) (?:an? |one |the )?(?:example|input|text)\b", r"\bclassif(?:y|ied|ication) (?:the|this)\b",
)
_MERSENNE = (1 << 61) - 1


@dataclass
class Kept:
    """Which rows a filter kept (indices into its input) and why it removed the others."""

    keep: list[int]
    removed: dict[str, int] = field(default_factory=dict)  # reason -> rows

    @property
    def removed_total(self) -> int:
        return sum(self.removed.values())


def rule_filter(texts: Sequence[str], *, min_words: int = 3, max_words: int = 400, banned: Sequence[str] = (),
                refusals: bool = True, meta: bool = True) -> Kept:
    """Drop rows that are too short or too long, contain a banned word or phrase, read as a refusal, or talk
    about the request (`meta`: "this example...", "Label: ...") instead of being a row."""
    patterns = [re.compile(p, re.IGNORECASE) for p in (REFUSALS if refusals else ())]
    about = [re.compile(p, re.IGNORECASE) for p in (META if meta else ())]
    banned_re = [re.compile(rf"(?<!\w){re.escape(b)}(?!\w)", re.IGNORECASE) for b in banned]
    keep, removed = [], {"too_short": 0, "too_long": 0, "banned": 0, "refusal": 0, "meta": 0}
    for i, text in enumerate(texts):
        words = len(_WORD.findall(text or ""))
        plain = (text or "").replace("\u2019", "'").replace("\u2018", "'")  # curly apostrophes: "I’m sorry"
        reason = ("too_short" if words < min_words else "too_long" if words > max_words
                  else "banned" if any(b.search(plain) for b in banned_re) else "refusal" if any(p.search(plain) for p in patterns)
                  else "meta" if any(p.search(plain) for p in about) else None)
        if reason:
            removed[reason] += 1
        else:
            keep.append(i)
    return Kept(keep, {k: v for k, v in removed.items() if v})


def shingles(text: str, n: int = 3) -> set[int]:
    """The text's word n-grams (lower-cased), hashed to 32 bits; short texts give their whole word list."""
    words = [w.casefold() for w in _WORD.findall(text or "")]
    grams = [" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))] if words else [""]
    return {zlib.crc32(g.encode("utf-8")) for g in grams}


def minhash_signatures(texts: Sequence[str], *, num_perm: int = 64, n: int = 3, seed: int = 0) -> np.ndarray:
    """(len(texts), num_perm) MinHash signatures of the texts' shingle sets: the share of equal entries of
    two rows estimates the Jaccard similarity of their shingles."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, _MERSENNE, num_perm, dtype=np.uint64)
    b = rng.integers(0, _MERSENNE, num_perm, dtype=np.uint64)
    out = np.empty((len(texts), num_perm), dtype=np.uint64)
    for i, text in enumerate(texts):
        values = np.fromiter(shingles(text, n), dtype=np.uint64)
        # (a * x + b) mod p, in Python ints per permutation would be slow; uint64 wraps, which still permutes
        hashed = (values[:, None] * a[None, :] + b[None, :]) % np.uint64(_MERSENNE)
        out[i] = hashed.min(axis=0)
    return out


def minhash_dedup(texts: Sequence[str], *, threshold: float = 0.7, num_perm: int = 64, bands: int = 16, n: int = 3) -> Kept:
    """Keep the first of each group of near-duplicates (estimated Jaccard of word shingles >= threshold).
    Candidates come from LSH bands (rows sharing a whole band), then their signature agreement decides."""
    if not texts:
        return Kept([], {})
    sig = minhash_signatures(texts, num_perm=num_perm, n=n)
    rows = num_perm // bands
    buckets: dict[tuple, list[int]] = {}
    candidates: dict[int, set[int]] = {}
    for i in range(len(texts)):
        for band in range(bands):
            key = (band, sig[i, band * rows : (band + 1) * rows].tobytes())
            for j in buckets.setdefault(key, []):
                candidates.setdefault(i, set()).add(j)
            buckets[key].append(i)
    keep, dropped = [], set()
    for i in range(len(texts)):
        if any(j not in dropped and float((sig[i] == sig[j]).mean()) >= threshold for j in candidates.get(i, ())):
            dropped.add(i)
        else:
            keep.append(i)
    return Kept(keep, {"minhash_duplicate": len(dropped)} if dropped else {})


def embedding_dedup(vectors: np.ndarray, *, threshold: float = 0.95) -> Kept:
    """Keep the first of rows whose embeddings are closer than `threshold` (cosine) to a row already kept."""
    X = _unit(vectors)
    keep: list[int] = []
    for i in range(len(X)):
        if keep and float((X[keep] @ X[i]).max()) >= threshold:
            continue
        keep.append(i)
    removed = len(X) - len(keep)
    return Kept(keep, {"embedding_duplicate": removed} if removed else {})


def diverse_select(vectors: np.ndarray, scores: Sequence[float], budget: int, *, threshold: float = 0.9) -> Kept:
    """DEITA-style: rows by score, best first; a row joins when its cosine to every row already chosen is
    under `threshold`, until `budget` rows are chosen."""
    X = _unit(vectors)
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    chosen: list[int] = []
    for i in order:
        if len(chosen) >= budget:
            break
        if chosen and float((X[chosen] @ X[i]).max()) >= threshold:
            continue
        chosen.append(int(i))
    removed = len(X) - len(chosen)
    return Kept(sorted(chosen), {"not_selected": removed} if removed else {})


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct n-grams over all n-grams of the texts (Li et al. 2016): 1.0 when nothing repeats."""
    total, seen = 0, set()
    for text in texts:
        words = [w.casefold() for w in _WORD.findall(text or "")]
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def embedding_spread(vectors: np.ndarray) -> float:
    """The mean cosine distance between pairs of rows (0: all the same direction)."""
    X = _unit(vectors)
    n = len(X)
    if n < 2:
        return 0.0
    sims = X @ X.T
    return float(1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))


def _unit(vectors: np.ndarray) -> np.ndarray:
    X = np.asarray(vectors, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"embeddings are 2-D (rows x dimensions); got shape {X.shape}")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)
