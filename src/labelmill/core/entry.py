"""The one entry that labels rows, and the two steps built on it: `plan` (what a run will cost) and
`calibrate` (fit a calibration and a threshold on labeled seed rows).

The Python API (`labelmill.label`, `plan`, `calibrate`) and every strategy call these: a config is always
a validated `Config` here (the facade loads files and sends their notices), and the project is a path or
an open `Store`. A config that a strategy labels in its own way (an ensemble's members) is handed to that
strategy through the strategy registry, so the core names no strategy.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

from labelmill.backends import Backend
from labelmill.config import Config
from labelmill.core.job import Job
from labelmill.core.lifecycle import RunResult
from labelmill.core.loop import Runner
from labelmill.core.strategy import strategy_for
from labelmill.errors import ConfigError, InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.io import read_rows
from labelmill.numeric.calibration import Calibrator
from labelmill.store.db import Store

DEFAULT_PROJECT = "labelmill.db"  # the project file when none is named
TOKENS_PER_S = {"qwen2.5-coder-0.5b": 150.0, "smollm2-135m": 180.0, "qwen2.5-coder-1.5b": 70.0}  # prompt tokens/s on 2 cores


def label_rows(
    cfg: Config,
    data: Any,
    *,
    project: str | Path | Store,
    backend: Backend | None = None,
    on_event: EventHandler = ignore,
    output: str | Path | None = None,
    limit: int | None = None,
    max_cost: float | None = None,
    calibrator: Calibrator | None = None,
) -> RunResult:
    """Label rows through the cache and the store (resumable); see `labelmill.label` for the arguments.

    A backend passed in is the caller's to close; one made here is closed here."""
    opened = nullcontext(project) if isinstance(project, Store) else Store(project)
    strategy = strategy_for(cfg)
    if strategy is not None:
        if backend is not None:
            on_event(Notice("ensemble: the backend passed in labels for every member, so the members' model sections are not used"))
        with opened as store:
            return strategy.label_rows(
                cfg, data, store=store, make_job=lambda member: Job(member, backend), output=output, limit=limit, on_event=on_event,
                max_cost=max_cost, calibrator=calibrator, close_backends=backend is None,
            )
    job = Job(cfg, backend)
    try:
        with opened as store:
            return Runner(job, store, on_event, calibrator=calibrator).run(data, output=output, limit=limit, max_cost=max_cost)
    finally:
        if backend is None:
            job.backend.close()


