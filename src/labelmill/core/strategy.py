"""The strategy seam: what a strategy (tune, ensemble, cascade, freeal; weak, refine, review, synth next)
contributes to the shared machinery, and the registry that finds built-ins and plugins alike.

A strategy calls the core through its public seams (`labelmill.core`, `labelmill.store`). It owns:
- its tables, as its own numbered migration list, applied on first use and tracked per strategy in the
  store (`Store.migrate_strategy`), the way simonw/llm keeps `embeddings_migrations` apart;
- the metrics it reads back from an output it wrote (`evaluate`), and its report section (`report_section`).

Plugins register an instance (or a class) under the `labelmill.strategies` entry point group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np
from pydantic import BaseModel, ConfigDict

from labelmill.events import EventHandler, ignore
from labelmill.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

    from labelmill.config import Config
    from labelmill.core.lifecycle import RunResult
    from labelmill.store import Store
    from labelmill.tasks import Task


@dataclass
class EvalContext:
    """What `evaluate` knows about a labeled output, handed to each strategy's `evaluate` hook."""

    frame: pd.DataFrame
    task: Task
    gold: list[Any]
    correct: np.ndarray  # (n,) the final label is right
    output: str | Path | None  # the output file, when evaluated from a file (sidecars live next to it)


class Strategy:
    """Base of every strategy's registration; override what the strategy contributes."""

    name: str = ""
    migrations: Sequence[str] = ()  # SQL scripts, applied in order once per project file

    def tables(self, store: Store) -> Store:
        """The store with this strategy's tables in place (call before reading or writing them)."""
        store.migrate_strategy(self.name, self.migrations)
        return store

    def evaluate(self, context: EvalContext) -> dict[str, Any]:
        """Metrics this strategy reads from an output it wrote (its columns, a sidecar file); {} if none."""
        return {}

    def report_section(self, metrics: dict[str, Any]) -> str | None:
        """An HTML section for the report (use `labelmill.evaluation.report.html_table`), or None."""
        return None

    def label_rows(self, config: Config, data: Any, options: Any, *, store: Store, make_job: Callable[[Config], Any], on_event: EventHandler,
                   close_backends: bool) -> RunResult:
        """Label rows in this strategy's own way, for a config the core hands over (an ensemble's members);
        `options` are the run's `labelmill.core.RunOptions` (output, limit, max_cost, calibrator)."""
        raise NotImplementedError(f"strategy {self.name!r} does not label rows itself")

    def plan_config(self, config: Config) -> Config:
        """The config whose prompt `plan` previews for a config this strategy labels."""
        return config

    def command(self) -> Any:
        """A click command the CLI adds as `labelmill NAME` (a plugin's own command), a list of them, or None.
        A command may be named as 'package.module:attribute', imported when the CLI starts: then the
        strategy's registration module imports none of its command modules (no import cycle)."""
        return None


class Options(BaseModel):
    """A strategy's knobs in one validated object, shared by the CLI (flags mapped onto it), Python and config
    files. A strategy's entry takes `options` and, for convenience, the same knobs as keywords."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    @classmethod
    def of(cls, options: Options | dict[str, Any] | None = None, knobs: dict[str, Any] | None = None) -> Any:
        """`options` (an instance or a dict) with `knobs` laid over it, validated once: an unknown knob or a
        bad value is a ConfigError naming the knob and the valid ones."""
        from pydantic import ValidationError

        from labelmill.errors import ConfigError

        base = dict(options) if isinstance(options, Options) else dict(options or {})  # shallow: a DataFrame stays itself
        values = {**base, **(knobs or {})}
        try:
            return cls(**values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "options"
            valid = ", ".join(cls.model_fields)
            raise ConfigError(f"{cls.__name__}: {where}: {first['msg']}", fix=f"the knobs are: {valid}") from None


@dataclass
class CommandContext:
    """What the CLI hands every command (a strategy's too) through click's context object."""

    progress: Callable[[bool], EventHandler]  # quiet -> the handler that renders run events


def progress_handler(quiet: bool = False) -> EventHandler:
    """The progress renderer the CLI handed the running command; events are ignored outside the CLI."""
    import click

    context = click.get_current_context(silent=True)
    handed = context.find_object(CommandContext) if context is not None else None
    return handed.progress(quiet) if handed is not None else ignore


strategies: Registry[Strategy] = Registry("strategy", entry_point_group="labelmill.strategies")
strategies.register_lazy("tune", "labelmill.strategies.tune.strategy:STRATEGY")
strategies.register_lazy("ensemble", "labelmill.strategies.ensemble.strategy:STRATEGY")
strategies.register_lazy("cascade", "labelmill.strategies.cascade.strategy:STRATEGY")
strategies.register_lazy("freeal", "labelmill.strategies.freeal.strategy:STRATEGY")
strategies.register_lazy("weak", "labelmill.strategies.weak.strategy:STRATEGY")
strategies.register_lazy("review", "labelmill.strategies.review.strategy:STRATEGY")
strategies.register_lazy("refine", "labelmill.strategies.refine.strategy:STRATEGY")
strategies.register_lazy("synth", "labelmill.strategies.synth.strategy:STRATEGY")


def strategy_for(config: Config) -> Strategy | None:
    """The strategy that labels `config` instead of one run of the core loop (an ensemble: its members), if any."""
    return get_strategy("ensemble") if config.ensemble.members else None


def get_strategy(name: str) -> Strategy:
    found = strategies.get(name)
    return found() if isinstance(found, type) else found


def all_strategies() -> list[Strategy]:
    return [get_strategy(name) for name in strategies.names()]


# command-line options every strategy's command reads the same way ------------------------------------
class Duration(click.ParamType):
    """A time limit: seconds ('600'), or with a unit ('90s', '10m', '2h'). The `--max-time` of every command."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, (int, float)):
            seconds = float(value)
        else:
            text = str(value).strip().lower()
            scale = next((f for unit, f in (("h", 3600.0), ("m", 60.0), ("s", 1.0)) if text.endswith(unit)), 1.0)
            try:
                seconds = float(text.rstrip("hms")) * scale
            except ValueError:
                self.fail(f"{value!r} is not a time: write seconds (600) or 90s, 10m, 2h", param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r}: a time limit must be above zero", param, ctx)
        return seconds


def max_time_option(default: float | None = None, help: str = "Stop once this much time is spent: seconds, or 10m, 1h."):
    """The `--max-time` option of a strategy's command (a `Duration`, passed as `max_time_s`), with the old
    `--budget SECONDS` of tune and refine still read as it, with a notice, and hidden from help (`--budget`
    is the review's budget: rows, a share or a time). Merged after parsing, so the order given does not matter."""
    import functools

    def decorate(command):
        @functools.wraps(command)
        def merged(*args, old_budget: float | None = None, **kwargs):
            if old_budget is not None:
                click.echo("note: --budget here is now --max-time (seconds or 10m); --budget means a review budget", err=True)
                kwargs["max_time_s"] = old_budget
            return command(*args, **kwargs)

        merged = click.option("--budget", "old_budget", type=Duration(), hidden=True, help="Old name of --max-time.")(merged)
        return click.option("--max-time", "max_time_s", type=Duration(), default=default, show_default=default is not None, help=help)(merged)

    return decorate
