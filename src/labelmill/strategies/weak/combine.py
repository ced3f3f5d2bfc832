"""`labelmill weak`: every sub-labeler votes (prompted ones as runs of their own), the votes form the label
matrix L[n, m], and a label model (Dawid-Skene or majority vote) combines them into a label and a
probability per row. Rows no sub-labeler voted on get no label (typed: `no_votes`).

Output: the input columns, the label model's label and confidence in the usual label columns (so `labelmill
eval` scores them), and `weak_vote_<name>` per sub-labeler (the label it voted for, empty for abstain).
With `end_model`, a student (logistic regression on sentence embeddings) learns the label model's
probabilistic labels (each covered row once per label, weighted by its probability) and labels every
row, the uncovered ones included: `weak_end_label`, `weak_end_confidence`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labelmill.config import Config, derive_config, load_config
from labelmill.core import Job, Runner, check_columns, labeled_frame
from labelmill.errors import ConfigError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.io import read_rows, write_rows
from labelmill.numeric.weak import ABSTAIN, dawid_skene, lf_summary, majority_vote
from labelmill.store import Store
from labelmill.strategies.weak.sublabelers import check_sub_labeler, model_votes, prompt_config, rule_votes
from labelmill.tasks import make_task

VOTE_PREFIX = "weak_vote_"
WEAK_TASKS = ("classification", "relation")  # one label per row from a closed set


@dataclass
class WeakResult:
    frame: Any
    L: np.ndarray  # (n, m) label indices, -1 = abstain
    sub_labelers: list[str]
    probs: np.ndarray  # (n, k) the label model's probabilities
    summary: list[dict[str, Any]]  # per sub-labeler: polarity, coverage, overlaps, conflicts (+ accuracy with gold)
    columns: dict[str, str]
    run_ids: dict[str, int] = field(default_factory=dict)  # prompted sub-labeler -> its run in the store
    output_path: Path | None = None


def weak(
    config: str | Path | dict | Config, data: Any, *, project: str | Path = "labelmill.db", output: str | Path | None = None,
    limit: int | None = None, backend: Any = None, label_model: str | None = None, end_model: bool = False, on_event: EventHandler = ignore,
) -> WeakResult:
    """Label `data` by weak supervision with the config's `weak` section (see the module docstring)."""
    cfg = load_config(config) if not isinstance(config, Config) else config
    subs = cfg.weak.sub_labelers
    if cfg.task not in WEAK_TASKS:
        raise ConfigError(f"weak supervision works on {' and '.join(WEAK_TASKS)} tasks for now; this config is {cfg.task!r}", fix="use a classification or relation config")
    if not subs:
        raise ConfigError("the config's weak section lists no sub-labelers", fix="add weak.sub_labelers (see examples/weak/)")
    names = cfg.label_names
    for spec in subs:
        check_sub_labeler(spec, names)
    task = make_task(cfg)
    full = read_rows(data, cfg.dataset)
    check_columns(cfg, task, full)
    frame = full.head(limit) if limit is not None else full
    texts = [task.render(r) for r in frame.to_dict("records")]
    base = derive_config(cfg, weak={"sub_labelers": []})
    # a prompted sub-labeler is a classification config of its own: where the task shows rows its own way
    # (relation: the marked pair), it reads the rows as the task shows them
    shown = cfg.task != "classification"
    sub_rows = pd.DataFrame({"text": [task.render(r) for r in full.to_dict("records")]}) if shown else full
    columns, run_ids = [], {}
    with Store(project) as store:
        for spec in subs:
            if spec.kind in ("keywords", "regex"):
                columns.append(rule_votes(spec, texts, names))
                continue
            sub_cfg = base if spec.kind == "zero_shot" else prompt_config(base, spec, input_template="{text}" if shown else None)
            on_event(Notice(f"weak: sub-labeler {spec.name} ({spec.kind}) on {len(frame)} rows"))
            job = Job(sub_cfg, backend)
            try:  # the whole input and the limit, as `labelmill run` does: a run with --limit resumes into the full one
                result = Runner(job, store, on_event).run(full if sub_cfg is base else sub_rows, limit=limit)
            finally:
                if backend is None:
                    job.backend.close()
            run_ids[spec.name] = result.run_id
            columns.append(model_votes(store.labels(result.run_id, len(frame), sub_cfg.label_names), spec, names))
        L = np.stack(columns, axis=1)
        how = label_model or cfg.weak.label_model
        probs = dawid_skene(L, len(names))[0] if how == "dawid_skene" else majority_vote(L, len(names))
        end = _end_model(texts, L, probs, cfg.examples.embedding_model, store) if end_model else None
    gold = _gold_ids(cfg, task, frame, names)
    summary = [{"name": s.name, "kind": s.kind, **row} for s, row in zip(subs, lf_summary(L, len(names), gold))]
    out, cols = _output(cfg, frame, L, probs, [s.name for s in subs], names, end)
    path = write_rows(out, output) if output else None
    return WeakResult(out, L, [s.name for s in subs], probs, summary, cols, run_ids, path)


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


def _gold_ids(cfg: Config, task: Any, frame: Any, names: list[str]) -> np.ndarray | None:
    if not cfg.gold_column or cfg.gold_column not in frame.columns:
        return None
    return np.array([names.index(g) if (g := task.gold(r)) in names else ABSTAIN for r in frame.to_dict("records")])


def _output(cfg: Config, frame: Any, L: np.ndarray, probs: np.ndarray, subs: list[str], names: list[str],
            end: np.ndarray | None) -> tuple[Any, dict[str, str]]:
    covered = (L != ABSTAIN).any(axis=1)
    extra = {f"vote:{name}": (VOTE_PREFIX + name, [names[v] if v != ABSTAIN else "" for v in L[:, j]]) for j, name in enumerate(subs)}
    if end is not None:
        extra["end_label"] = ("weak_end_label", [names[i] for i in end.argmax(axis=1)])
        extra["end_confidence"] = ("weak_end_confidence", end.max(axis=1).tolist())
    out, cols = labeled_frame(
        frame, cfg, [names[int(p.argmax())] if c else None for p, c in zip(probs, covered)], [float(p.max()) if c else None for p, c in zip(probs, covered)],
        ["" if c else "no_votes: no sub-labeler voted on this row" for c in covered], extra,
    )
    return out, cols
