"""FreeAL (Xiao et al., EMNLP 2023): the LLM and a small student improve each other, with no human label.

Round 0: the LLM labels every row (the config's prompt: zero-shot, or its own examples; with
`generate_demos` and no examples, demos the LLM writes itself, a few per label, as FreeAL does). Then each round:
  1. a student (logistic regression on sentence embeddings) learns the current labels; every row gets an
     out-of-fold probability, and its loss is -log p(current label);
  2. small-loss selection: a two-component Gaussian mixture over the losses; rows whose posterior of the
     low-loss component is high are "clean";
  3. per label, the most confident clean rows are clustered (k-means on the embeddings) and the cluster
     medoids become the demo pool;
  4. the rows that are not clean are relabeled by the LLM with demos retrieved from the pool (the nearest
     examples of each label, per row), and the student learns again.
Each round is a run in the store (its prompts, model and answers are the provenance of the labels it
gave), and its figures (labels changed, agreement of the LLM with the student, clean share; accuracy when
a gold column exists, for the report only) are saved in the `freeal_rounds` table.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from labelmill.config import Config, derive_config, load_with_notices
from labelmill.core.strategy import Options
from labelmill.errors import ConfigError, InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.core.output import labeled_frame
from labelmill.io import content_hash, read_rows, write_rows

POOL_COLUMN = "__freeal_label"  # the LLM's label of a demo row: never the gold column


# small-loss selection ------------------------------------------------------------------------------
def clean_posterior(losses: np.ndarray, iterations: int = 100) -> np.ndarray:
    """Posterior of the low-mean component of a two-component 1-D Gaussian mixture fitted to `losses`
    (scikit-learn's EM, started at the quartiles), made non-increasing in the loss."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    x = np.asarray(losses, dtype=float)
    if len(x) < 4 or np.ptp(x) < 1e-9:
        return np.ones(len(x))
    lo, hi = np.quantile(x, 0.25), np.quantile(x, 0.75)
    var = max(x.var(), 1e-6)
    mixture = GaussianMixture(2, covariance_type="spherical", reg_covar=1e-6, max_iter=iterations, tol=1e-9,
                              means_init=[[lo], [hi]], weights_init=[0.5, 0.5], precisions_init=[1 / var, 1 / var])
    with warnings.catch_warnings():  # at most `iterations` EM steps, as before: not converging further is no news
        warnings.simplefilter("ignore", ConvergenceWarning)
        mixture.fit(x[:, None])
    post = mixture.predict_proba(x[:, None])[:, int(np.argmin(mixture.means_[:, 0]))]
    # a Gaussian's tail can make very small losses "noisy" when the noisy component is wide: keep it monotone
    order = np.argsort(x, kind="stable")
    post[order] = np.minimum.accumulate(post[order])
    return post

def clean_posterior_by_label(losses: np.ndarray, labels: np.ndarray, min_rows: int = 20) -> np.ndarray:
    """`clean_posterior` within each label's rows (losses are on different scales per label: a label the
    student finds hard would otherwise be "noisy" as a whole); labels with few rows use the global fit."""
    post = clean_posterior(losses)
    for label in np.unique(labels):
        rows = labels == label
        if rows.sum() >= min_rows:
            post[rows] = clean_posterior(losses[rows])
    return post


def demo_pool(X: np.ndarray, labels: np.ndarray, clean: np.ndarray, loss: np.ndarray, n_labels: int, per_label: int = 20, top_share: float = 0.5, seed: int = 0) -> list[int]:
    """Row indices of the demo pool: per label, the `top_share` lowest-loss clean rows clustered into
    `per_label` k-means clusters, and each cluster's medoid (the row nearest its centre)."""
    from sklearn.cluster import KMeans

    chosen: list[int] = []
    for label in range(n_labels):
        rows = np.flatnonzero(clean & (labels == label))
        if len(rows) == 0:
            continue
        rows = rows[np.argsort(loss[rows], kind="stable")][: max(per_label, math.ceil(len(rows) * top_share))]
        if len(rows) <= per_label:
            chosen += rows.tolist()
            continue
        km = KMeans(n_clusters=per_label, n_init=3, random_state=seed).fit(X[rows])
        for c in range(per_label):
            members = rows[km.labels_ == c]
            if len(members):
                centre = km.cluster_centers_[c]
                chosen.append(int(members[np.argmin(((X[members] - centre) ** 2).sum(axis=1))]))
    return chosen


def _relabel_groups(X: np.ndarray, rows: np.ndarray, pool: np.ndarray, labels: np.ndarray, per_label: int, max_demos: int, group_rows: int, seed: int = 0):
    """Split the rows to relabel into k-means groups of about `group_rows` rows; each group gets the pool's
    examples nearest its centre, `per_label` of each label (at most `max_demos`, the nearest labels first),
    so the rows of a group share one prompt prefix that the model evaluates once.

    Yields (rows, demo rows): demos interleaved over the labels, the nearest last (next to the row)."""
    from sklearn.cluster import KMeans

    n_groups = max(1, min(len(rows), -(-len(rows) // max(1, group_rows))))
    if n_groups == 1:
        assign = np.zeros(len(rows), dtype=int)
    else:
        assign = KMeans(n_clusters=n_groups, n_init=3, random_state=seed).fit(X[rows]).labels_
    for g in range(n_groups):
        members = rows[assign == g]
        if len(members) == 0:
            continue
        centre = X[members].mean(axis=0)
        sims = X[pool] @ centre
        ranked: dict[int, list[int]] = {}
        for j in np.argsort(-sims, kind="stable"):
            ranked.setdefault(int(labels[pool[j]]), []).append(int(pool[j]))
        # rounds of one example per label, the labels nearest the centre first; then cut to max_demos
        picked: list[int] = []
        for depth in range(per_label):
            picked += [items[depth] for items in ranked.values() if len(items) > depth]
        picked = picked[:max_demos]
        yield members, list(reversed(picked))


DEBIAS_WARN_SHARE = 0.2  # batch calibration changing more of the first-pass labels than this gets a notice


def batch_calibrate(probs: np.ndarray) -> np.ndarray:
    """Remove the prompt's label bias without gold labels (batch calibration, Zhou et al. 2024): divide each
    row's label distribution by the mean distribution over all rows, and renormalise."""
    prior = np.maximum(probs.mean(axis=0), 1e-9)
    out = probs / prior
    return out / out.sum(axis=1, keepdims=True)


# the loop ------------------------------------------------------------------------------------------------
@dataclass
class RoundStats:
    round: int
    run_ids: list[int]  # the runs that labeled this round's rows (their annotations hold the provenance)
    relabeled: int
    changed: int
    clean_share: float
    pool_size: int
    agreement: float  # the LLM's current labels vs the student's out-of-fold predictions
    seconds: float
    accuracy: float | None = None  # against the gold column, when the input has one (reporting only)
    student_accuracy: float | None = None
    clean_accuracy: float | None = None
    batch_calibrated: bool = False  # round 0: its labels are the LLM's distributions after batch calibration


@dataclass
class FreeALResult:
    frame: Any
    rounds: list[RoundStats]
    columns: dict[str, str]
    output_path: Path | None
    label_issues: list[int] = field(default_factory=list)  # row indices, most suspect first
    wall_s: float = 0.0
    freeal_id: int = 0  # its row in the store's freeal_runs table
    llm_probs: Any = None  # (rows, labels): the label distribution behind each row's current LLM label
    student_oof: Any = None  # (labeled rows, labels): the final student's out-of-fold probabilities

    def report(self) -> dict[str, Any]:
        return {"rounds": [asdict(r) for r in self.rounds], "label_issues": self.label_issues[:50], "wall_s": round(self.wall_s, 1)}


def _pool_config(base: Config, items: list[dict[str, Any]]) -> Config:
    """The config with these demos, in this order, for every row (a shared prompt prefix)."""
    return derive_config(base, examples={"items": items, "file": None, "label_column": POOL_COLUMN, "k": len(items), "selection": "fixed"})


GENERATE_SYSTEM = "You write realistic example inputs for a labeling task."
_REFUSAL = re.compile(r"\b(as an ai|language model|i'?m sorry|i am sorry|i cannot|i can'?t|i don'?t have)\b", re.IGNORECASE)


def generated_demos(cfg: Config, job: Any, store: Any, per_label: int) -> list[dict[str, Any]]:
    """Demos the LLM writes itself: `per_label` short texts for each label (sampled, cached like answers),
    in label round-robin order, as examples with the label in POOL_COLUMN."""
    from labelmill.core.reasoning import Call
    from labelmill.core import Runner
    from labelmill.template import template_fields
    from labelmill.types import Prompt

    fields = template_fields(cfg.input_template or "{text}")
    if len(fields) != 1:
        raise ConfigError(
            f"generated demos need an input_template with one column; this one has {len(fields)}: {', '.join(fields)}",
            fix="give the config examples (examples.file) instead of --generate-demos",
        )
    names = cfg.label_names
    guidelines = cfg.guidelines.replace("{labels}", ", ".join(names)).strip() or f"Label each text as one of: {', '.join(names)}."
    prompts, labels = [], []
    for j in range(per_label):  # round-robin: the last demos are not all one label
        for spec in cfg.labels:
            what = f'"{spec.name}"' + (f" ({spec.description})" if spec.description else "")
            prompts.append(Prompt(GENERATE_SYSTEM, (), f"Task: {guidelines}\n\nWrite example {j + 1}: one or two sentences of a realistic input whose label is {what}. Reply with the input text only."))
            labels.append(spec.name)
    call = Call("generate_demo", "generate", max_tokens=64, temperature=0.8, seed=cfg.model.seed)
    answers, new = Runner(job, store).answers(prompts, call)
    store.cache_put(new)
    items = []
    for answer, label in zip(answers, labels):
        text = str(answer.get("text") or "").strip().split("\n\n")[0].strip().strip('"').strip()
        if text and not answer.get("error") and not _REFUSAL.search(text):  # a refusal is no example
            items.append({fields[0]: text, POOL_COLUMN: label})
    if len({i[POOL_COLUMN] for i in items}) < len(names):
        raise InputDataError("the LLM wrote no usable example for some label", fix="give the config examples (examples.file), or try another model")
    return items


class FreealOptions(Options):
    """FreeAL's knobs. `rounds`: relabeling rounds after the LLM's first pass. `debias`: batch-calibrate the
    first pass (None: on for three labels or more, off for two, where one label is often rare). `relabel`:
    "noisy" (the rows small-loss selection did not keep) or "all". `student`: the final student, "linear"
    (logistic regression on embeddings, seconds) or "finetune" (the encoder fine-tuned on the final labels
    for `finetune_epochs`, minutes on CPU). `generate_demos` (per label): when the config has no examples,
    round 0 uses demos the LLM writes itself."""

    rounds: int = Field(2, ge=0)
    limit: int | None = Field(None, ge=1)
    demos_per_label: int = Field(4, ge=1)
    max_demos: int = Field(8, ge=1)
    group_rows: int = Field(64, ge=1)
    pool_per_label: int = Field(20, ge=1)
    clean_threshold: float = Field(0.5, ge=0.0, le=1.0)
    relabel: Literal["noisy", "all"] = "noisy"
    student: Literal["linear", "finetune"] = "linear"
    finetune_epochs: int = Field(2, ge=1)
    debias: bool | None = None
    generate_demos: int = Field(0, ge=0)


def freeal(
    config: str | Path | dict | Config, data: Any, options: FreealOptions | dict | None = None, *, project: str | Path = "labelmill.db",
    output: str | Path | None = None, backend: Any = None, on_event: EventHandler = ignore, **knobs: Any,
) -> FreeALResult:
    """Run the FreeAL loop on a classification config: `rounds` relabeling rounds after the LLM's first pass
    (the knobs are `FreealOptions`', as `options` or as keywords).

    No gold label is used to choose anything; when the input has the config's gold column, each round's
    accuracy is computed for the report.
    """
    from labelmill.core import Job
    from labelmill.store.db import Store

    opts = FreealOptions.of(options, knobs)
    started = time.perf_counter()
    cfg = load_with_notices(config, on_event)
    frame = _prepare(cfg, data, opts)
    job = Job(cfg, backend)
    job.check_columns(frame)
    try:
        with Store(project) as store:
            loop = _Loop.start(cfg, opts, job, store, frame, on_event)
            loop.first_pass()
            for r in range(1, opts.rounds + 1):
                if not loop.relabel_round(r):
                    break
            student_probs, issue_rows = loop.final_student()
            freeal_id = _save(store, cfg, frame, opts.rounds, loop.stats, issue_rows)
    finally:
        if backend is None:
            job.backend.close()
    return loop.result(student_probs, issue_rows, output, freeal_id, time.perf_counter() - started)


def _prepare(cfg: Config, data: Any, opts: FreealOptions) -> Any:
    """The rows to label, checked: a classification config and at least 20 rows."""
    if cfg.task != "classification":
        raise ConfigError(f"freeal works on classification tasks; this config is {cfg.task!r}", fix="use a classification config (task: classification)")
    frame = read_rows(data, cfg.dataset)
    if opts.limit is not None:
        frame = frame.head(opts.limit)
    if len(frame) < 20:
        raise InputDataError(f"freeal needs at least 20 rows to learn from; got {len(frame)}", fix="label a larger input")
    return frame


@dataclass
class _Loop:
    """The loop's state between its steps: the LLM's current label of each row and the student's view of them."""

    cfg: Config
    opts: FreealOptions
    job: Any
    store: Any
    frame: Any
    on_event: EventHandler
    records: list[dict[str, Any]]
    texts: list[str]
    gold: np.ndarray | None
    names: list[str]
    stats: list[RoundStats] = field(default_factory=list)
    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (n, k) the distribution behind each current label
    current: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # (n,) label index, -1 for none
    conf: np.ndarray = field(default_factory=lambda: np.zeros(0))
    errors: list[str] = field(default_factory=list)
    source_round: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    X: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (n, d) sentence embeddings
    oof: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # the student's out-of-fold probabilities of the labeled rows

    @classmethod
    def start(cls, cfg: Config, opts: FreealOptions, job: Any, store: Any, frame: Any, on_event: EventHandler) -> _Loop:
        names = cfg.label_names
        records = frame.to_dict("records")
        gold = None
        if cfg.gold_column and cfg.gold_column in frame.columns:
            gold = np.array([names.index(str(g)) if str(g) in names else -1 for g in frame[cfg.gold_column]])
        return cls(cfg, opts, job, store, frame, on_event, records, [job.row_input(r) for r in records], gold, names)

    def first_pass(self) -> None:
        """Round 0: the LLM labels every row with the config's own prompt (or demos it wrote); the first
        pass is batch-calibrated when asked, and the student learns it."""
        from labelmill.core import Job, Runner
        from labelmill.selectors.embeddings import embed
        from labelmill.strategies.students.models import out_of_fold

        t0, cfg, n, k = time.perf_counter(), self.cfg, len(self.frame), len(self.names)
        first_job = self.job
        has_examples = cfg.examples.k > 0 and (cfg.examples.items or cfg.examples.file)
        if self.opts.generate_demos > 0 and not has_examples:
            items = generated_demos(cfg, self.job, self.store, self.opts.generate_demos)
            self.on_event(Notice(f"freeal: round 0 with {len(items)} demos the LLM wrote"))
            first_job = Job(_pool_config(cfg, items), self.job.backend)
        first = Runner(first_job, self.store, self.on_event).run(self.frame)
        table = self.store.labels(first.run_id, n, self.names)
        self.probs = np.full((n, k), np.nan)
        for i, a in enumerate(table.rows):
            if a is not None and a.label is not None:
                self.probs[i] = [float(a.distribution.get(m, 0.0)) for m in self.names] if a.distribution else np.eye(k)[self.names.index(a.label)]
        has = ~np.isnan(self.probs).any(axis=1)
        self.errors = ["pending" if a is None else ("" if a.label is not None else a.error) for a in table.rows]
        if has.sum() < 20:
            raise InputDataError(f"the LLM labeled only {int(has.sum())} rows in round 0; freeal needs 20", fix="check the model and the llm_error column of `labelmill run`")
        debias, changed = self._debias(has)
        self.current = np.full(n, -1)
        self.current[has] = self.probs[has].argmax(axis=1)
        self.conf = np.where(has, np.nanmax(np.nan_to_num(self.probs, nan=0.0), axis=1), np.nan)
        self.source_round = np.zeros(n, dtype=int)
        self.on_event(Notice("freeal: embedding the rows for the student"))
        self.X = embed(self.texts, cfg.examples.embedding_model, self.store)
        self.oof = out_of_fold(self.X[has], self.current[has], k)
        self.stats.append(self._round_stats(0, [first.run_id], n, changed, has, None, 0, time.perf_counter() - t0))
        self.stats[-1].batch_calibrated = debias
        self.on_event(Notice(_describe(self.stats[-1])))

    def _debias(self, has: np.ndarray) -> tuple[bool, int]:
        """Batch calibration of the first pass, when on: whether it ran, and how many labels it changed."""
        debias = self.opts.debias
        if debias is None:
            debias = len(self.names) >= 3
            if not debias:
                self.on_event(Notice("freeal: two labels, so no batch calibration of the first pass (one label is often rare); --debias forces it"))
        if not debias:
            return False, 0
        before = self.probs[has].argmax(axis=1)
        self.probs[has] = batch_calibrate(self.probs[has])
        after = self.probs[has].argmax(axis=1)
        changed = int((before != after).sum())
        if changed > DEBIAS_WARN_SHARE * len(before):  # rare labels in the data look just like a biased prompt
            self.on_event(Notice(_debias_warning(before, after, self.names)))
        return True, changed

    def relabel_round(self, r: int) -> bool:
        """One round: small-loss selection keeps the clean rows, their medoids become the demo pool, the
        other rows are relabeled with demos from it, and the student learns again. False: nothing to do."""
        from labelmill.strategies.students.models import out_of_fold

        t0, n, o = time.perf_counter(), len(self.frame), self.opts
        known = self.current >= 0
        loss = -np.log(np.maximum(self.oof[np.arange(len(self.oof)), self.current[known]], 1e-12))
        post = np.zeros(n)
        post[known] = clean_posterior_by_label(loss, self.current[known])
        clean = known & (post > o.clean_threshold)
        full_loss = np.full(n, np.inf)
        full_loss[known] = loss
        pool = demo_pool(self.X, self.current, clean, full_loss, len(self.names), per_label=o.pool_per_label)
        noisy = np.flatnonzero(~clean) if o.relabel == "noisy" else np.arange(n)
        if len(pool) < 2 or len(noisy) == 0:
            self.on_event(Notice(f"freeal: round {r}: nothing to relabel (pool {len(pool)}, noisy {len(noisy)}); stopping"))
            return False
        changed, run_ids = self._relabel(r, noisy, np.array(pool))
        has = self.current >= 0
        self.oof = out_of_fold(self.X[has], self.current[has], len(self.names))
        self.stats.append(self._round_stats(r, run_ids, len(noisy), changed, has, clean, len(pool), time.perf_counter() - t0))
        self.on_event(Notice(_describe(self.stats[-1])))
        return True

    def _relabel(self, r: int, noisy: np.ndarray, pool: np.ndarray) -> tuple[int, list[int]]:
        """The LLM relabels `noisy` rows group by group, each group with the pool's demos nearest its centre."""
        from labelmill.core import Job, Runner

        o, names, columns = self.opts, self.names, self.job.task.required_columns()  # a demo row keeps its inputs, never the gold column
        changed, run_ids = 0, []
        for rows, demos in _relabel_groups(self.X, noisy, pool, self.current, o.demos_per_label, o.max_demos, o.group_rows):
            items = [{**{c: self.records[i][c] for c in columns}, POOL_COLUMN: names[self.current[i]]} for i in demos]
            result = Runner(Job(_pool_config(self.cfg, items), self.job.backend), self.store, self.on_event).run(self.frame.iloc[rows].reset_index(drop=True))
            run_ids.append(result.run_id)
            sub = self.store.labels(result.run_id, len(rows), names)
            for j, i in enumerate(rows):
                a = sub.get(j)
                if a is None or a.label is None:
                    continue
                new = names.index(a.label)
                self.errors[i] = ""
                changed += int(new != self.current[i])
                self.current[i] = new
                self.conf[i] = a.confidence if a.confidence is not None else np.nan
                if a.distribution:
                    self.probs[i] = [float(a.distribution.get(m, 0.0)) for m in names]
                self.source_round[i] = r
        return changed, run_ids

    def final_student(self) -> tuple[np.ndarray, list[int]]:
        """The final student's probabilities for every row (out of fold for the rows it learned from, unless
        fine-tuned), and the suspect labels ranked, most suspect first."""
        from labelmill.strategies.students.models import FinetunedStudent, LinearStudent

        known, k = self.current >= 0, len(self.names)
        if self.opts.student == "finetune":  # the encoder itself fine-tuned on the final labels: slower, stronger
            self.on_event(Notice(f"freeal: fine-tuning {self.cfg.examples.embedding_model} on {int(known.sum())} labels"))
            tuned = FinetunedStudent(k, self.cfg.examples.embedding_model, epochs=self.opts.finetune_epochs)
            tuned.fit_texts([self.texts[i] for i in np.flatnonzero(known)], self.current[known])
            student_probs = tuned.predict_texts(self.texts)
        else:  # rows it learned from get their out-of-fold prediction: its opinion of a row it did not see
            student_probs = LinearStudent(k).fit(self.X[known], self.current[known]).predict_proba(self.X)
            student_probs[known] = self.oof
        issues = rank_label_issues(self.current[known], self.oof)
        return student_probs, np.flatnonzero(known)[issues].tolist()

    def _round_stats(self, r: int, run_ids: list[int], relabeled: int, changed: int, has: np.ndarray, clean: np.ndarray | None, pool_size: int,
                     seconds: float) -> RoundStats:
        """A round's figures, from the loop's current labels, the student's out-of-fold probabilities of them (`oof`)
        and the gold labels when the rows have them (for the report only)."""
        current, oof, gold = self.current, self.oof, self.gold
        student_pred = oof.argmax(axis=1)
        agreement = float((student_pred == current[has]).mean())
        stats = RoundStats(r, run_ids, relabeled, changed, float(clean.mean()) if clean is not None else 0.0, pool_size, agreement, round(seconds, 1))
        if gold is not None:
            ok = gold >= 0
            stats.accuracy = float(np.mean(current[ok] == gold[ok]))
            stats.student_accuracy = float(np.mean(student_pred[gold[has] >= 0] == gold[has][gold[has] >= 0]))
            if clean is not None and (clean & ok).any():
                stats.clean_accuracy = float(np.mean(current[clean & ok] == gold[clean & ok]))
        return stats

    def result(self, student_probs: np.ndarray, issue_rows: list[int], output: str | Path | None, freeal_id: int, wall_s: float) -> FreeALResult:
        """The output frame (labels, the round that gave each, the student's label, the issue rank), written when asked."""
        names = self.names
        rank = np.full(len(self.frame), np.nan)
        rank[issue_rows] = np.arange(1, len(issue_rows) + 1)
        out, columns = labeled_frame(self.frame, self.cfg, [names[c] if c >= 0 else None for c in self.current], [None if np.isnan(c) else float(c) for c in self.conf], self.errors, {
            "round": ("llm_round", self.source_round),
            "student_label": ("student_label", [names[i] for i in student_probs.argmax(axis=1)]),
            "student_confidence": ("student_confidence", student_probs.max(axis=1)),
            "issue_rank": ("label_issue_rank", rank),
        })
        out_path = write_rows(out, output) if output else None
        if out_path is not None:
            from labelmill.strategies.freeal.strategy import freeal_sidecar

            freeal_sidecar(out_path).write_text(json.dumps({"rounds": [asdict(s) for s in self.stats], "label_issues": issue_rows[:500]}, indent=1), encoding="utf-8")
        return FreeALResult(out, self.stats, columns, out_path, issue_rows, wall_s, freeal_id, self.probs, self.oof)


def rank_label_issues(labels: np.ndarray, oof_probs: np.ndarray) -> list[int]:
    """Rows whose label looks wrong, most suspect first: cleanlab's find_label_issues (confident learning)
    over the labels and out-of-fold probabilities, ranked by self-confidence."""
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        from labelmill.errors import MissingDependencyError

        raise MissingDependencyError("cleanlab", "student", "label-issue ranking") from None
    present = np.unique(labels)
    # cleanlab wants every column to be a label that occurs: keep the labels present, renormalised
    probs = oof_probs[:, present]
    probs = probs / probs.sum(axis=1, keepdims=True)
    remap = {old: new for new, old in enumerate(present)}
    y = np.array([remap[v] for v in labels])
    if len(present) < 2:
        return []
    ranked = find_label_issues(labels=y, pred_probs=probs, return_indices_ranked_by="self_confidence")
    return [int(i) for i in ranked]


def _debias_warning(before: np.ndarray, after: np.ndarray, names: list[str]) -> str:
    """Say how far batch calibration moved the label shares, and what to do when the data's labels are not balanced."""
    n, changed = len(before), int((before != after).sum())
    share_before = np.bincount(before, minlength=len(names)) / n
    share_after = np.bincount(after, minlength=len(names)) / n
    moved = np.argsort(-np.abs(share_after - share_before))[:3]
    shifts = ", ".join(f"{names[k]} {share_before[k]:.0%} -> {share_after[k]:.0%}" for k in moved if share_after[k] != share_before[k])
    return (
        f"freeal: batch calibration changed {changed} of {n} first-pass labels ({shifts}). It assumes "
        "every label is about equally common in the data; if some labels are rare here, rerun with --no-debias (Python: debias=False)"
    )


def _describe(s: RoundStats) -> str:
    changed = f"{s.changed} changed by batch calibration" if s.round == 0 and s.batch_calibrated else f"{s.changed} changed"
    parts = [f"freeal: round {s.round}: {s.relabeled} rows labeled by the LLM, {changed}"]
    if s.round:
        parts.append(f"clean {s.clean_share:.0%}, pool {s.pool_size}")
    parts.append(f"LLM/student agreement {s.agreement:.3f}")
    if s.accuracy is not None:
        parts.append(f"accuracy {s.accuracy:.3f} (gold, report only)")
    return ", ".join(parts) + f", {s.seconds:.0f} s"


def _save(store, cfg: Config, frame, rounds: int, stats: list[RoundStats], issues: list[int]) -> int:
    from labelmill.strategies.freeal.strategy import STRATEGY

    with STRATEGY.tables(store).transaction() as db:
        cur = db.execute(
            "INSERT INTO freeal_runs (created_at, task_name, config_hash, input_hash, rounds, label_issues) VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), cfg.name, cfg.fingerprint(), content_hash(frame), rounds, json.dumps(issues)),
        )
        freeal_id = int(cur.lastrowid)
        db.executemany(
            "INSERT INTO freeal_rounds (freeal_id, round, stats) VALUES (?, ?, ?)",
            [(freeal_id, s.round, json.dumps(asdict(s))) for s in stats],
        )
    return freeal_id
