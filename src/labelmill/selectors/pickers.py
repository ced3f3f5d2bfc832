"""Few-shot demonstrations: load them, check their labels, and pick the ones each prompt shows."""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labelmill.errors import ConfigError, InputDataError
from labelmill.registry import selectors
from labelmill.types import Demo

if TYPE_CHECKING:
    from labelmill.config import Config
    from labelmill.tasks.base import Task



@dataclass(frozen=True)
class Selector:
    """One way to pick demos. `per_row=False`: `pick(pool, golds, k, seed) -> demos`, the same for every row
    (the prompt prefix stays shared). `per_row=True`: `pick(query, vectors, golds, k, spec) -> indices`
    into the pool, best first, from sentence embeddings of the row and the pool (`examples.order` sets the order shown)."""

    per_row: bool
    pick: Callable[..., Any]


def get_selector(name: str) -> Selector:
    return selectors.get(name)


def select_fixed(pool: list[Demo], k: int, seed: int) -> list[Demo]:
    return pool[:k]


def select_random(pool: list[Demo], k: int, seed: int) -> list[Demo]:
    return random.Random(seed).sample(pool, min(k, len(pool)))




def select_balanced(pool: list[Demo], golds: list[Any], k: int, seed: int) -> list[Demo]:
    """k demos drawn round-robin over the labels (each label's examples in a seeded random order)."""
    by_label: dict[str, list[Demo]] = {}
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    for i in order:
        by_label.setdefault(str(golds[i]), []).append(pool[i])
    chosen: list[Demo] = []
    while len(chosen) < min(k, len(pool)):
        for items in by_label.values():
            if items and len(chosen) < k:
                chosen.append(items.pop())
    return chosen


def nearest(query: np.ndarray, vectors: np.ndarray, k: int) -> list[int]:
    """Indices of the k rows of `vectors` most similar to `query` (unit vectors: dot = cosine), best first."""
    sims = vectors @ query
    k = min(k, len(sims))
    top = np.argpartition(-sims, k - 1)[:k]
    return [int(i) for i in top[np.argsort(-sims[top], kind="stable")]]


def shared_rank(vectors: np.ndarray, k: int) -> np.ndarray:
    """A fixed rank of the pool's examples, most often picked first: how many of the other examples have each
    among their k nearest (ties by place in the pool). It depends on the pool alone, so a row's prompt does not
    change with the rows labeled beside it."""
    n = len(vectors)
    k = min(k, n - 1)
    counts = np.zeros(n, dtype=int)
    for start in range(0, n if k > 0 else 0, 512):  # a block of rows at a time: a large pool never needs an n x n matrix
        sims = vectors[start : start + 512] @ vectors.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf
        counts += np.bincount(np.argsort(-sims, axis=1, kind="stable")[:, :k].ravel(), minlength=n)
    rank = np.empty(n, dtype=int)
    rank[np.lexsort((np.arange(n), -counts))] = np.arange(n)
    return rank


def in_order(picked: list[int], order: str, rank: np.ndarray | None = None) -> list[int]:
    """The picked examples (best first) in the order a prompt shows them: `nearest_last` (next to the row),
    `nearest_first`, or `shared_first` (by the pool's `shared_rank`: rows that pick the same popular examples
    show them first and in the same order, so their prompts begin alike and the engine evaluates that part once)."""
    if order == "nearest_first":
        return list(picked)
    if order == "shared_first":
        return sorted(picked, key=lambda i: rank[i])
    return list(reversed(picked))


def max_marginal_relevance(query: np.ndarray, vectors: np.ndarray, k: int, lam: float) -> list[int]:
    """Greedy MMR: each pick maximises lam * sim(row) - (1 - lam) * max sim(already picked)."""
    sims = vectors @ query
    candidates = nearest(query, vectors, min(len(sims), max(4 * k, 20)))
    picked: list[int] = []
    while candidates and len(picked) < k:
        if picked:
            redundancy = (vectors[candidates] @ vectors[picked].T).max(axis=1)
        else:
            redundancy = np.zeros(len(candidates))
        scores = lam * sims[candidates] - (1 - lam) * redundancy
        picked.append(candidates.pop(int(np.argmax(scores))))
    return picked


