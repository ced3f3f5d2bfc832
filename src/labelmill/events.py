"""Events: what library code reports instead of printing. The CLI renders them; tests assert on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union


@dataclass
class Notice:
    message: str


@dataclass
class RunStarted:
    run_id: int
    total: int
    pending: int
    resumed: bool
    method: str
    model: str


@dataclass
class BatchDone:
    done: int  # rows labeled so far in this run, resumed ones included
    total: int
    batch_rows: int
    model_rows: int  # rows of this batch sent to the model (not from cache)
    failed: int
    elapsed_s: float
    cost_usd: float = 0.0  # spent on the model so far in this invocation


@dataclass
class RunFinished:
    run_id: int
    total: int
    labeled: int
    failed: int
    model_rows: int
    cached_rows: int
    wall_s: float
    cost_usd: float = 0.0
    stopped: str | None = None  # why the run stopped early (budget_exhausted, server_unavailable), else None


Event = Union[Notice, RunStarted, BatchDone, RunFinished]
EventHandler = Callable[[Event], None]


def ignore(_: Event) -> None:
    """The default handler: library code stays silent."""
