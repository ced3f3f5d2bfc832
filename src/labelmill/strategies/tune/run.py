"""`labelmill tune`: search labeling strategies on a dev set within a time budget, and keep the best.

The search space is the cross product of models (`models`: the config's by default), reasoning
(`reasonings`: none, cot, scK = self-consistency with K answers, cot_scK), few-shot counts (`shots`),
selections (`selectors`) and calibration (`none`, or `auto` fitted on a split of the dev rows). The
search stops when the time budget (`budget_s`) or the cost budget (`max_cost`, USD, for paid models) is
spent; a trial never spends more than the cost left. Cheaper
strategies go first (zero-shot before few-shot, fixed prefixes before per-row demos), so a tight budget
still compares the basics. Each strategy labels the dev rows through the normal runner (cached, resumable),
and is scored on them: accuracy (with completion rate), seconds per row. Calibrated strategies are fitted
on the first half of the dev rows and scored on the second half, against the same half uncalibrated.

The result: every trial (in the store's `tune_trials` table), the Pareto front of accuracy against time
per row, and the best config written as YAML (the config with the winning `examples`; a calibration file
beside it when calibration won).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import Field

from labelmill.config import Config, dump_config, load_config, load_with_notices
from labelmill.core.strategy import Options
from labelmill.errors import ConfigError, RunStopped
from labelmill.events import EventHandler, Notice, ignore
from labelmill.io import read_rows


@dataclass
class Trial:
    shots: int
    selection: str
    calibration: str
    reasoning: str = "none"
    model: str | None = None  # None: the config's
    cost_per_row: float | None = None
    accuracy: float | None = None  # on the second half of the dev rows, where every strategy is compared
    accuracy_all_dev: float | None = None  # uncalibrated strategies: on every dev row
    completion_rate: float | None = None
    seconds_per_row: float | None = None
    rows: int = 0
    status: str = "pending"  # done, skipped (budget), failed
    detail: str = ""

    @property
    def name(self) -> str:
        few = "zero-shot" if self.shots == 0 else f"{self.shots}-shot {self.selection}"
        few += "" if self.reasoning == "none" else f" + {self.reasoning}"
        few = few if self.model is None else f"{self.model}: {few}"
        return few + ("" if self.calibration == "none" else f" + {self.calibration} calibration")


def reasoning_settings(name: str) -> dict[str, Any]:
    """A reasoning strategy's config section: none, cot, scK (self-consistency, K answers), cot_scK."""
    settings: dict[str, Any] = {}
    for part in name.split("_"):
        if part == "cot":
            settings["chain_of_thought"] = True
        elif part.startswith("sc") and part[2:].isdigit() and int(part[2:]) >= 2:
            settings["samples"] = int(part[2:])
        elif part != "none":
            raise ConfigError(f"unknown reasoning strategy {name!r}", fix="use none, cot, scK (K answers voted, e.g. sc5) or cot_scK")
    return settings


def _strategy_config(base: Config, shots: int, selection: str, pool: str | None, reasoning: str = "none", model: str | None = None) -> dict[str, Any]:
    data = dump_config(base)
    if model is not None:
        data["model"] = {**data["model"], "name": model}
    if reasoning != "none":
        data["reasoning"] = {**data.get("reasoning", {}), **reasoning_settings(reasoning)}
    if shots == 0:
        data["examples"] = {**data["examples"], "k": 0}
    else:
        data["examples"] = {**data["examples"], "k": shots, "selection": selection}
        if pool:
            data["examples"]["file"] = pool
    return data


class TuneOptions(Options):
    """tune's knobs. `pool`: labeled rows to draw demos from (not the dev rows). `guideline`: the text the
    labeler reads instead of the config's guidelines (a version `labelmill refine` wrote: tune starts from
    the refined guideline). `max_calls`: a trial is skipped when it would take the labeling requests sent to
    the model past this many (to compare with refine at equal calls). `out`: where the best config goes."""

    pool: str | Path | None = None
    shots: tuple[int, ...] = (0, 4, 8)
    selectors: tuple[str, ...] = ("random", "balanced", "similar")
    calibrations: tuple[str, ...] = ("none", "auto")
    reasonings: tuple[str, ...] = ("none",)
    models: tuple[str, ...] | None = None
    max_cost: float | None = Field(None, ge=0)
    budget_s: float = Field(600.0, gt=0)
    limit: int | None = Field(200, ge=1)
    out: str | Path | None = None
    guideline: str | None = None
    max_calls: int | None = Field(None, ge=1)


