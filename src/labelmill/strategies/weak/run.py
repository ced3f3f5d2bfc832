"""`labelmill weak`: every sub-labeler votes (prompted ones as runs of their own), the votes form the label
matrix L[n, m], and a label model (Dawid-Skene, majority vote or snorkel's) combines them into a label and a
probability per row. Rows no sub-labeler voted on get no label (typed: `no_votes`).

With seed rows (`weak.seed` or `seed=`: labeled train, dev or seed rows, never the test rows) every
sub-labeler is also run and scored on them, and Dawid-Skene also learns from them (`weak.fit_on_seed`):
their classes are known, which pins each sub-labeler's confusions (semi-supervised). A model sub-labeler with `abstain_below: auto` gets its own
calibration there: per label, the lowest threshold on its probability at which its votes reach
`weak.min_precision` (a small model that answers "yes" to everything then votes only where its "yes" means
something, or not at all). Sub-labelers under the coverage or seed-accuracy floor are flagged, and dropped
before the label model with `select`.

Multi-label tasks get one label model per label: each sub-labeler votes for a label, the zero-shot labeler
also against the labels it leaves out, and the row's labels are those the label models give P >= 0.5.

Output: the input columns, the label model's label and confidence in the usual label columns (so `labelmill
eval` scores them), and `weak_vote_<name>` per sub-labeler (what it voted for, empty for abstain).
With `end_model` (one-label tasks), a student (logistic regression on sentence embeddings) learns the label
model's probabilistic labels (each covered row once per label, weighted by its probability) and labels every
row, the uncovered ones included: `weak_end_label`, `weak_end_confidence`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field

from labelmill.config import Config, derive_config, load_with_notices
from labelmill.strategies.weak.section import SubLabelerSpec
from labelmill.core import Job, Runner, check_columns, labeled_frame
from labelmill.core.strategy import Options
from labelmill.errors import ConfigError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.io import read_rows, write_rows
from labelmill.numeric.weak import ABSTAIN, lf_summary, precision_thresholds, vote_precision
from labelmill.store import Store
from labelmill.strategies.weak.labelmodels import combine, learned_accuracy
from labelmill.strategies.weak.sublabelers import (
    MODEL_KINDS, check_sub_labeler, column_votes, load_function, model_scores, model_votes, one_label, prompt_config,
    python_votes, rule_votes,
)
from labelmill.tasks import make_task

VOTE_PREFIX = "weak_vote_"
WEAK_TASKS = ("classification", "relation", "temporal", "multilabel")
MARKED_PAIR_TASKS = ("relation", "temporal")  # a sub-labeler reads their rows as the task shows them (the marked pair)


@dataclass
class WeakResult:
    frame: Any
    L: np.ndarray  # (n, m) label indices, -1 = abstain; multi-label: (n, m, k) with 1 for, 0 against, -1 no vote
    sub_labelers: list[str]
    probs: np.ndarray  # (n, k) the label model's probabilities (multi-label: P(label present))
    summary: list[dict[str, Any]]  # per sub-labeler: polarity, coverage, overlaps, conflicts, seed figures, flags, learned accuracy
    columns: dict[str, str]
    run_ids: dict[str, int] = field(default_factory=dict)  # model sub-labeler -> its run in the store
    output_path: Path | None = None
    seed_run_ids: dict[str, int] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)  # the sub-labelers the label model combined


@dataclass
class _Rows:
    """One set of rows a sub-labeler votes on (the input, or the seed rows)."""

    full: pd.DataFrame  # what a model run reads (the whole input: a --limit run resumes into the full one)
    n: int  # how many of them are labeled
    limit: int | None
    texts: list[str]
    records: list[dict]
    sub_rows: pd.DataFrame  # the rows as a prompted sub-labeler reads them


class WeakOptions(Options):
    """weak's knobs. `label_model`: overrides the config's (dawid_skene, majority, snorkel). `end_model`: also
    train a student on the label model's labels. `seed`: labeled seed rows (overrides weak.seed). `select`:
    drop the flagged sub-labelers (None: the config's weak.select)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    limit: int | None = Field(None, ge=1)
    label_model: str | None = None
    end_model: bool = False
    seed: Any = None
    select: bool | None = None


def weak(
    config: str | Path | dict | Config, data: Any, options: WeakOptions | dict | None = None, *, project: str | Path = "labelmill.db",
    output: str | Path | None = None, backend: Any = None, on_event: EventHandler = ignore, **knobs: Any,
) -> WeakResult:
    """Label `data` by weak supervision with the config's `weak` section (see the module docstring; the knobs
    are `WeakOptions`', as `options` or as keywords)."""
    opts = WeakOptions.of(options, knobs)
    cfg = load_with_notices(config, on_event)
    _check_weak(cfg, opts)
    task = make_task(cfg)
    shown = cfg.task in MARKED_PAIR_TASKS
    main = _rows(cfg, task, read_rows(data, cfg.dataset), opts.limit, shown)
    seed_rows, seed_hits = _seed_input(cfg, task, opts, shown, on_event)
    with Store(project) as store:
        got = _all_votes(cfg, main, seed_rows, seed_hits, store, backend, on_event, shown)
        summary, keep = _summarise(cfg, task, main, got, seed_hits, opts)
        how = opts.label_model or cfg.weak.label_model
        L, probs, covered = _label_model(cfg, got, keep, seed_rows, seed_hits, how, summary)
        end = _end_model(main.texts[: main.n], L[:, keep], probs, cfg.examples.embedding_model, store) if opts.end_model else None
    subs = cfg.weak.sub_labelers
    out, cols = _output(cfg, main.full.head(main.n), got.votes, probs, covered, [s.name for s in subs], cfg.label_names, end)
    path = write_rows(out, output) if output else None
    if path is not None:
        side = {"label_model": how, "kept": [subs[j].name for j in keep], "sub_labelers": summary}
        weak_sidecar(path).write_text(json.dumps(side, indent=1, default=plain_json), encoding="utf-8")
    return WeakResult(out, L, [s.name for s in subs], probs, summary, cols, got.run_ids, path, got.seed_run_ids, [subs[j].name for j in keep])


def _check_weak(cfg: Config, opts: WeakOptions) -> None:
    """The task, the sub-labelers and the options fit together."""
    subs = cfg.weak.sub_labelers
    if cfg.task not in WEAK_TASKS:
        raise ConfigError(f"weak supervision works on {', '.join(WEAK_TASKS)} tasks for now; this config is {cfg.task!r}", fix="use a classification, relation, temporal or multilabel config")
    if not subs:
        raise ConfigError("the config's weak section lists no sub-labelers", fix="add weak.sub_labelers (see examples/weak/)")
    multi = cfg.task == "multilabel"
    for spec in subs:
        check_sub_labeler(spec, cfg.label_names)
        if multi and spec.kind == "zero_shot" and spec.abstain_below == "auto":
            raise ConfigError(f"weak.sub_labelers[{spec.name}]: abstain_below: auto is for one-label answers", fix="give a number")
    if opts.end_model and multi:
        raise ConfigError("the end model learns one label per row; this config is multi-label", fix="drop --end-model")


def _seed_input(cfg: Config, task: Any, opts: WeakOptions, shown: bool, on_event: EventHandler) -> tuple[Any, np.ndarray | None]:
    """The labeled seed rows (the option, else weak.seed) and their labels as hits (n, k), or (None, None)."""
    spec_w = cfg.weak
    seed_path = opts.seed if opts.seed is not None else (cfg.base_dir / spec_w.seed if spec_w.seed else None)
    seeded = _seed_rows(cfg, task, seed_path, shown) if seed_path is not None else None
    if seeded is None and any(s.abstain_below == "auto" for s in spec_w.sub_labelers):
        raise ConfigError("abstain_below: auto chooses thresholds on labeled seed rows, and none were given", fix="set weak.seed: (a train, dev or seed file) or pass --seed")
    seed_rows, seed_hits = seeded if seeded is not None else (None, None)
    if seed_hits is not None and not seed_hits.any(axis=0).all():
        missing = [n for n, seen in zip(cfg.label_names, seed_hits.any(axis=0)) if not seen]
        on_event(Notice(f"weak: no seed row has the label {', '.join(missing[:5])}: an auto threshold for it never fires"))
    return seed_rows, seed_hits


@dataclass
class _Votes:
    """Every sub-labeler's votes V[n, k] on the rows and on the seed rows (None where it cannot vote there)."""

    votes: list[np.ndarray] = field(default_factory=list)
    seed_votes: list[np.ndarray | None] = field(default_factory=list)
    run_ids: dict[str, int] = field(default_factory=dict)
    seed_run_ids: dict[str, int] = field(default_factory=dict)
    thresholds: dict[str, np.ndarray] = field(default_factory=dict)


def _all_votes(cfg: Config, main: Any, seed_rows: Any, seed_hits: np.ndarray | None, store: Store, backend: Any, on_event: EventHandler, shown: bool) -> _Votes:
    """Each sub-labeler votes: a model one as a run of its own (on the seed rows too, where its auto
    thresholds are set), a rule, function or column directly."""
    names, multi, spec_w = cfg.label_names, cfg.task == "multilabel", cfg.weak
    base = derive_config(cfg, weak={"sub_labelers": []})
    separator = cfg.label_separator if multi else None
    got = _Votes()
    for spec in spec_w.sub_labelers:
        if spec.kind not in MODEL_KINDS:
            got.votes.append(_plain_votes(spec, cfg, main, names, separator))
            got.seed_votes.append(None if seed_rows is None or not _seedable(spec, seed_rows) else _plain_votes(spec, cfg, seed_rows, names, separator))
            continue
        sub_cfg = base if spec.kind == "zero_shot" else prompt_config(base, spec, input_template="{text}" if shown else None)
        on_event(Notice(f"weak: sub-labeler {spec.name} ({spec.kind}) on {main.n} rows"))
        table, got.run_ids[spec.name] = _model_run(sub_cfg, spec, main, store, backend, on_event)
        seed_table = None
        if seed_rows is not None:
            on_event(Notice(f"weak: sub-labeler {spec.name} on {seed_rows.n} seed rows"))
            seed_table, got.seed_run_ids[spec.name] = _model_run(sub_cfg, spec, seed_rows, store, backend, on_event)
        limits = None
        if spec.abstain_below == "auto":
            _, scores = model_scores(seed_table, spec, names)  # type: ignore[arg-type]
            can = np.array([n in spec.answers.values() for n in names]) if spec.kind == "prompt" else None
            limits = precision_thresholds(scores, seed_hits, spec_w.min_precision, can_vote=can)
            got.thresholds[spec.name] = limits
        got.votes.append(model_votes(table, spec, names, limits, multi))
        got.seed_votes.append(None if seed_table is None else model_votes(seed_table, spec, names, limits, multi))
    return got


def _summarise(cfg: Config, task: Any, main: Any, got: _Votes, seed_hits: np.ndarray | None, opts: WeakOptions) -> tuple[list[dict[str, Any]], list[int]]:
    """The sub-labeler table (coverage, overlaps, conflicts, seed figures, thresholds, flags) and the ones kept."""
    spec_w, names = cfg.weak, cfg.label_names
    subs = spec_w.sub_labelers
    summary = _summary(cfg, task, subs, main, got.votes, names, cfg.task == "multilabel")
    for row, spec, V in zip(summary, subs, got.seed_votes):
        if V is not None:
            row["seed_rows"] = len(V)
            row["seed_coverage"], row["seed_accuracy"] = vote_precision(V, seed_hits)
        if spec.name in got.thresholds:
            row["thresholds"] = {n: (None if np.isnan(t) else round(float(t), 4)) for n, t in zip(names, got.thresholds[spec.name])}
        row["flags"] = _flags(row, spec_w.min_coverage, spec_w.min_accuracy)
    drop = spec_w.select if opts.select is None else opts.select
    keep = [j for j, row in enumerate(summary) if not (drop and row["flags"])]
    if not keep:
        raise ConfigError("--select dropped every sub-labeler (each is under the coverage or accuracy floor)", fix="lower weak.min_coverage / weak.min_accuracy, or fix the sub-labelers")
    for j, row in enumerate(summary):
        row["kept"] = j in keep
    return summary, keep


def _label_model(cfg: Config, got: _Votes, keep: list[int], seed_rows: Any, seed_hits: np.ndarray | None, how: str,
                 summary: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L (the votes as one matrix), the label model's probabilities over the kept sub-labelers (Dawid-Skene
    anchored on the seed rows when weak.fit_on_seed), and which rows any kept sub-labeler voted on."""
    names, seed_votes = cfg.label_names, got.seed_votes
    anchored = how == "dawid_skene" and seed_rows is not None and cfg.weak.fit_on_seed
    known = np.array([seed_votes[j] is not None for j in keep])
    seed_V = [seed_votes[j] if seed_votes[j] is not None else np.full((seed_rows.n, len(names)), ABSTAIN) for j in keep] if anchored else []  # type: ignore[union-attr]
    if cfg.task == "multilabel":
        L = np.stack(got.votes, axis=1)  # (n, m, k)
        anchors = (np.stack(seed_V, axis=1), seed_hits, known) if anchored else None
        return L, _multilabel_probs(L[:, keep, :], len(names), how, anchors), (L[:, keep, :] != ABSTAIN).any(axis=(1, 2))
    L = np.stack([one_label(V) for V in got.votes], axis=1)
    anchors = None
    if anchored:
        gold_ids = seed_hits.argmax(axis=1)  # type: ignore[union-attr]
        labeled = seed_hits.any(axis=1)  # type: ignore[union-attr]
        anchors = (np.stack([one_label(V) for V in seed_V], axis=1)[labeled], gold_ids[labeled], known)
    probs = combine(L[:, keep], len(names), how, anchors=anchors)
    for j, value in zip(keep, learned_accuracy(L[:, keep], probs)):
        summary[j]["learned_accuracy"] = value
    return L, probs, (L[:, keep] != ABSTAIN).any(axis=1)


def weak_sidecar(output: str | Path) -> Path:
    """Where `labelmill weak` keeps what the vote columns cannot hold (seed figures, thresholds, flags)."""
    return Path(str(output) + ".weak.json")


def plain_json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _rows(cfg: Config, task: Any, full: pd.DataFrame, limit: int | None, shown: bool) -> _Rows:
    check_columns(cfg, task, full)
    n = min(limit, len(full)) if limit is not None else len(full)
    records = full.to_dict("records")
    texts = [task.render(r) for r in records]
    sub_rows = pd.DataFrame({"text": texts}) if shown else full
    return _Rows(full, n, limit, texts, records, sub_rows)


def _seed_rows(cfg: Config, task: Any, path: Any, shown: bool) -> tuple[_Rows, np.ndarray]:
    """The seed rows and their gold as hits (n, k): True where label l is (one of) the row's gold."""
    frame = read_rows(path, cfg.dataset)
    if len(frame) > cfg.weak.seed_rows:  # a sample, not the first rows: seed files are often sorted by label
        frame = frame.sample(n=cfg.weak.seed_rows, random_state=cfg.model.seed).sort_index()
    if not cfg.gold_column or cfg.gold_column not in frame.columns:
        raise ConfigError(f"the seed rows ({path}) have no gold column {cfg.gold_column!r}", fix="seed rows are labeled rows: set gold_column and give a file that has it")
    rows = _rows(cfg, task, frame.reset_index(drop=True), None, shown)
    names = cfg.label_names
    gold = [task.gold(r) for r in rows.records]
    hits = np.array([[g is not None and (n == g if isinstance(g, str) else n in g) for n in names] for g in gold], dtype=bool)
    return rows, hits


def _model_run(sub_cfg: Config, spec: SubLabelerSpec, rows: _Rows, store: Store, backend: Any, on_event: EventHandler) -> tuple[Any, int]:
    job = Job(sub_cfg, backend)
    try:
        result = Runner(job, store, on_event).run(rows.full if spec.kind == "zero_shot" else rows.sub_rows, limit=rows.limit)
    finally:
        if backend is None:
            job.backend.close()
    return store.labels(result.run_id, rows.n, sub_cfg.label_names), result.run_id


def _seedable(spec: SubLabelerSpec, rows: _Rows) -> bool:
    """A column sub-labeler reads seed rows only when they have its column (not from another file)."""
    return spec.kind != "column" or (spec.file is None and spec.column in rows.full.columns)


def _plain_votes(spec: SubLabelerSpec, cfg: Config, rows: _Rows, names: list[str], separator: str | None) -> np.ndarray:
    """V[n, k] of a sub-labeler that needs no model: a rule, a Python function, a column of labels."""
    if spec.kind in ("keywords", "regex"):
        return rule_votes(spec, rows.texts[: rows.n], names)
    if spec.kind == "python":
        return python_votes(spec, load_function(spec, cfg.base_dir), rows.records[: rows.n], names, separator is not None)
    if spec.file is not None:
        other = read_rows(cfg.base_dir / spec.file)
        if len(other) != len(rows.full):
            raise ConfigError(f"weak.sub_labelers[{spec.name}]: {spec.file} has {len(other)} rows and the input {len(rows.full)}",
                              fix="the labels file must hold the same rows in the same order (e.g. the output of labelmill freeal on this input)")
        source = other
    else:
        source = rows.full
    if spec.column not in source.columns:
        raise ConfigError(f"weak.sub_labelers[{spec.name}]: no column {spec.column!r} in {spec.file or 'the input'}", fix=f"columns there: {', '.join(map(str, source.columns))}")
    return column_votes(spec, source[spec.column].head(rows.n).tolist(), names, separator)


def _summary(cfg: Config, task: Any, subs: list[SubLabelerSpec], rows: _Rows, votes: list[np.ndarray], names: list[str], multi: bool) -> list[dict[str, Any]]:
    """The analysis table's rows: lf_summary's figures (one-label tasks; multi-label: coverage and the
    accuracy of the votes), with the empirical accuracy on the input's gold labels where it has them."""
    has_gold = bool(cfg.gold_column) and cfg.gold_column in rows.full.columns
    gold = [task.gold(r) for r in rows.records[: rows.n]] if has_gold else None
    if not multi:
        ids = None if gold is None else np.array([names.index(g) if g in names else ABSTAIN for g in gold])
        L = np.stack([one_label(V) for V in votes], axis=1)
        return [{"name": s.name, "kind": s.kind, **row} for s, row in zip(subs, lf_summary(L, len(names), ids))]
    hits = None if gold is None else np.array([[g is not None and n in g for n in names] for g in gold], dtype=bool)
    rows_out = []
    for spec, V in zip(subs, votes):
        coverage, accuracy = vote_precision(V, hits if hits is not None else np.zeros(V.shape, dtype=bool))
        row: dict[str, Any] = {"name": spec.name, "kind": spec.kind, "polarity": sorted(int(i) for i in np.flatnonzero((V == 1).any(axis=0))), "coverage": coverage}
        if hits is not None:
            row["gold_rows"] = int(((V != ABSTAIN).any(axis=1)).sum())
            row["empirical_accuracy"] = accuracy
        rows_out.append(row)
    return rows_out


def _flags(row: dict[str, Any], min_coverage: float, min_accuracy: float) -> list[str]:
    flags = []
    if row["coverage"] < min_coverage:
        flags.append(f"coverage {row['coverage']:.3f} < {min_coverage}")
    if row.get("seed_accuracy") is not None and row["seed_accuracy"] < min_accuracy:
        flags.append(f"seed accuracy {row['seed_accuracy']:.3f} < {min_accuracy}")
    elif row.get("seed_rows") and row.get("seed_accuracy") is None:
        flags.append("no votes on the seed rows")
    return flags


def _multilabel_probs(L: np.ndarray, k: int, how: str, anchors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(n, k) P(label present): one binary label model per label over the sub-labelers that vote on it
    (`anchors`: the seed rows' votes (s, m, k), their gold as hits (s, k), which sub-labelers they have)."""
    probs = np.zeros((L.shape[0], k))
    for label in range(k):
        column = L[:, :, label]
        voters = (column != ABSTAIN).any(axis=0)
        if not voters.any():
            continue
        pinned = None if anchors is None else (anchors[0][:, voters, label], anchors[1][:, label].astype(int), anchors[2][voters])
        probs[:, label] = combine(column[:, voters], 2, how, anchors=pinned)[:, 1]
    return probs


def _end_model(texts: list[str], L: np.ndarray, probs: np.ndarray, embedding_model: str, store: Store) -> np.ndarray:
    """(n, k) a student's probabilities for every row, trained on the covered rows' probabilistic labels."""
    from labelmill.selectors.embeddings import embed
    from labelmill.strategies.students.models import LinearStudent

    n, k = probs.shape
    X = embed(texts, embedding_model, store)
    covered = np.flatnonzero((L != ABSTAIN).any(axis=1))
    if not len(covered):
        raise ConfigError("no sub-labeler voted on any row, so the end model has nothing to learn from", fix="check the sub-labelers on a few rows first")
    rows, labels = np.repeat(covered, k), np.tile(np.arange(k), len(covered))
    weight = probs[covered].ravel()
    keep = weight > 1e-3
    return LinearStudent(k).fit(X[rows[keep]], labels[keep], weight[keep]).predict_proba(X)


def _output(cfg: Config, frame: Any, votes: list[np.ndarray], probs: np.ndarray, covered: np.ndarray, subs: list[str], names: list[str],
            end: np.ndarray | None) -> tuple[Any, dict[str, str]]:
    separator = cfg.label_separator if cfg.task == "multilabel" else None
    extra = {}
    for name, V in zip(subs, votes):
        voted = [[names[i] for i in np.flatnonzero(row == 1)] for row in V]
        extra[f"vote:{name}"] = (VOTE_PREFIX + name, [(separator or "").join(v) if separator else (v[0] if v else "") for v in voted])
    if end is not None:
        extra["end_label"] = ("weak_end_label", [names[i] for i in end.argmax(axis=1)])
        extra["end_confidence"] = ("weak_end_confidence", end.max(axis=1).tolist())
    if separator:
        labels = [separator.join(n for n, q in zip(names, p) if q >= 0.5) if c else None for p, c in zip(probs, covered)]
        confidences = [float(np.prod(np.maximum(p, 1 - p))) if c else None for p, c in zip(probs, covered)]
    else:
        labels = [names[int(p.argmax())] if c else None for p, c in zip(probs, covered)]
        confidences = [float(p.max()) if c else None for p, c in zip(probs, covered)]
    return labeled_frame(frame, cfg, labels, confidences, ["" if c else "no_votes: no sub-labeler voted on this row" for c in covered], extra)
