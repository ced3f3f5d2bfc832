"""The Python API: the same four steps as the CLI (init, plan, run/label, eval)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labelmill.backends import Backend
from labelmill.config import Config, load_config, load_with_notices
from labelmill.core import RunResult
from labelmill.core.entry import DEFAULT_PROJECT, CalibrateOptions, RunOptions, calibrate_on_seed, label_rows, plan_rows
from labelmill.errors import ConfigError
from labelmill.evaluation.metrics import default_report_path
from labelmill.evaluation.metrics import evaluate as _evaluate
from labelmill.events import EventHandler, default_handler, ignore
from labelmill.numeric.calibration import Calibrator


def init_config(task: str = "classification") -> str:
    """A commented starting config for a task type (built-in or registered by a plugin)."""
    from labelmill.tasks import tasks

    if task not in tasks.names():
        raise ConfigError(f"no template for task {task!r}", fix=f"use one of: {', '.join(tasks.names())}")
    try:
        return tasks.get(task).template(task)
    except FileNotFoundError:
        raise ConfigError(f"the {task} task type ships no starting config", fix="write the config by hand (see README, Tasks)") from None


def label(
    config: str | Path | dict | Config, data: Any, options: RunOptions | dict | None = None, *, project: str | Path = DEFAULT_PROJECT,
    backend: Backend | None = None, on_event: EventHandler = ignore, **knobs: Any,
) -> RunResult:
    """Label rows (a file path, DataFrame, list of dicts or datasets.Dataset); resumable through `project`.

    Knobs (`RunOptions`, as `options` or keywords): `output` (write the labeled rows there), `limit` (the
    first N rows), `max_cost` (USD: the run stops cleanly within one request's cost of the cap, everything
    labeled is saved, and `RunStopped` is raised, its `result` holding what was labeled), and `calibration`
    (a file from `calibrate`, or a Calibrator: the output's labels and confidences become the calibrated
    ones, and `llm_needs_review` is added).
    """
    on_event = default_handler(on_event)  # (in a notebook: a progress bar)
    cfg = load_with_notices(config, on_event)
    calibration = knobs.pop("calibration", None)
    if calibration is not None:
        knobs["calibrator"] = Calibrator.load(calibration) if isinstance(calibration, (str, Path)) else calibration
    return label_rows(cfg, data, options, project=project, backend=backend, on_event=on_event, **knobs)


run = label


def plan(config: str | Path | dict | Config, data: Any, *, limit: int | None = None, backend: Backend | None = None, on_event: EventHandler = ignore) -> dict[str, Any]:
    """Prompt preview, row count, tokens and an estimate of time and cost, without labeling anything."""
    return plan_rows(load_with_notices(config, on_event), data, limit=limit, backend=backend)


def calibrate(
    config: str | Path | dict | Config, seed: Any, options: CalibrateOptions | dict | None = None, *, project: str | Path = DEFAULT_PROJECT,
    backend: Backend | None = None, on_event: EventHandler = ignore, **knobs: Any,
) -> Calibrator:
    """Label the seed rows (resumable, cached), fit a calibration on their gold labels, and choose the
    threshold for `target` accuracy with a one-sided Clopper-Pearson bound at level `delta`.

    Knobs (`CalibrateOptions`, as `options` or keywords): `method` (auto: the lowest cross-validated log
    loss; temperature, bias, bias_platt, isotonic, platt, fused), `target`, `delta`, `threshold_rows` (more
    labeled rows, not the seed rows, to choose the threshold on: a bound needs rows, at least 59 right
    answers above the threshold for 95% at delta 0.05, and a calibration needs far fewer) and `out` (saved
    as JSON there). The seed report (`Calibrator.seed_report`) has ECE before and after (after =
    cross-validated on the seed rows) and the threshold's seed figures.
    """
    return calibrate_on_seed(load_with_notices(config, on_event), seed, options, project=project, backend=backend, on_event=on_event, **knobs)


def evaluate(config: str | Path | dict | Config, output: Any, *, target: float = 0.95, report: str | Path | None = None) -> dict[str, Any]:
    """Metrics, threshold table and ECE of a labeled output; writes the HTML report when `report` is given."""
    cfg = load_config(config)
    metrics = _evaluate(cfg, output, target=target)
    if report is not None and metrics.get("gold", True):  # (no report without gold: the summary is printed)
        from labelmill.evaluation.report import write_report

        metrics["report"] = str(write_report(metrics, report, title=f"labelmill report: {cfg.name}"))
    return metrics


__all__ = ["DEFAULT_PROJECT", "default_report_path", "evaluate", "init_config", "label", "plan", "run"]
