"""Few-shot demonstrations: load them, check their labels, and pick the ones each prompt shows."""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, InputDataError
from .tasks.base import Demo, Task

if TYPE_CHECKING:
    from .config import Config

Selector = Callable[[list[Demo], int, int], list[Demo]]


def select_fixed(pool: list[Demo], k: int, seed: int) -> list[Demo]:
    return pool[:k]


def select_random(pool: list[Demo], k: int, seed: int) -> list[Demo]:
    return random.Random(seed).sample(pool, min(k, len(pool)))


SELECTORS: dict[str, Selector] = {"fixed": select_fixed, "random": select_random}


def load_examples(config: Config) -> list[dict[str, Any]]:
    spec = config.examples
    items = list(spec.items)
    if spec.file:
        from .io import read_rows

        path = Path(spec.file)
        if not path.is_absolute():
            path = config.base_dir / path
        try:
            items += read_rows(path).to_dict("records")
        except InputDataError as exc:
            raise ConfigError(f"examples.file: {exc.message}", fix="set examples.file to an existing CSV/JSONL file, or examples.k: 0") from None
    return items


def build_demos(config: Config, task: Task) -> list[Demo]:
    """The demos every prompt of this job shows (fixed for the whole job, so the prompt prefix is shared)."""
    if config.examples.k == 0:
        return []
    items = load_examples(config)
    if not items:
        return []
    label_column = config.examples.label_column or config.gold_column or "label"
    needed = task.required_columns()
    pool = []
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
        pool.append(Demo(input=task.render(item), answer=task.demo_answer(gold, item)))
    return SELECTORS[config.examples.selection](pool, config.examples.k, config.examples.seed)


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