def tune(config: str | Path | dict | Config, dev: Any, options: TuneOptions | dict | None = None, *, project: str | Path = "labelmill.db",
         on_event: EventHandler = ignore, **knobs: Any) -> dict[str, Any]:
    """Try strategies on `dev` rows (with gold labels) until the budget runs out; return the trials and the
    best (the knobs are `TuneOptions`', as `options` or as keywords)."""
    opts = TuneOptions.of(options, knobs)
    search = _Search.prepare(config, dev, opts, project, on_event)
    for trial in search.trials:
        search.run(trial)
    return search.report()


@dataclass
class _Search:
    """The search's state: the dev rows, the trials in the order they run, and what they have spent."""

    base: Config
    frame: Any
    opts: TuneOptions
    project: str | Path
    on_event: EventHandler
    pool_path: str | None
    trials: list[Trial]
    started: float = field(default_factory=time.perf_counter)
    spent: float = 0.0
    out_of_money: bool = False
    calls: int = 0

    @classmethod
    def prepare(cls, config: Any, dev: Any, opts: TuneOptions, project: str | Path, on_event: EventHandler) -> _Search:
        """The config (with the guideline to start from), the dev rows and the trials, each checked before any is run."""
        base = load_with_notices(config, on_event)
        if opts.guideline is not None:
            base = base.model_copy(update={"guidelines": opts.guideline, "guidelines_file": None})
        if not base.gold_column:
            raise ConfigError("tune needs gold_column: the dev rows' true labels", fix="set gold_column in the config")
        frame = read_rows(dev, base.dataset)
        if opts.limit is not None:
            frame = frame.head(opts.limit)
        if len(frame) < 20:
            raise ConfigError(f"tune needs at least 20 dev rows; got {len(frame)}", fix="pass a larger dev file")
        pool_path = str(Path(opts.pool).resolve()) if opts.pool else None
        if any(s > 0 for s in opts.shots) and not (pool_path or base.examples.file or base.examples.items):
            raise ConfigError("few-shot strategies need example rows", fix="pass --pool FILE (labeled rows, not the dev rows) or set examples.file")
        for name in opts.reasonings:
            reasoning_settings(name)  # a typo fails now, not after the budget is half spent
        trials = [Trial(k, sel, cal, reasoning, model)
                  for model in dict.fromkeys(opts.models or [None])  # in the order given: the cheap model first
                  for reasoning in dict.fromkeys(opts.reasonings)  # "none" first keeps the cheap ones first
                  for k in sorted(set(opts.shots))
                  for sel in (["fixed"] if k == 0 else list(opts.selectors))
                  for cal in opts.calibrations]
        return cls(base, frame, opts, project, on_event, pool_path, trials)

    def _skip_reason(self, trial: Trial) -> str | None:
        o = self.opts
        if time.perf_counter() - self.started > o.budget_s:
            return f"budget of {o.budget_s:.0f} s spent"
        if o.max_calls is not None and self.calls + (0 if _twin(self.trials, trial) else len(self.frame)) > o.max_calls:  # a twin's answers are cached
            return f"{self.calls} of {o.max_calls} model calls spent"
        if o.max_cost is not None and (self.spent >= o.max_cost or self.out_of_money):
            return f"cost budget of ${o.max_cost} spent"
        return None

    def run(self, trial: Trial) -> None:
        """Label the dev rows with one trial's strategy (calibrated ones: fitted on the first half) and score
        it on the second half; a failing trial is recorded, never the end of the search."""
        reason = self._skip_reason(trial)
        if reason is not None:
            trial.status, trial.detail = "skipped", reason
            return
        cfg = load_config(_strategy_config(self.base, trial.shots, trial.selection, self.pool_path, trial.reasoning, trial.model))
        cfg.base_dir = self.base.base_dir
        try:
            self._score(trial, cfg)
            trial.status = "done"
        except Exception as exc:  # noqa: BLE001 - one failing strategy must not end the search
            trial.status, trial.detail = "stopped" if self.out_of_money else "failed", f"{type(exc).__name__}: {exc}"[:300]
        self.on_event(Notice(f"tune: {trial.name}: {trial.status}" + (f", accuracy {trial.accuracy:.3f}" if trial.accuracy is not None else "")))

    def _score(self, trial: Trial, cfg: Config) -> None:
        from labelmill.core import calibrate_on_seed, label_rows

        frame, project, max_cost, half, t0 = self.frame, self.project, self.opts.max_cost, len(self.frame) // 2, time.perf_counter()
        try:
            result = label_rows(cfg, frame, project=project, max_cost=None if max_cost is None else max_cost - self.spent)
        except RunStopped as stop:  # the cost cap: what it spent counts, and the search ends
            self.spent += stop.result.cost_usd if stop.result is not None else 0.0
            self.out_of_money = stop.kind == "budget_exhausted"
            raise
        self.spent += result.cost_usd
        self.calls += int(result.model_rows)
        gold = _gold(cfg, result.frame)
        labels = result.frame[cfg.output.label_column].tolist()
        if trial.calibration == "none":
            trial.accuracy_all_dev = _accuracy(gold, labels)
        else:  # fitted on the first half, applied to the second (answers come from the cache)
            cal = calibrate_on_seed(cfg, frame.iloc[:half], project=project, method=trial.calibration)
            labels = [None] * half + label_rows(cfg, frame.iloc[half:], project=project, calibrator=cal).frame[cfg.output.label_column].tolist()
        trial.accuracy = _accuracy(gold[half:], labels[half:])
        trial.completion_rate = float(np.mean([p is not None for p in labels[half:]]))
        trial.rows = len(frame) - half
        if result.model_rows:
            trial.seconds_per_row = round((time.perf_counter() - t0) / len(frame), 3)
            trial.cost_per_row = result.cost_usd / len(frame)
        else:  # every answer came from the cache: the trial that asked the model says what it costs
            twin = _twin(self.trials, trial)
            trial.seconds_per_row, trial.cost_per_row = (twin.seconds_per_row, twin.cost_per_row) if twin else (None, None)

    def report(self) -> dict[str, Any]:
        """The trials, the Pareto front and the best; the best config (and its calibration) written to `out`;
        every trial kept in the store's tune_trials table."""
        done = [t for t in self.trials if t.status == "done"]
        if not done:
            raise ConfigError("no strategy finished within the budget (seconds, cost or model calls)", fix="raise --budget, --max-cost or --max-calls, or lower --limit")
        best = max(done, key=lambda t: (t.accuracy, -(t.seconds_per_row or 0.0)))
        best_config = _strategy_config(self.base, best.shots, best.selection, self.pool_path, best.reasoning, best.model)
        if self.opts.guideline is not None:
            best_config.pop("guidelines_file", None)
        report = {
            "dev_rows": len(self.frame), "budget_s": self.opts.budget_s, "elapsed_s": round(time.perf_counter() - self.started, 1),
            "cost_usd": round(self.spent, 6), "model_calls": self.calls, "trials": [asdict(t) | {"name": t.name} for t in self.trials],
            "pareto": [t.name for t in _pareto(done)], "best": asdict(best) | {"name": best.name},
        }
        if self.opts.out is not None:
            report.update(self._write_best(Path(self.opts.out), best, best_config))
        self._save()
        return report

    def _write_best(self, out: Path, best: Trial, best_config: dict[str, Any]) -> dict[str, str]:
        from labelmill.core import calibrate_on_seed

        out.write_text(yaml.safe_dump(best_config, sort_keys=False), encoding="utf-8")
        written = {"best_config": str(out)}
        if best.calibration != "none":
            cal_path = out.with_suffix(".calibration.json")
            calibrate_on_seed(load_config(best_config), self.frame, project=self.project, method=best.calibration, out=cal_path)
            written["best_calibration"] = str(cal_path)
        return written

    def _save(self) -> None:
        from labelmill.store.db import Store
        from labelmill.strategies.tune.strategy import STRATEGY

        with Store(self.project) as store:
            with STRATEGY.tables(store).transaction() as db:
                now = time.time()
                db.executemany("INSERT INTO tune_trials (created_at, task_name, trial) VALUES (?, ?, ?)", [(now, self.base.name, json.dumps(asdict(t))) for t in self.trials])