def similar_per_label(query: np.ndarray, vectors: np.ndarray, golds: list[Any], k: int) -> list[int]:
    """The nearest example of each label, for the k labels whose nearest example is nearest the row; when k
    is more than the labels, the nearest ceil(k / labels) examples of each label (k in all), best first."""
    sims = vectors @ query
    n_labels = len({str(g) for g in golds})
    per_label = max(1, -(-k // n_labels)) if n_labels else 1
    taken: dict[str, int] = {}
    picked: list[int] = []
    for i in np.argsort(-sims, kind="stable"):
        label = str(golds[int(i)])
        if taken.get(label, 0) >= per_label:
            continue
        taken[label] = taken.get(label, 0) + 1
        picked.append(int(i))
        if len(picked) >= k:
            break
    return picked


class DemoPicker:
    """The demos each prompt shows: the same for every row (fixed, random, balanced: the prompt prefix is
    shared), or picked per row by similarity of sentence embeddings (similar, mmr, similar_per_label)."""

    def __init__(self, config: Config, task: Task):
        self.config = config
        self.spec = config.examples
        self.pool, self.golds = _pool(config, task)
        self.selector = get_selector(self.spec.selection)
        self.dynamic = self.selector.per_row and self.spec.k > 0 and bool(self.pool)
        self.static: list[Demo] = []
        self._pool_vectors: np.ndarray | None = None
        self._rank: np.ndarray | None = None
        self._row_vectors: dict[str, np.ndarray] = {}
        if not self.pool or self.spec.k == 0:
            return
        if not self.dynamic:
            self.static = self.selector.pick(self.pool, self.golds, self.spec.k, self.spec.seed)

    def prepare(self, texts: list[str], store: Any = None) -> None:
        """Embed the pool (once) and these rows, through the store's embedding cache."""
        if not self.dynamic:
            return
        from labelmill.selectors.embeddings import embed

        model = self.spec.embedding_model
        if self._pool_vectors is None:
            self._pool_vectors = embed([d.input for d in self.pool], model, store)
        todo = [t for t in dict.fromkeys(texts) if t not in self._row_vectors]
        if todo:
            for text, vector in zip(todo, embed(todo, model, store)):
                self._row_vectors[text] = vector

    def for_row(self, text: str) -> list[Demo]:
        if not self.dynamic:
            return self.static
        if text not in self._row_vectors:
            self.prepare([text])
        picked = self.selector.pick(self._row_vectors[text], self._pool_vectors, self.golds, self.spec.k, self.spec)
        if self.spec.order == "shared_first" and self._rank is None:
            self._rank = shared_rank(self._pool_vectors, self.spec.k)
        return [self.pool[i] for i in in_order(picked, self.spec.order, self._rank)]


def load_examples(config: Config) -> list[dict[str, Any]]:
    spec = config.examples
    items = list(spec.items)
    if spec.file:
        from labelmill.io import read_rows

        path = Path(spec.file)
        if not path.is_absolute():
            path = config.base_dir / path
        try:
            items += read_rows(path).to_dict("records")
        except InputDataError as exc:
            raise ConfigError(f"examples.file: {exc.message}", fix="set examples.file to an existing CSV/JSONL file, or examples.k: 0") from None
    return items


def _pool(config: Config, task: Task) -> tuple[list[Demo], list[Any]]:
    """Every example as a Demo, and its gold value; labels checked against the task."""
    if config.examples.k == 0:
        return [], []
    items = load_examples(config)
    label_column = config.examples.label_column or config.gold_column or "label"
    needed = task.required_columns()
    pool, golds = [], []
    for number, item in enumerate(items, start=1):
        missing = [f for f in needed if f not in item]
        gold_columns = task.example_gold_columns(label_column)
        missing += [c for c in gold_columns if c not in item]
        if missing:
            raise ConfigError(
                f"few-shot example {number} has no column {missing[0]!r}",
                fix=f"give every example the columns {', '.join(dict.fromkeys(needed + gold_columns))}",
            )
        gold = task.example_gold(item, label_column)
        task.check_demo(number, gold)
        pool.append(Demo(input=task.render(item), answer=task.demo_answer(gold, item), explanation=_explanation(config, item, number)))
        golds.append(gold)
    return pool, golds


def _explanation(config: Config, item: dict[str, Any], number: int) -> str | None:
    """The example's explanation (`examples.explanation_column`), or None: no column named, or an empty cell."""
    column = config.examples.explanation_column
    if column is None:
        return None
    if column not in item:
        raise ConfigError(f"few-shot example {number} has no explanation column {column!r} (examples.explanation_column)",
                          fix=f"give every example a {column!r} column (an empty cell: no explanation), or leave explanation_column out")
    value = item[column]
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()
    return text or None


def check_demo_labels(number: int, gold: Any, labels: list[str]) -> None:
    """A few-shot example's label(s) must be in the label set."""
    values = gold if isinstance(gold, list) else [gold]
    for value in values:
        if value not in labels:
            close = difflib.get_close_matches(str(value), labels, n=1, cutoff=0.4)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"few-shot example {number} has label {value!r}, which is not in the label set",
                fix=f"{hint}use one of: {', '.join(labels[:12])}{'...' if len(labels) > 12 else ''}",
            )


# the built-ins, found by name through `labelmill.registry.selectors` (lazy targets, like a plugin's)
FIXED = Selector(False, lambda pool, golds, k, seed: select_fixed(pool, k, seed))
RANDOM = Selector(False, lambda pool, golds, k, seed: select_random(pool, k, seed))
BALANCED = Selector(False, select_balanced)
SIMILAR = Selector(True, lambda query, vectors, golds, k, spec: nearest(query, vectors, k))
MMR = Selector(True, lambda query, vectors, golds, k, spec: max_marginal_relevance(query, vectors, k, spec.mmr_lambda))
SIMILAR_PER_LABEL = Selector(True, lambda query, vectors, golds, k, spec: similar_per_label(query, vectors, golds, k))
