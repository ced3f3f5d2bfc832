"""The run lifecycle, written once: open (or resume) a run -> label batches -> status -> output -> finished.

Every way of labeling (the local loop, Ray, an ensemble, a strategy) opens its run with `begin_run` and
closes it with `finish_run`, so run keys, events, the output file and clean stops behave alike. A run is
keyed by the config's fingerprint and the whole input's content hash: rerunning resumes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelmill.config import Config, dump_config
from labelmill.core.job import check_columns, content_hash_of
from labelmill.core.output import output_frame
from labelmill.errors import RunStopped
from labelmill.events import EventHandler, RunFinished, RunStarted
from labelmill.io import content_hash, read_rows, write_rows
from labelmill.store import Store
from labelmill.tasks import Task

if TYPE_CHECKING:
    import pandas as pd

    from labelmill.numeric.calibration import Calibrator


@dataclass
class RunResult:
    run_id: int
    frame: pd.DataFrame
    output_path: Path | None
    total: int
    labeled: int
    failed: int
    model_rows: int
    cached_rows: int
    wall_s: float
    columns: dict[str, str]
    cost_usd: float = 0.0
    stopped: str | None = None


@dataclass
class BatchStats:
    """What labeling one batch did: rows answered by the model or the cache, failures, cost, and the
    stop kinds of rows that were never sent (a cost cap, a dead server)."""

    model: int = 0
    cached: int = 0
    failed: int = 0
    cost: float = 0.0
    unsent: list[str] = field(default_factory=list)


@dataclass
class Tally:
    """Running totals over a run's batches (failures are counted from the store when the run finishes)."""

    model: int = 0
    cached: int = 0
    cost: float = 0.0

    def add(self, stats: BatchStats) -> None:
        self.model += stats.model
        self.cached += stats.cached
        self.cost += stats.cost


@dataclass
class OpenedRun:
    """A run between `begin_run` and `finish_run`: its rows (the first `limit` of `full`) and what is left."""

    run_id: int
    full: pd.DataFrame
    frame: pd.DataFrame
    done: set[int]
    pending: list[int]
    started: float

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.frame.to_dict("records")


STOP_MESSAGES = {
    "budget_exhausted": "stopped at the cost cap: ${cost:.4f} spent of ${cap}; {labeled} of {total} rows labeled and saved (output: {out})",
    "server_unavailable": "stopped: the model server kept failing and the circuit breaker gave up; {labeled} of {total} rows labeled and saved (output: {out})",
}
STOP_FIXES = {
    "budget_exhausted": "rerun the same command with a higher --max-cost to label the rest (labeled rows are not sent again)",
    "server_unavailable": "check the server (model.server.base_url), then rerun the same command to label the rest",
}


def open_run(store: Store, config: Config, full: pd.DataFrame, n_rows: int, source: Any) -> tuple[int, set[int], list[int]]:
    """Open (or resume) the run of this config on this input: (run id, rows done, rows to label among the first n_rows).

    The run key is the config's fingerprint plus the hash of the whole input, so a run with --limit
    resumes into the full run, and a Ray run and a plain run resume each other.
    """
    input_hash = content_hash(full)
    run_id = store.open_run(
        run_key=content_hash_of({"config": config.fingerprint(), "input": input_hash})[:24],
        task_name=config.name,
        config=dump_config(config),
        config_hash=config.fingerprint(),
        input_path=str(source) if isinstance(source, (str, Path)) else None,
        input_hash=input_hash,
        n_rows=len(full),
    )
    done = {i for i in store.done_rows(run_id) if i < n_rows}
    return run_id, done, [i for i in range(n_rows) if i not in done]


def begin_run(
    store: Store, config: Config, task: Task, source: Any, *, limit: int | None = None, input_name: Any = None, started: float | None = None
) -> OpenedRun:
    """Read the rows, check their columns, and open (or resume) the run (`started`: when its wall time began)."""
    started = time.perf_counter() if started is None else started
    full = read_rows(source, config.dataset)
    check_columns(config, task, full)
    frame = full.head(limit) if limit is not None else full
    name = input_name if input_name is not None else (source if isinstance(source, (str, Path)) else None)
    run_id, done, pending = open_run(store, config, full, len(frame), name)
    return OpenedRun(run_id, full, frame, done, pending, started)


def announce(run: OpenedRun, emit: EventHandler, method: str, model: str) -> None:
    emit(RunStarted(run.run_id, len(run.frame), len(run.pending), bool(run.done), method, model if run.pending else ""))


@dataclass
class Ending:
    """How a run ends: where its output goes, why it stopped early (None: done), the cost cap it stopped at,
    and the calibrator applied to the output's labels."""

    output: str | Path | None = None
    stopped: str | None = None
    max_cost: float | None = None
    calibrator: Calibrator | None = None


def finish_run(store: Store, config: Config, task: Task, run: OpenedRun, tally: Tally, *, emit: EventHandler, end: Ending | None = None) -> RunResult:
    """Record the run's status, write its output, emit RunFinished; raise RunStopped (with the result) on a clean stop."""
    end = end or Ending()
    stopped, max_cost = end.stopped, end.max_cost
    store.set_run_status(run.run_id, stopped or "done")
    frame, columns, failed = output_frame(store, run.run_id, run.frame, config, task, end.calibrator)
    out_path = write_rows(frame, end.output) if end.output else None
    wall = time.perf_counter() - run.started
    labeled = int(frame[columns["label"]].notna().sum())
    total = len(run.frame)
    emit(RunFinished(run.run_id, total, labeled, failed, tally.model, tally.cached, wall, tally.cost, stopped))
    result = RunResult(run.run_id, frame, out_path, total, labeled, failed, tally.model, tally.cached, wall, columns, tally.cost, stopped)
    if stopped:
        message = STOP_MESSAGES[stopped].format(cost=tally.cost, cap=max_cost, labeled=labeled, total=total, out=out_path)
        raise RunStopped(stopped, message, fix=STOP_FIXES[stopped], result=result)
    return result