def plan_rows(cfg: Config, data: Any, *, limit: int | None = None, backend: Backend | None = None) -> dict[str, Any]:
    """Prompt preview, row count, tokens and an estimate of time and cost, without labeling anything."""
    strategy = strategy_for(cfg)  # an ensemble: the prompt preview is the first member's; the estimate counts every member
    job = Job(cfg if strategy is None else strategy.plan_config(cfg), backend)
    frame = read_rows(data, cfg.dataset)
    if limit is not None:
        frame = frame.head(limit)
    job.check_columns(frame)
    inputs = [job.row_input(r) for r in frame.to_dict("records")]
    job.prepare_rows(inputs[:1])
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
    # reasoning asks more per row: explanations (and their answers), sampled answers, checks
    r = cfg.reasoning
    requests = {"answers": r.samples, "explanations": r.samples if r.chain_of_thought else 0, "checks": int(r.p_true) + int(r.verbalized)}
    seconds = seconds * (r.samples + requests["checks"]) + len(inputs) * requests["explanations"] * r.explanation_tokens / 25.0
    if cfg.ensemble.members:
        requests["ensemble_members"] = len(cfg.ensemble.members)
        seconds *= len(cfg.ensemble.members)
    return {
        "task": cfg.task,
        "rows": len(inputs),
        "method": job.method,
        "backend": job.backend.name,
        "model": job.backend.model_id,
        "demos": len(job.picker.for_row(inputs[0])),
        "demo_selection": cfg.examples.selection,
        "prompt_preview": rendered,
        "candidates": job.candidates,
        "candidate_tokens": candidate_tokens,
        "prefix_tokens": prefix_tokens,
        "suffix_tokens": suffix_tokens,
        "mean_row_tokens": sum(row_tokens) / len(row_tokens),
        "prompt_tokens_total": sent,
        "tokens_evaluated_with_prefix_reuse": evaluated,
        "requests_per_row": requests,
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


def calibrate_rows(
    cfg: Config,
    seed: Any,
    *,
    method: str = "auto",
    target: float = 0.95,
    delta: float = 0.05,
    out: str | Path | None = None,
    project: str | Path,
    backend: Backend | None = None,
    on_event: EventHandler = ignore,
    threshold_rows: Any = None,
) -> Calibrator:
    """Label the seed rows (resumable, cached), fit a calibration on their gold labels, and choose the
    threshold for `target` accuracy with a one-sided Clopper-Pearson bound at level `delta`.

    The threshold is chosen on the seed rows' out-of-fold calibrated confidences, or, when
    `threshold_rows` (more labeled rows, not the seed rows) is given, on those rows' calibrated
    confidences: a bound needs rows (at least 59 right answers above the threshold for 95% at delta
    0.05), and a calibration needs far fewer.

    `method`: auto (lowest cross-validated log loss), temperature, bias, isotonic. The seed report
    (`Calibrator.seed_report`) has ECE before and after (after = cross-validated on the seed rows) and
    the threshold's seed figures. Saved as JSON at `out` when given.
    """
    import numpy as np

    from labelmill.numeric import calibration as cal_mod
    from labelmill.tasks import make_task

    result = label_rows(cfg, seed, project=project, backend=backend, on_event=on_event)  # an ensemble config labels with every member
    names = cfg.label_names
    with Store(project) as store:
        table = store.labels(result.run_id, len(result.frame), names)
    task = make_task(cfg)
    records = result.frame.to_dict("records")
    keep = [i for i, r in enumerate(records) if task.gold(r) is not None]
    if len(keep) < 20:
        raise InputDataError(f"calibration needs at least 20 seed rows with a gold label; {seed} has {len(keep)}", fix="label more seed rows (100-200 is typical), with gold_column filled")
    gold = [task.gold(records[i]) for i in keep]
    predicted = [table.labels[i] for i in keep]
    raw = table.confidence[keep]
    correct = np.array([task.is_correct(g, p) for g, p in zip(gold, predicted)], dtype=bool)
    has_dists = bool(names) and bool(table.has_distribution[keep].all())
    fit_rows = np.array([p is not None and not np.isnan(c) for p, c in zip(predicted, raw)])
    probs = gold_idx = None
    if has_dists and all(g in names for g in gold):
        probs = table.probs[keep]
        gold_idx = np.array([names.index(g) for g in gold])
    signals = [table.signals[i] for i in keep]
    if method not in ("auto", "fused", *cal_mod.METHODS):
        raise ConfigError(f"unknown calibration method {method!r}", fix=f"use auto, fused or one of: {', '.join(cal_mod.METHODS)}")
    if method in ("temperature", "bias", "bias_platt") and probs is None:
        raise ConfigError(f"{method} calibration needs a label distribution for every seed row (a scored closed label set)", fix="use --method isotonic, or model.method: score")
    sub = (lambda a: None if a is None else a[fit_rows])
    losses = {}
    thin = [n for n in names if sum(g == n for g in gold) < 3] if probs is not None else []
    if thin and method.startswith("bias"):
        raise ConfigError(f"bias calibration needs seed rows of every label; {thin[0]!r} has fewer than 3", fix="draw the seed rows at random from all labels, or use --method temperature")
    if method == "auto":
        method, losses = cal_mod.choose(sub(probs), sub(gold_idx), raw[fit_rows], correct[fit_rows], names, allow_bias=not thin)
        if thin:
            on_event(Notice(f"calibrate: no bias calibration, since label {thin[0]!r} has fewer than 3 seed rows (is the seed a random sample?)"))
    calibrator = cal_mod.fit(method, sub(probs), sub(gold_idx), raw[fit_rows], correct[fit_rows], names, [signals[i] for i in np.flatnonzero(fit_rows)])
    if method == "fused" and set(calibrator.fused) == {"confidence", "bias"}:
        on_event(Notice(f"calibrate: fused found none of {', '.join(cal_mod.FUSED_SIGNALS)} on every seed row, so it fits the confidence alone "
                        "(turn on reasoning.p_true, reasoning.verbalized or reasoning.samples in the config)"))
    # out-of-fold calibrated confidences: honest ECE on the seed rows, and the rows the threshold is chosen on
    oof_conf, oof_ok = np.full(len(keep), np.nan), correct.copy()
    idx = np.flatnonzero(fit_rows)
    order = np.random.default_rng(0).permutation(len(idx))
    for f in range(5):
        test = idx[order[f::5]]
        train = np.setdiff1d(idx, test)
        part = cal_mod.fit(method, None if probs is None else probs[train], None if gold_idx is None else gold_idx[train], raw[train], correct[train], names, [signals[i] for i in train])
        pred, conf = part.apply(None if probs is None else probs[test], raw[test], [signals[i] for i in test])
        oof_conf[test] = conf
        if pred is not None:
            oof_ok[test] = pred == gold_idx[test]
    threshold_on, t_conf, t_ok = "seed rows (out of fold)", oof_conf, oof_ok
    if threshold_rows is not None:
        import pandas as pd

        held = label_rows(cfg, threshold_rows, project=project, backend=backend, on_event=on_event, calibrator=calibrator)
        held_gold = [task.gold(r) for r in held.frame.to_dict("records")]
        keep_held = [i for i, g in enumerate(held_gold) if g is not None]
        if len(keep_held) < 20:
            raise InputDataError(f"the threshold rows have {len(keep_held)} rows with a gold label; the threshold needs far more", fix="pass a few hundred labeled rows that are not the seed rows")
        values = pd.to_numeric(held.frame[held.columns["confidence"]], errors="coerce").to_numpy(dtype=float)
        t_conf = values[keep_held]
        t_ok = np.array([task.is_correct(held_gold[i], held.frame[held.columns["label"]].iloc[i]) for i in keep_held], dtype=bool)
        threshold_on = f"{len(keep_held)} threshold rows"
    chosen = cal_mod.threshold_with_bound(t_conf, t_ok, target, delta)
    point = cal_mod.threshold_point(t_conf, t_ok, target)
    calibrator.target, calibrator.delta = target, delta
    calibrator.threshold = chosen["threshold"] if chosen else None
    calibrator.seed_report = {
        "seed_rows": len(keep),
        "method": method,
        "cv_log_loss": losses,
        "accuracy_raw": float(correct.mean()),
        "accuracy_calibrated_cv": float(oof_ok.mean()),
        "ece_raw": cal_mod.expected_calibration_error(correct, raw)[0],
        "ece_calibrated_cv": cal_mod.expected_calibration_error(oof_ok, oof_conf)[0],
        "threshold": chosen,
        "threshold_without_bound": point,
        "threshold_chosen_on": threshold_on,
    }
    if out is not None:
        calibrator.save(out)
    return calibrator
