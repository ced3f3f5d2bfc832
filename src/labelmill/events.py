"""Events: what library code reports instead of printing. The CLI renders them; tests assert on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union


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


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (where nothing on stderr shows a run's progress)."""
    import sys

    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None and hasattr(shell, "get_ipython") else None
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


class NotebookProgress:
    """A run's progress in a notebook: a tqdm bar (its notebook widget where ipywidgets is installed),
    and the notices printed. `labelmill.label` uses it by default in a Jupyter kernel."""

    bar_factory: Callable[..., Any] | None = None  # what draws the bar (None: tqdm's)

    def __init__(self, bar_factory: Callable[..., Any] | None = None):
        self._factory, self._bar, self._done = bar_factory or type(self).bar_factory, None, 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice):
            print(f"note: {event.message}")
        elif isinstance(event, RunStarted):
            self._bar, self._done = self._make(total=event.total, initial=event.total - event.pending, desc=f"labeling run {event.run_id}"), event.total - event.pending
        elif isinstance(event, BatchDone) and self._bar is not None:
            self._bar.update(event.done - self._done)
            self._done = event.done
        elif isinstance(event, RunFinished):
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            print(f"done: {event.labeled}/{event.total} rows labeled, {event.failed} without a label, {event.wall_s:.1f} s")

    def _make(self, **kw):
        if self._factory is not None:
            return self._factory(**kw)
        try:
            from tqdm.auto import tqdm
        except ImportError:  # (tqdm comes with the model extras; without it, a line per batch)
            return _Lines(**kw)
        return tqdm(**kw)


class _Lines:
    """A progress "bar" that prints a line per update (no tqdm)."""

    def __init__(self, total: int, initial: int = 0, desc: str = ""):
        self.total, self.n, self.desc = total, initial, desc

    def update(self, count: int) -> None:
        self.n += count
        print(f"{self.desc}: {self.n}/{self.total} rows")

    def close(self) -> None:
        pass


def default_handler(on_event: EventHandler) -> EventHandler:
    """`on_event` as given; the library's silent default becomes a progress bar in a notebook."""
    return NotebookProgress() if on_event is ignore and in_notebook() else on_event
