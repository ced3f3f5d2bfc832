"""The Python API: the same four steps as the CLI (init, plan, run/label, eval)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from .backends import Backend
from .config import Config, load_config
from .evaluation import default_report_path
from .evaluation import evaluate as _evaluate
from .events import EventHandler, Notice, ignore
from .io import read_rows
from .runner import Job, Runner, RunResult
from .store import Store

DEFAULT_PROJECT = "labelmill.db"
TOKENS_PER_S = {"qwen2.5-coder-0.5b": 150.0, "smollm2-135m": 180.0, "qwen2.5-coder-1.5b": 70.0}  # prompt tokens/s on 2 cores


def _config(config: str | Path | dict | Config, on_event: EventHandler) -> Config:
    notices: list[str] = []
    loaded = load_config(config, notices=notices)
    for message in notices:
        on_event(Notice(message))
    return loaded


def init_config(task: str = "classification") -> str:
    """A commented starting config for a task type."""
    from .errors import ConfigError
    from .tasks import tasks

    if task not in tasks.names():
        raise ConfigError(f"no template for task {task!r}", fix=f"use one of: {', '.join(tasks.names())}")
    return resources.files("labelmill").joinpath("templates", f"{task}.yaml").read_text(encoding="utf-8")


def label(
    config: str | Path | dict | Config,
    data: Any,
    *,
    output: str | Path | None = None,
    limit: int | None = None,
    project: str | Path = DEFAULT_PROJECT,
    backend: Backend | None = None,
    on_event: EventHandler = ignore,
    max_cost: float | None = None,
) -> RunResult:
    """Label rows (a file path, DataFrame, list of dicts or datasets.Dataset); resumable through `project`.

    `max_cost` (USD) caps what this call spends on a paid model: the run stops cleanly within one
    request's cost of the cap, everything labeled is saved, and `RunStopped` is raised (its `result`
    holds what was labeled).
    """
    cfg = _config(config, on_event)
    job = Job(cfg, backend)
    try:
        with Store(project) as store:
            return Runner(job, store, on_event).run(data, output=output, limit=limit, max_cost=max_cost)
    finally:
        if backend is None:
            job.backend.close()


run = label


def plan(config: str | Path | dict | Config, data: Any, *, limit: int | None = None, backend: Backend | None = None, on_event: EventHandler = ignore) -> dict[str, Any]:
    """Prompt preview, row count, tokens and an estimate of time and cost, without labeling anything."""
    cfg = _config(config, on_event)
    job = Job(cfg, backend)
    frame = read_rows(data, cfg.dataset)
    if limit is not None:
        frame = frame.head(limit)
    job.check_columns(frame)
    inputs = [job.row_input(r) for r in frame.to_dict("records")]
    rendered = job.backend.render(job.prompt(inputs[0]))
    cut = rendered.rfind(inputs[0])
    head, tail = (rendered[:cut], rendered[cut + len(inputs[0]) :]) if cut >= 0 and inputs[0] else (rendered, "")
    count = job.backend.count_tokens
    prefix_tokens, suffix_tokens = count(head), count(tail) if tail else 0
    row_tokens = [count(text) for text in inputs]
    candidate_tokens = sum(count(c) for c in job.candidates or [])
    evaluated = prefix_tokens + sum(row_tokens) + len(inputs) * suffix_tokens
    sent = len(inputs) * (prefix_tokens + suffix_tokens) + sum(row_tokens)
    rate = TOKENS_PER_S.get(job.backend.model_id, 150.0) * ((cfg.model.n_threads or 2) / 2)
    seconds = evaluated / rate + (len(inputs) * cfg.model.max_tokens / 25.0 if job.method == "generate" else 0.0)
    return {
        "task": cfg.task,
        "rows": len(inputs),
        "method": job.method,
        "backend": job.backend.name,
        "model": job.backend.model_id,
        "demos": len(job.demos),
        "prompt_preview": rendered,
        "candidates": job.candidates,
        "candidate_tokens": candidate_tokens,
        "prefix_tokens": prefix_tokens,
        "suffix_tokens": suffix_tokens,
        "mean_row_tokens": sum(row_tokens) / len(row_tokens),
        "prompt_tokens_total": sent,
        "tokens_evaluated_with_prefix_reuse": evaluated,
        "estimated_seconds": round(seconds, 1),
        "estimated_cost_usd": _estimated_cost(job, sent, len(inputs)),
    }


def _estimated_cost(job: Job, prompt_tokens: int, rows: int) -> float | None:
    """USD for the prompts plus at most max_tokens per answer; 0 for local models, None for an unpriced model."""
    if not hasattr(job.backend, "cost"):
        return 0.0
    if job.backend.price is None:
        return None
    return round(job.backend.cost(prompt_tokens, rows * job.max_tokens), 6)


def evaluate(config: str | Path | dict | Config, output: Any, *, target: float = 0.95, report: str | Path | None = None) -> dict[str, Any]:
    """Metrics, threshold table and ECE of a labeled output; writes the HTML report when `report` is given."""
    cfg = load_config(config)
    metrics = _evaluate(cfg, output, target=target)
    if report is not None:
        from .report import write_report

        metrics["report"] = str(write_report(metrics, report, title=f"labelmill report: {cfg.name}"))
    return metrics


__all__ = ["DEFAULT_PROJECT", "default_report_path", "evaluate", "init_config", "label", "plan", "run"]
