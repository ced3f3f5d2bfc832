"""The one entry that labels rows (`label_rows`), and the two steps built on it: `plan_rows` (what a run
will cost) and `calibrate_on_seed` (fit a calibration and a threshold on labeled seed rows).

The Python API (`labelmill.label`, `plan`, `calibrate`) and every strategy call these: a config is always
a validated `Config` here (the facade loads files and sends their notices), and the project is a path or
an open `Store`. A config that a strategy labels in its own way (an ensemble's members) is handed to that
strategy through the strategy registry, so the core names no strategy.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ConfigDict, Field

from labelmill.backends import Backend
from labelmill.config import Config
from labelmill.core.job import Job
from labelmill.core.lifecycle import RunResult
from labelmill.core.loop import Runner
from labelmill.core.strategy import Options, strategy_for
from labelmill.errors import ConfigError, InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.io import read_rows
from labelmill.numeric.calibration import Calibrator
from labelmill.store.db import Store

DEFAULT_PROJECT = "labelmill.db"  # the project file when none is named
DEMO_TURN_TOKENS = 10  # a demo's two chat turns' markers (<|im_start|>user ... <|im_end|>), about
TOKENS_PER_S = {"qwen2.5-coder-0.5b": 150.0, "smollm2-135m": 180.0, "qwen2.5-coder-1.5b": 70.0}  # prompt tokens/s on 2 cores


class RunOptions(Options):
    """What one labeling run writes and how far it goes: `output` (a file), `limit` (the first N rows),
    `max_cost` (USD; the run stops cleanly within one request's cost of it), `calibrator` (the output's
    labels and confidences become the calibrated ones, with `llm_needs_review`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    output: str | Path | None = None
    limit: int | None = None
    max_cost: float | None = None
    calibrator: Any = None


def label_rows(
    cfg: Config, data: Any, options: RunOptions | dict | None = None, *, project: str | Path | Store, backend: Backend | None = None,
    on_event: EventHandler = ignore, **knobs: Any,
) -> RunResult:
    """Label rows through the cache and the store (resumable); the knobs are `RunOptions`' (as `options` or
    keywords). A backend passed in is the caller's to close; one made here is closed here."""
    o = RunOptions.of(options, knobs)
    opened = nullcontext(project) if isinstance(project, Store) else Store(project)
    strategy = strategy_for(cfg)
    if strategy is not None:
        if backend is not None:
            on_event(Notice("ensemble: the backend passed in labels for every member, so the members' model sections are not used"))
        with opened as store:
            return strategy.label_rows(cfg, data, o, store=store, make_job=lambda member: Job(member, backend), on_event=on_event, close_backends=backend is None)
    job = Job(cfg, backend)
    try:
        with opened as store:
            return Runner(job, store, on_event, calibrator=o.calibrator).run(data, output=o.output, limit=o.limit, max_cost=o.max_cost)
    finally:
        if backend is None:
            job.backend.close()


def plan_rows(cfg: Config, data: Any, *, limit: int | None = None, backend: Backend | None = None) -> dict[str, Any]:
    """Prompt preview, row count, tokens and an estimate of time and cost, without labeling anything."""
    strategy = strategy_for(cfg)  # an ensemble: the prompt preview is the first member's; the estimate counts every member
    started = time.perf_counter()  # a run pays the same setup: loading the model (and an encoder for similar demos)
    job = Job(cfg if strategy is None else strategy.plan_config(cfg), backend)
    setup = time.perf_counter() - started
    frame = read_rows(data, cfg.dataset)
    if limit is not None:
        frame = frame.head(limit)
    job.check_columns(frame)
    inputs = [job.row_input(r) for r in frame.to_dict("records")]
    started = time.perf_counter()
    job.prepare_rows(inputs[:1])
    rendered = job.backend.render(first := job.prompt(inputs[0]))
    cut = rendered.rfind(inputs[0])
    head, tail = (rendered[:cut], rendered[cut + len(inputs[0]) :]) if cut >= 0 and inputs[0] else (rendered, "")
    count = job.backend.count_tokens
    prefix_tokens, suffix_tokens = count(head), count(tail) if tail else 0
    setup += time.perf_counter() - started
    row_tokens = [count(text) for text in inputs]
    candidate_tokens = sum(count(c) for c in (job.candidates_for(first) if job.method == "score" else job.candidates or []))
    # a scored closed set evaluates its labels' tokens after each row (at most: its trie shares common prefixes); demos
    # chosen per row, or a system text listing each row's own labels (labels_per_row), are no shared prefix
    demo_tokens = _demo_tokens(job, inputs[0])
    own_system = prefix_tokens if job.task.row_candidates(inputs[0]) is not None else 0
    per_row = suffix_tokens + (candidate_tokens if job.method == "score" else 0)
    evaluated = prefix_tokens + sum(row_tokens) + len(inputs) * per_row + (len(inputs) - 1) * (demo_tokens + own_system)
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
    seconds += setup
    return {
        "task": cfg.task,
        "rows": len(inputs),
        "method": job.method,
        "backend": job.backend.name,
        "model": job.backend.model_id,
        "demos": len(job.picker.for_row(inputs[0])),
        "demo_tokens_per_row": demo_tokens,
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
        "setup_seconds": round(setup, 1),  # measured here: the model's (and encoder's) load, which the estimate includes
        "estimated_cost_usd": _estimated_cost(job, sent, len(inputs)),
    }


def _demo_tokens(job: Job, first: str) -> int:
    """Tokens of a row's own demos when they are chosen per row (similar, mmr, ...), else 0 (a shared prefix)."""
    demos = job.picker.for_row(first) if job.picker.dynamic else []
    return sum(job.backend.count_tokens(d.input) + job.backend.count_tokens(d.answer) + DEMO_TURN_TOKENS for d in demos)


def _estimated_cost(job: Job, prompt_tokens: int, rows: int) -> float | None:
    """USD for the prompts plus at most max_tokens per answer; 0 for local models, None for an unpriced model."""
    if not hasattr(job.backend, "cost"):
        return 0.0
    if job.backend.price is None:
        return None
    return round(job.backend.cost(prompt_tokens, rows * job.max_tokens), 6)


class CalibrateOptions(Options):
    """calibrate's knobs. `method`: auto (lowest cross-validated log loss), temperature, bias, bias_platt,
    isotonic, platt, fused. `target`/`delta`: the threshold's accuracy and the level of its one-sided
    Clopper-Pearson bound. `threshold_rows`: more labeled rows (not the seed rows) to choose the threshold
    on. `out`: where the calibration is saved as JSON."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    method: str = "auto"
    target: float = Field(0.95, gt=0.0, le=1.0)
    delta: float = Field(0.05, gt=0.0, lt=1.0)
    out: str | Path | None = None
    threshold_rows: Any = None


def calibrate_on_seed(
    cfg: Config, seed: Any, options: CalibrateOptions | dict | None = None, *, project: str | Path, backend: Backend | None = None,
    on_event: EventHandler = ignore, **knobs: Any,
) -> Calibrator:
    """Label the seed rows (resumable, cached), fit a calibration on their gold labels, and choose the
    threshold for `target` accuracy with a one-sided Clopper-Pearson bound at level `delta`.

    The threshold is chosen on the seed rows' out-of-fold calibrated confidences, or, when
    `threshold_rows` (more labeled rows, not the seed rows) is given, on those rows' calibrated
    confidences: a bound needs rows (at least 59 right answers above the threshold for 95% at delta
    0.05), and a calibration needs far fewer. The seed report (`Calibrator.seed_report`) has ECE before and
    after (after = cross-validated on the seed rows) and the threshold's seed figures.
    """
    from labelmill.numeric import calibration as cal_mod

    opts = CalibrateOptions.of(options, knobs)
    result = label_rows(cfg, seed, project=project, backend=backend, on_event=on_event)  # an ensemble config labels with every member
    rows = _SeedRows.read(cfg, result, project, seed)
    method, losses = _choose_method(rows, opts.method, on_event)
    calibrator = cal_mod.fit(method, rows.sub(rows.probs), rows.sub(rows.gold_idx), rows.raw[rows.fit], rows.correct[rows.fit], rows.names,
                             [rows.signals[i] for i in np.flatnonzero(rows.fit)])
    if method == "fused" and set(calibrator.fused) == {"confidence", "bias"}:
        on_event(Notice(f"calibrate: fused found none of {', '.join(cal_mod.FUSED_SIGNALS)} on every seed row, so it fits the confidence alone "
                        "(turn on reasoning.p_true, reasoning.verbalized or reasoning.samples in the config)"))
    oof_conf, oof_ok = rows.out_of_fold(method)  # honest ECE on the seed rows, and the rows the threshold is chosen on
    threshold_on, t_conf, t_ok = "seed rows (out of fold)", oof_conf, oof_ok
    if opts.threshold_rows is not None:
        t_conf, t_ok = _threshold_rows(cfg, opts.threshold_rows, calibrator, rows.task, project, backend, on_event)
        threshold_on = f"{len(t_conf)} threshold rows"
    chosen = cal_mod.threshold_with_bound(t_conf, t_ok, opts.target, opts.delta)
    calibrator.target, calibrator.delta = opts.target, opts.delta
    calibrator.threshold = chosen["threshold"] if chosen else None
    calibrator.seed_report = {
        "seed_rows": len(rows.keep), "method": method, "cv_log_loss": losses,
        "accuracy_raw": float(rows.correct.mean()), "accuracy_calibrated_cv": float(oof_ok.mean()),
        "ece_raw": cal_mod.expected_calibration_error(rows.correct, rows.raw)[0], "ece_calibrated_cv": cal_mod.expected_calibration_error(oof_ok, oof_conf)[0],
        "threshold": chosen, "threshold_without_bound": cal_mod.threshold_point(t_conf, t_ok, opts.target), "threshold_chosen_on": threshold_on,
    }
    if opts.out is not None:
        calibrator.save(opts.out)
    return calibrator


@dataclass
class _SeedRows:
    """The seed rows with a gold label, as the model labeled them: confidence, distribution, signals, right or wrong."""

    task: Any
    names: list[str]
    keep: list[int]
    gold: list[Any]
    raw: np.ndarray
    correct: np.ndarray
    fit: np.ndarray  # rows with a label and a confidence: the ones a calibration is fitted on
    probs: np.ndarray | None
    gold_idx: np.ndarray | None
    signals: list[Any]

    @classmethod
    def read(cls, cfg: Config, result: RunResult, project: str | Path, seed: Any) -> _SeedRows:
        from labelmill.tasks import make_task

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
        probs = gold_idx = None
        if bool(names) and bool(table.has_distribution[keep].all()) and all(g in names for g in gold):
            probs, gold_idx = table.probs[keep], np.array([names.index(g) for g in gold])
        return cls(task, names, keep, gold, raw, np.array([task.is_correct(g, p) for g, p in zip(gold, predicted)], dtype=bool),
                   np.array([p is not None and not np.isnan(c) for p, c in zip(predicted, raw)]), probs, gold_idx, [table.signals[i] for i in keep])

    def sub(self, values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else values[self.fit]

    def out_of_fold(self, method: str) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated confidences and right-or-wrong of each seed row from a fit on the other four fifths."""
        from labelmill.numeric import calibration as cal_mod

        probs, gold_idx, raw, correct, signals = self.probs, self.gold_idx, self.raw, self.correct, self.signals
        oof_conf, oof_ok = np.full(len(self.keep), np.nan), correct.copy()
        idx = np.flatnonzero(self.fit)
        order = np.random.default_rng(0).permutation(len(idx))
        for f in range(5):
            test = idx[order[f::5]]
            train = np.setdiff1d(idx, test)
            part = cal_mod.fit(method, None if probs is None else probs[train], None if gold_idx is None else gold_idx[train], raw[train], correct[train],
                               self.names, [signals[i] for i in train])
            pred, conf = part.apply(None if probs is None else probs[test], raw[test], [signals[i] for i in test])
            oof_conf[test] = conf
            if pred is not None:
                oof_ok[test] = pred == gold_idx[test]
        return oof_conf, oof_ok


def _choose_method(rows: _SeedRows, method: str, on_event: EventHandler) -> tuple[str, dict[str, float]]:
    """The calibration method, checked against what the seed rows carry; auto: the lowest cross-validated log loss."""
    from labelmill.numeric import calibration as cal_mod

    if method not in ("auto", "fused", *cal_mod.METHODS):
        raise ConfigError(f"unknown calibration method {method!r}", fix=f"use auto, fused or one of: {', '.join(cal_mod.METHODS)}")
    if method in ("temperature", "bias", "bias_platt") and rows.probs is None:
        raise ConfigError(f"{method} calibration needs a label distribution for every seed row (a scored closed label set)", fix="use --method isotonic, or model.method: score")
    thin = [n for n in rows.names if sum(g == n for g in rows.gold) < 3] if rows.probs is not None else []
    if thin and method.startswith("bias"):
        raise ConfigError(f"bias calibration needs seed rows of every label; {thin[0]!r} has fewer than 3", fix="draw the seed rows at random from all labels, or use --method temperature")
    if method != "auto":
        return method, {}
    chosen, losses = cal_mod.choose(rows.sub(rows.probs), rows.sub(rows.gold_idx), rows.raw[rows.fit], rows.correct[rows.fit], rows.names, allow_bias=not thin)
    if thin:
        on_event(Notice(f"calibrate: no bias calibration, since label {thin[0]!r} has fewer than 3 seed rows (is the seed a random sample?)"))
    return chosen, losses


def _threshold_rows(cfg: Config, data: Any, calibrator: Calibrator, task: Any, project: str | Path, backend: Backend | None,
                    on_event: EventHandler) -> tuple[np.ndarray, np.ndarray]:
    """The calibrated confidences of other labeled rows, and whether each label is right: where the threshold is chosen."""
    import pandas as pd

    held = label_rows(cfg, data, project=project, backend=backend, on_event=on_event, calibrator=calibrator)
    held_gold = [task.gold(r) for r in held.frame.to_dict("records")]
    keep_held = [i for i, g in enumerate(held_gold) if g is not None]
    if len(keep_held) < 20:
        raise InputDataError(f"the threshold rows have {len(keep_held)} rows with a gold label; the threshold needs far more", fix="pass a few hundred labeled rows that are not the seed rows")
    values = pd.to_numeric(held.frame[held.columns["confidence"]], errors="coerce").to_numpy(dtype=float)
    ok = np.array([task.is_correct(held_gold[i], held.frame[held.columns["label"]].iloc[i]) for i in keep_held], dtype=bool)
    return values[keep_held], ok
