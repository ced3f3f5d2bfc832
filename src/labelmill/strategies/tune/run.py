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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from labelmill.config import Config, dump_config, load_config, load_with_notices
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


def tune(
    config: str | Path | dict | Config,
    dev: Any,
    *,
    pool: str | Path | None = None,
    shots: tuple[int, ...] = (0, 4, 8),
    selectors: tuple[str, ...] = ("random", "balanced", "similar"),
    calibrations: tuple[str, ...] = ("none", "auto"),
    reasonings: tuple[str, ...] = ("none",),
    models: tuple[str, ...] | None = None,
    max_cost: float | None = None,
    budget_s: float = 600.0,
    limit: int | None = 200,
    project: str | Path = "labelmill.db",
    out: str | Path | None = None,
    guideline: str | None = None,
    max_calls: int | None = None,
    on_event: EventHandler = ignore,
) -> dict[str, Any]:
    """Try strategies on `dev` rows (with gold labels) until `budget_s` runs out; return the trials and the best.

    `guideline`: the text the labeler reads instead of the config's guidelines (e.g. a version `labelmill
    refine` wrote: tune starts from the refined guideline). `max_calls`: a trial is skipped when it would
    take the labeling requests sent to the model past this many (to compare with refine at equal calls)."""
    from labelmill.core import calibrate_rows, label_rows
    from labelmill.store.db import Store

    base = load_with_notices(config, on_event)
    if guideline is not None:
        base = base.model_copy(update={"guidelines": guideline, "guidelines_file": None})
    if not base.gold_column:
        raise ConfigError("tune needs gold_column: the dev rows' true labels", fix="set gold_column in the config")
    frame = read_rows(dev, base.dataset)
    if limit is not None:
        frame = frame.head(limit)
    if len(frame) < 20:
        raise ConfigError(f"tune needs at least 20 dev rows; got {len(frame)}", fix="pass a larger dev file")
    pool_path = str(Path(pool).resolve()) if pool else None
    if any(s > 0 for s in shots) and not (pool_path or base.examples.file or base.examples.items):
        raise ConfigError("few-shot strategies need example rows", fix="pass --pool FILE (labeled rows, not the dev rows) or set examples.file")
    half = len(frame) // 2
    for name in reasonings:
        reasoning_settings(name)  # a typo fails now, not after the budget is half spent
    trials: list[Trial] = []
    for model in dict.fromkeys(models or [None]):  # in the order given: the cheap model first
        for reasoning in dict.fromkeys(reasonings):  # "none" first keeps the cheap ones first
            for k in sorted(set(shots)):
                for sel in (["fixed"] if k == 0 else list(selectors)):
                    for cal in calibrations:
                        trials.append(Trial(k, sel, cal, reasoning, model))
    started = time.perf_counter()
    spent, out_of_money, calls = 0.0, False, 0
    for trial in trials:
        if time.perf_counter() - started > budget_s:
            trial.status, trial.detail = "skipped", f"budget of {budget_s:.0f} s spent"
            continue
        if max_calls is not None and calls + (0 if _twin(trials, trial) else len(frame)) > max_calls:  # a twin's answers are cached
            trial.status, trial.detail = "skipped", f"{calls} of {max_calls} model calls spent"
            continue
        if max_cost is not None and (spent >= max_cost or out_of_money):
            trial.status, trial.detail = "skipped", f"cost budget of ${max_cost} spent"
            continue
        cfg = load_config(_strategy_config(base, trial.shots, trial.selection, pool_path, trial.reasoning, trial.model))
        cfg.base_dir = base.base_dir
        t0 = time.perf_counter()
        try:
            try:
                result = label_rows(cfg, frame, project=project, max_cost=None if max_cost is None else max_cost - spent)
            except RunStopped as stop:  # the cost cap: what it spent counts, and the search ends
                spent += stop.result.cost_usd if stop.result is not None else 0.0
                out_of_money = stop.kind == "budget_exhausted"
                raise
            spent += result.cost_usd
            calls += int(result.model_rows)
            gold = _gold(cfg, result.frame)
            labels = result.frame[cfg.output.label_column].tolist()
            if trial.calibration == "none":
                trial.accuracy_all_dev = _accuracy(gold, labels)
            else:  # fitted on the first half, applied to the second (answers come from the cache)
                cal = calibrate_rows(cfg, frame.iloc[:half], project=project, method=trial.calibration)
                labels = [None] * half + label_rows(cfg, frame.iloc[half:], project=project, calibrator=cal).frame[cfg.output.label_column].tolist()
            trial.accuracy = _accuracy(gold[half:], labels[half:])
            trial.completion_rate = float(np.mean([p is not None for p in labels[half:]]))
            trial.rows = len(frame) - half
            if result.model_rows:
                trial.seconds_per_row = round((time.perf_counter() - t0) / len(frame), 3)
                trial.cost_per_row = result.cost_usd / len(frame)
            else:  # every answer came from the cache: the trial that asked the model says what it costs
                twin = _twin(trials, trial)
                trial.seconds_per_row, trial.cost_per_row = (twin.seconds_per_row, twin.cost_per_row) if twin else (None, None)
            trial.status = "done"
        except Exception as exc:  # noqa: BLE001 - one failing strategy must not end the search
            trial.status, trial.detail = "stopped" if out_of_money else "failed", f"{type(exc).__name__}: {exc}"[:300]
        on_event(Notice(f"tune: {trial.name}: {trial.status}" + (f", accuracy {trial.accuracy:.3f}" if trial.accuracy is not None else "")))
    done = [t for t in trials if t.status == "done"]
    if not done:
        raise ConfigError("no strategy finished within the budget (seconds, cost or model calls)", fix="raise --budget, --max-cost or --max-calls, or lower --limit")
    best = max(done, key=lambda t: (t.accuracy, -(t.seconds_per_row or 0.0)))
    front = _pareto(done)
    best_config = _strategy_config(base, best.shots, best.selection, pool_path, best.reasoning, best.model)
    if guideline is not None:
        best_config.pop("guidelines_file", None)
    report = {
        "dev_rows": len(frame),
        "budget_s": budget_s,
        "elapsed_s": round(time.perf_counter() - started, 1),
        "cost_usd": round(spent, 6),
        "model_calls": calls,
        "trials": [asdict(t) | {"name": t.name} for t in trials],
        "pareto": [t.name for t in front],
        "best": asdict(best) | {"name": best.name},
    }
    if out is not None:
        out = Path(out)
        out.write_text(yaml.safe_dump(best_config, sort_keys=False), encoding="utf-8")
        report["best_config"] = str(out)
        if best.calibration != "none":
            cal_path = out.with_suffix(".calibration.json")
            calibrate_rows(load_config(best_config), frame, project=project, method=best.calibration, out=cal_path)
            report["best_calibration"] = str(cal_path)
    from labelmill.strategies.tune.strategy import STRATEGY

    with Store(project) as store:
        with STRATEGY.tables(store).transaction() as db:
            now = time.time()
            db.executemany("INSERT INTO tune_trials (created_at, task_name, trial) VALUES (?, ?, ?)", [(now, base.name, json.dumps(asdict(t))) for t in trials])
    return report


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


__all__ = ["Trial", "tune"]