def _gold(config: Config, frame) -> list[Any]:
    from labelmill.tasks import make_task

    task = make_task(config)
    return [task.gold(r) for r in frame.to_dict("records")]


def _accuracy(gold: list[Any], labels: list[Any]) -> float:
    return float(np.mean([g is not None and g == p for g, p in zip(gold, labels)])) if gold else 0.0


def _twin(trials: list[Trial], trial: Trial) -> Trial | None:
    """The trial that asked the model for the same prompts as `trial` (one whose answers all came from the cache)."""
    for other in trials:
        same = (other.shots, other.selection, other.reasoning, other.model) == (trial.shots, trial.selection, trial.reasoning, trial.model)
        if other is not trial and same and other.seconds_per_row is not None:  # 0.0 on a fast backend still asked
            return other
    return None


def _pareto(trials: list[Trial]) -> list[Trial]:
    """Trials no other trial beats on accuracy, time per row and cost per row at once."""

    def point(t: Trial) -> tuple[float, float, float]:
        return -(t.accuracy or 0.0), t.seconds_per_row or 0.0, t.cost_per_row or 0.0

    front = []
    for t in trials:
        mine = point(t)
        dominated = any(all(a <= b for a, b in zip(point(o), mine)) and point(o) != mine for o in trials if o is not t)
        if not dominated:
            front.append(t)
    return sorted(front, key=lambda t: t.seconds_per_row or 0.0)


__all__ = ["Trial", "TuneOptions", "tune"]
