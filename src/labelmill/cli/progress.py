"""Run events rendered as a rich progress bar on stderr (library code never prints)."""

from __future__ import annotations

from labelmill.events import BatchDone, Event, Notice, RunFinished, RunStarted


def console():
    from rich.console import Console

    return Console(stderr=True)


class ProgressView:
    """Renders run events as a rich progress bar (rows/s, ETA) on stderr."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.console = console()
        self.progress = None
        self.task_id = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice):
            self.console.print(f"[yellow]note:[/] {event.message}")
        elif isinstance(event, RunStarted) and not self.quiet:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            what = "resuming" if event.resumed else "labeling"
            self.console.print(f"{what} run {event.run_id}: {event.pending} of {event.total} rows to label ({event.method}, {event.model or 'no model needed'})")
            self.progress = Progress(
                TextColumn("[bold]labeling"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]} rows/s"),
                TextColumn("failed {task.fields[failed]}"), TextColumn("{task.fields[cost]}"), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self.progress.start()
            self.task_id = self.progress.add_task("label", total=event.total, completed=event.total - event.pending, rate="-", failed=0, cost="")
            self._start_done = event.total - event.pending
            self._failed = 0
        elif isinstance(event, BatchDone) and self.progress is not None:
            self._failed += event.failed
            rate = (event.done - self._start_done) / event.elapsed_s if event.elapsed_s > 0 else 0.0
            cost = f"${event.cost_usd:.4f}" if event.cost_usd else ""
            self.progress.update(self.task_id, completed=event.done, rate=f"{rate:.2f}", failed=self._failed, cost=cost)
        elif isinstance(event, RunFinished):
            if self.progress is not None:
                self.progress.stop()
            if not self.quiet:
                self.console.print(
                    f"done: {event.labeled}/{event.total} rows labeled, {event.failed} without a label, "
                    f"{event.model_rows} sent to the model, {event.cached_rows} from cache, {event.wall_s:.1f} s"
                    + (f", ${event.cost_usd:.4f}" if event.cost_usd else "")
                )
