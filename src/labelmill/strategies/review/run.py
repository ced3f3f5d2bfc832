"""A labeled run under review: its rows, the model's labels, the review log and the router, behind one
Python API that the web app, the simulated reviewer and the bench all drive.

    session = ReviewSession.open("examples/review/sst2.yaml", "out/sst2.csv", project="out/review.db")
    row = session.next_row("ana")             # what the app shows next
    session.submit("ana", row.index, "negative")
    session.status()                          # queue size and why, estimated accuracy with a bound, reviews to target

The loop (pre-annotate -> review -> fine-tune -> relabel): after every `batch` reviews the router refits
(calibration and student from the reviewed rows), every unreviewed row gets its new label and confidence,
and the queue re-ranks. `simulate` drives the same loop with a gold column as the reviewer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from labelmill.config import Config
from labelmill.core.strategy import Options
from labelmill.errors import ConfigError, InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.strategies.review.log import ReviewLog, same_label
from labelmill.strategies.review.routing import Router, Routing, StudentData, reviews_to_target

CLOSED_TASKS = ("classification", "matching", "relation", "temporal")
REFIT_SHARE = 0.2  # the app's refits take at most this share of the time (a refit holds the interpreter while it runs)
MAX_BULK = 100  # rows one bulk accept may take (a page's cluster is far fewer)
PROPOSE_MIN_ROWS = 20  # reviewed rows before guideline proposals (refine holds half of them out, and needs 10 each side)
TUNE_MIN_ROWS = 40  # reviewed rows before the strategy search on them (half its demo pool, half, 20 or more, its dev rows)
TUNE_MAX_DEV = 200  # the search scores at most this many reviewed rows (the rest join its demo pool)
RELABEL_EVERY = 50  # the app's default: reviews between relabel steps, once the search found that demos pay


@dataclass
class RowView:
    """One row as the review page shows it."""

    index: int
    text: str
    fields: dict[str, Any]
    model_label: Any
    confidence: float | None
    explanation: str | None
    reasons: list[str]
    current: Any  # the label in force: the last review's, else the model's
    reviews: dict[str, Any] = field(default_factory=dict)  # annotator -> label (hidden in blind mode)
    nearest: list[dict[str, Any]] = field(default_factory=list)
    cluster: list[int] = field(default_factory=list)  # confident unreviewed rows like this one, same label


@dataclass
class Budget:
    """How much review is allowed: rows, a share of the rows, or seconds of reviewing (None: no limit)."""

    rows: int | None = None
    share: float | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> Budget:
        """'200' rows, '15%' or '0.15' of the rows, '30m' / '2h' / '90s' of reviewing."""
        if text is None or str(text).strip() == "":
            return cls()
        s = str(text).strip().lower()
        try:
            if s.endswith("%"):
                return cls(share=float(s[:-1]) / 100)
            for suffix, scale in (("h", 3600), ("m", 60), ("s", 1)):
                if s.endswith(suffix):
                    return cls(seconds=float(s[:-1]) * scale)
            value = float(s)
        except ValueError:
            raise ConfigError(f"budget {text!r} is not a number of rows, a share or a time", fix="write e.g. 200, 15%, 0.15 or 30m") from None
        return cls(share=value) if 0 < value < 1 else cls(rows=int(value))

    def rows_allowed(self, n: int) -> int | None:
        if self.rows is not None:
            return self.rows
        if self.share is not None:
            return int(round(self.share * n))
        return None


def _span_key(span: Any) -> tuple[int, int]:
    try:
        return int(span["start"]), int(span["end"])
    except (KeyError, TypeError, ValueError):
        raise InputDataError(f"span {span!r} needs start, end and type") from None


class ReviewOptions(Options):
    """The review loop's knobs. `calibration`: a file from `labelmill calibrate` (or a Calibrator): its
    threshold marks trusted rows unless `trust_threshold` is given. `target`: the accuracy the queue works
    towards (it stops at the target unless `stop_at_target` is off). `batch`: reviews between refits.
    `overlap`: people per row; `blind`: hide the model's label and the others' answers. `budget`: rows, a
    share ("15%") or a time ("30m"). `student`: True or "linear" (logistic regression on sentence
    embeddings, refitted after every batch), "finetuned" (the encoder fine-tuned once on up to
    `finetune_rows` of the config's labeled examples, then the linear head refitted the same way), False
    (rank by the model's confidence only). `use_examples`: the config's labeled examples feed the student;
    `seed_rows` of them (drawn at random, held out from the student) are labeled by the model once, so the
    combination is fitted on rows like the whole dataset from the first review. `audit`: how many of the
    first reviews are audit rows drawn at random among those not reviewed yet (every other review
    until there are that many), then one review in `audit_every` (0: none after): what the model said on
    them makes the estimate of the dataset's accuracy and its interval honest (`routing.estimate_with_audit`);
    they are shown like any other row and flagged in the log. 0 turns the audit off. `audit_uniform`: the
    uniform share of each audit draw; below 1 the rest goes to rows in proportion to 1 - confidence (likely
    errors, which teach the loop more), each audit row weighted back by its draw's chance (`_audit_row`).
    The defaults (20, then one in 20, uniform share 0.6; 30, one in 10 and plain random draws before
    2026-12-07) were chosen on 1,000 train rows of SST-2 and AG News, not the test rows: 0.008-0.027 fewer
    rows reviewed for 95% in all four loops (with and without the tier), the interval held at 0.91-0.96 of
    the checkpoints there, and at >= 0.92 in simulated loops of five calibration kinds (tests/test_review.py;
    a uniform share of 0.5 falls under 0.90 there with overconfident confidences). `prior`: with no
    labeled examples, what the student also learns from: "auto" (the default), the LLM's surest labels until the
    student's held-out answers on the random audit rows are right more often than the LLM's there, then its
    own surest labels (self-training; AG News with the 0.5B, 0.51: 0.276 of the rows reviewed for 95% -> 0.234);
    "llm", the LLM's always; "self", its own from its first fit on reviews; or None (`routing.RouterOptions`).
    `tier_model`: a stronger model (a catalog name such as qwen2.5-coder-1.5b, on the config's backend)
    that labels the `tier_share` of rows the first labeler was least sure of (`ReviewSession.escalate`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    calibration: Any = None
    target: float = Field(0.95, gt=0.0, le=1.0)
    trust_threshold: float | None = None
    batch: int = 10
    overlap: int = 1
    blind: bool = False
    budget: Any = None
    student: bool | str = True
    use_examples: bool = True
    stop_at_target: bool = True
    finetune_rows: int = 4000
    seed_rows: int = 1000
    audit: int = Field(20, ge=0)
    audit_every: int = Field(20, ge=0)
    audit_seed: int = 0
    audit_uniform: float = Field(0.6, ge=0.0, le=1.0)
    prior: Literal["llm", "self", "auto"] | None = "auto"
    queue_weight: float = 1.0
    tier_model: str | None = None
    tier_share: float = Field(0.5, gt=0.0, le=1.0)


@dataclass
class _Loaded:
    """What `ReviewSession.open` prepared: the rows, their run and labels in the store, and the router."""

    config: Config
    frame: Any
    run_id: int
    store: Any
    table: Any
    names: list[str]
    texts: list[str]
    row_hashes: list[str]
    embeddings: np.ndarray | None
    router: Router


class ReviewSession:
    def __init__(self, loaded: _Loaded, options: ReviewOptions | None = None, on_event: EventHandler = ignore):
        o = options or ReviewOptions()
        config, frame, run_id, store, labels_from = loaded.config, loaded.frame, loaded.run_id, loaded.store, loaded.table
        names, texts, row_hashes, embeddings, router = loaded.names, loaded.texts, loaded.row_hashes, loaded.embeddings, loaded.router
        target, batch, overlap, blind, stop_at_target = o.target, o.batch, o.overlap, o.blind, o.stop_at_target
        budget = o.budget if isinstance(o.budget, Budget) else Budget.parse(o.budget)
        from labelmill.tasks import make_task

        self.config = config
        self.task = make_task(config)
        self.frame = frame
        self.records = frame.to_dict("records")
        self.run_id = run_id
        self.store = store
        self.log = ReviewLog(store, run_id)
        self.table = labels_from
        self.names = names
        self.texts = texts
        self.row_hashes = row_hashes
        self.embeddings = embeddings
        self.router = router
        self.target = target
        self.batch = max(1, batch)
        self.overlap = max(1, overlap)
        self.blind = blind
        self.budget = budget or Budget()
        self.stop_at_target = stop_at_target
        self.on_event = on_event
        self.started = time.time()
        self._lock = threading.RLock()
        self._leases: dict[int, tuple[str, float]] = {}
        self._since_refit = 0
        self._since_relabel = 0
        self._closed = False
        self.reviewers: set[str] | None = None  # who may resolve conflicts (None: every annotator)
        self._since_propose = 0
        self._background: threading.Thread | None = None  # the one model job off the request path (relabel, guideline or tier)
        self._background_kind: str | None = None
        self.refits = 0
        self.background_refit = False  # the app sets it: refits on a thread of their own (see `_refit_later`)
        self.refit_interval = 1.0  # seconds between the starts of two background refits (a refit holds the interpreter while it runs)
        self._refit_due = False
        self._refit_thread: threading.Thread | None = None
        self._status_cache: tuple[Routing, float, dict[str, Any]] | None = None
        self.audit, self.audit_every = o.audit, o.audit_every
        self.tier_model, self.tier_share = o.tier_model, o.tier_share
        self.tier_rows = 0  # rows the stronger model labeled (see `escalate`)
        self._first_confidence = np.nan_to_num(np.array([np.nan if s is None or s.confidence is None else s.confidence for s in labels_from.rows],
                                                        dtype=float), nan=0.0)
        self._audit_order = [int(i) for i in np.random.default_rng(o.audit_seed).permutation(len(self.records))]
        self.audit_seed, self.audit_uniform = o.audit_seed, o.audit_uniform
        self._audit_leases: dict[int, tuple[str, float]] = {}  # row -> (annotator, the draw's weight)
        self.routing: Routing = self._route()
        self._model_steps()

    def _model_steps(self) -> None:
        """The background model steps' settings (all off until asked; the app's defaults: `cli.model_steps`), and
        the strategy search kept in the store from an earlier session, if any."""
        self.relabel_every = 0  # reviews between background relabels (0: only when asked)
        self.relabel_after_search = False  # True: the relabel step waits until the strategy search found that demos pay
        self.relabel_rows = 200
        self.propose_every = 0  # reviews between background guideline proposals (0: only when asked)
        self.relabel_k, self.relabel_selection = 4, "similar"  # the relabel step's demos (what `tune_relabel` found, once it ran)
        self.relabel_search: dict[str, Any] | None = None  # the strategy search's outcome (see `tune_relabel`)
        self.tune_after = 0  # reviewed rows before the strategy search runs in the background, once (0: only when asked)
        self._tune_started = False
        kept = self.log.last_search()
        if kept is not None:  # the session opened again: the search's outcome holds, and the search does not run again
            self._take_search(kept)
            self._tune_started = True

    # opening --------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, config: str | Path | dict | Config, data: Any, options: ReviewOptions | dict | None = None, *, project: str | Path = "labelmill.db",
        backend: Any = None, on_event: EventHandler = ignore, **knobs: Any,
    ) -> ReviewSession:
        """Label `data` through the core run (everything already labeled comes from the project store,
        so a labeled output reopens at once) and open it for review (the knobs are `ReviewOptions`', as
        `options` or keywords). `data` is the input or the output that `labelmill run` wrote (its llm_
        columns are set aside: the store holds the labels)."""
        from labelmill.config import load_with_notices
        from labelmill.core import label_rows
        from labelmill.io import read_rows
        from labelmill.store import Store
        from labelmill.tasks import make_task

        from labelmill.numeric.calibration import Calibrator

        o = ReviewOptions.of(options, knobs)
        cfg = load_with_notices(config, on_event)
        calibrator = Calibrator.load(o.calibration) if isinstance(o.calibration, (str, Path)) else o.calibration  # a bad file fails before labeling
        frame = _inputs(read_rows(data, cfg.dataset) if not hasattr(data, "columns") else data, cfg)
        result = label_rows(cfg, frame, project=project, backend=backend, on_event=on_event)
        store = Store(project, shared=True)
        task = make_task(cfg)
        names = _names(cfg, task)
        table = store.labels(result.run_id, len(frame), names)
        texts = [task.display_text(r) for r in frame.to_dict("records")]
        hashes = [(s.row_hash if s is not None else "") for s in table.rows]
        data_for_student = _student_data(cfg, task, texts, probs_ok(table), o, store, backend, on_event)
        router = _router(task, names, table, data_for_student, o, calibrator)
        loaded = _Loaded(cfg, frame, result.run_id, store, table, names, texts, hashes, data_for_student.embeddings, router)
        return cls(loaded, o, on_event)

    def close(self) -> None:
        self._closed = True
        self.store.close()

    # the loop -------------------------------------------------------------------------------------
    def reviewed(self) -> dict[int, Any]:
        """Rows with a settled reviewed label (conflicts between annotators are not settled)."""
        return self.log.final(self.overlap)[0]

    def _route(self) -> Routing:
        assert self.router is not None
        position = self.log.size()
        routing = self.router.route(self.reviewed(), audit=self.log.audit_rows(), audit_weight=self.log.audit_weights())
        routing.log_position = position
        return routing

    def refit(self) -> Routing:
        """Refit on every reviewed row and re-rank the queue (the app does this after every batch)."""
        with self._lock:
            self.routing = self._route()
            self._since_refit = 0
            self.refits += 1
            return self.routing

    def _after_review(self, count: int = 1) -> None:
        self._since_refit += count
        self._since_relabel += count
        if self._since_refit >= self.batch:
            self._refit_later() if self.background_refit else self.refit()
        self._since_propose += count
        self._start_due_jobs()

    def _start_due_jobs(self) -> None:
        """Start the background model jobs whose turn has come: the strategy search first (it sets the demos of
        the relabel step that follows it), then the relabel step, then guideline proposals. One job runs at a
        time; a job that finds another running starts when that one ends (or after the next review)."""
        with self._lock:  # (also called from a background job's thread as it ends)
            if self._closed:
                return
            if self.tune_after and not self._tune_started and len(self.reviewed()) >= max(self.tune_after, TUNE_MIN_ROWS) and self.tune_in_background():
                self._tune_started = True
            if self.relabel_every and self._since_relabel >= self.relabel_every and self._relabel_allowed() and self.relabel_in_background(self.relabel_rows):
                self._since_relabel = 0
            if self.propose_every and self._since_propose >= self.propose_every and len(self.reviewed()) >= PROPOSE_MIN_ROWS and self.propose_in_background():
                self._since_propose = 0

    def _relabel_allowed(self) -> bool:
        """Whether the background relabel step may run: always, unless it waits for the search (the app's default,
        `relabel_after_search`) and the search has not yet found demos that beat zero-shot."""
        return not self.relabel_after_search or (self.relabel_search is not None and self.relabel_k > 0)

    def _refit_later(self) -> None:
        """The app's refit: on a thread of its own, so no request waits for it (on 100,000 rows a refit
        takes about half a second). Reviews that arrive meanwhile make one more refit, not one each."""
        with self._lock:
            self._since_refit = 0
            self._refit_due = True
            if self._refit_thread is not None and self._refit_thread.is_alive():
                return
            self._refit_thread = threading.Thread(target=self._refit_loop, name="labelmill-refit", daemon=True)
            self._refit_thread.start()

    def _refit_loop(self) -> None:
        assert self.router is not None
        next_start = 0.0
        while True:
            time.sleep(max(0.0, next_start - time.monotonic()))  # a busy team's reviews wait for the next refit together
            started = time.monotonic()
            with self._lock:
                if not self._refit_due:
                    return
                self._refit_due = False
                # a snapshot: the log's views never change in place
                reviewed, audit, weights, position = self.reviewed(), self.log.audit_rows(), self.log.audit_weights(), self.log.size()
            try:
                routing = self.router.route(reviewed, audit=audit, audit_weight=weights)
                next_start = started + max(self.refit_interval, (time.monotonic() - started) / REFIT_SHARE)
            except Exception as exc:  # noqa: BLE001 - the last routing stays; every review is saved
                self.on_event(Notice(f"review: refit failed ({type(exc).__name__}: {exc}); the queue keeps its last order"))
                return
            routing.log_position = position
            with self._lock:
                self.routing = routing
                self.refits += 1

    def wait_for_refit(self, timeout: float | None = None) -> bool:
        """Wait for a background refit (and any it owes) to finish; True when none is running."""
        thread = self._refit_thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    # the queue ------------------------------------------------------------------------------------
    def budget_left(self) -> int | None:
        allowed = self.budget.rows_allowed(len(self.records))
        if self.budget.seconds is not None and time.time() - self.started >= self.budget.seconds:
            return 0
        return None if allowed is None else max(0, allowed - len(self.log.ratings()))

    def queue(self, annotator: str | None = None, limit: int | None = None) -> list[int]:
        """Rows waiting for `annotator`, most valuable first: rows no one settled, and (with overlap k)
        rows with fewer than k ratings that this annotator has not rated; the first `limit` of them."""
        if self.stop_at_target and self.routing.estimate.get("lower_bound", 0.0) >= self.target:
            return []  # the target holds (its lower bound): the loop stops
        left = self.budget_left()
        if left is not None:
            limit = left if limit is None else min(limit, left)
        if limit is not None and limit <= 0:
            return []
        ratings = self.log.ratings()
        settled, conflicts = self.log.final(self.overlap)
        out = []
        now = time.time()
        for i in self.routing.order:
            if i in settled:
                continue
            given = ratings.get(i, {})
            if annotator is not None and annotator in given:
                continue
            if len(given) >= self.overlap or i in conflicts:
                continue
            lease = self._leases.get(i)
            if lease and lease[0] != annotator and now - lease[1] < 300 and len(given) + 1 >= self.overlap:
                continue
            out.append(i)
            if limit is not None and len(out) >= limit:
                break
        return out

    def _queue_length(self) -> int:
        """len(queue()), without walking the whole queue where it can: with one rating per row, the routing's
        queue less its rows rated, resolved or undone since it was fitted and the rows leased to someone."""
        r = self.routing
        if self.overlap != 1 or r.log_position < 0 or self.budget_left() is not None or (
                self.stop_at_target and r.estimate.get("lower_bound", 0.0) >= self.target):
            return len(self.queue())
        queued = r.queued
        touched = {i for i in self.log.rows_since(r.log_position) if i in queued}
        settled, conflicts = self.log.final(self.overlap)
        now = time.time()
        gone = {i for i in touched if i in settled or i in conflicts}  # (one rating per row: a rated row is one or the other)
        leased = {i for i, (who, when) in self._leases.items() if i in queued and i not in gone and now - when < 300}
        return len(r.order) - len(gone) - len(leased)

    def next_row(self, annotator: str) -> RowView | None:
        """The next row for `annotator`: the queue's first, or, when an audit draw is due, a row drawn at
        random among the rows no one has reviewed (see `ReviewOptions.audit`)."""
        with self._lock:
            queue = self.queue(annotator, limit=1)
            if not queue:
                return None
            ratings = self.log.ratings()
            drawn = self._audit_row(annotator, ratings) if self._audit_due(len(ratings)) else None
            if drawn is None:
                i = queue[0]
            else:
                i = drawn[0]
                self._audit_leases[i] = (annotator, drawn[1])
            self._leases[i] = (annotator, time.time())
            return self.view(i, annotator)

    def _audit_due(self, total: int) -> bool:
        """Whether the next row should be an audit draw, after `total` rated rows."""
        if not self.audit:
            return False
        audits = len(self.log.audit_rows())
        if audits < self.audit:
            return audits * 2 <= total  # every other review until there are `audit`
        # then one review in `audit_every`
        return bool(self.audit_every) and audits - self.audit < (total - 2 * self.audit) // self.audit_every + 1

    def _audit_row(self, annotator: str, ratings: Mapping[int, Any]) -> tuple[int, float] | None:
        """(row, weight) of the next audit draw among the rows no one has rated or leased (for another). With
        `audit_uniform` 1: the next row of the session's random order, weight 1. Below: a row drawn with a chance
        that mixes uniform (that share) with one in proportion to 1 - confidence (rows likely wrong teach the loop
        more), seeded by the session and the draws so far; its weight is 1 / (its chance x the rows it was drawn
        from), so the estimate stays unbiased (`numeric.estimate`)."""
        now = time.time()
        free = np.ones(len(self.records), dtype=bool)
        free[[i for i in ratings if 0 <= int(i) < len(free)]] = False
        for i, (who, when) in self._leases.items():
            if who != annotator and now - when < 300:
                free[i] = False
        if self.audit_uniform >= 1.0:
            return next(((i, 1.0) for i in self._audit_order if free[i]), None)
        rows = np.flatnonzero(free)
        if not len(rows):
            return None
        miss = np.clip(1.0 - np.nan_to_num(self.routing.confidence[rows], nan=0.0), 0.0, 1.0)
        chance = np.full(len(rows), 1.0 / len(rows))
        if miss.sum() > 0:
            chance = self.audit_uniform * chance + (1.0 - self.audit_uniform) * miss / miss.sum()
        j = int(np.random.default_rng([self.audit_seed, len(self.log.audit_rows())]).choice(len(rows), p=chance / chance.sum()))
        return int(rows[j]), float(1.0 / (chance[j] * len(rows)))

    def view(self, i: int, annotator: str | None = None) -> RowView:
        i = self.row(i)
        r = self.routing
        item = self.table.get(i)
        model_label = self.task.output_value(_label(item.label)) if item is not None and item.label is not None else None
        ratings = self.log.ratings().get(i, {})
        current = ratings.get(annotator) if annotator in ratings else r.labels[i]
        others = {} if self.blind else dict(ratings)
        conf = None if r.reviewed[i] and item is not None and item.confidence is None else float(r.confidence[i])
        return RowView(
            index=i, text=self.texts[i], fields={k: _plain(v) for k, v in self.records[i].items() if k not in self._gold_columns},  # the gold stays here
            model_label=None if self.blind else model_label, confidence=None if self.blind else conf,
            explanation=None if self.blind or item is None else item.explanation,
            reasons=[why for why in r.reasons[i] if not (self.blind and _tells_the_model(why))],
            current=None if self.blind and not ratings.get(annotator) else current, reviews=others,
            nearest=[] if self.blind else self.nearest_reviewed(i), cluster=[] if self.blind else self.cluster(i),  # (the nearest rows carry others' answers)
        )

    def nearest_reviewed(self, i: int, k: int = 3) -> list[dict[str, Any]]:
        """The reviewed rows most like row i (sentence embeddings), with their reviewed labels."""
        done = self.reviewed()
        if self.embeddings is None or not done:
            return []
        rows = np.array([j for j in done if j != i], dtype=int)
        if not len(rows):
            return []
        sims = self.embeddings[rows] @ self.embeddings[i]
        best = rows[np.argsort(-sims)[:k]]
        return [{"row": int(j), "text": self.texts[j], "label": done[int(j)], "similarity": round(float(self.embeddings[j] @ self.embeddings[i]), 3)} for j in best]

    def cluster(self, i: int, k: int = 20, min_confidence: float = 0.9, min_similarity: float = 0.6) -> list[int]:
        """Unreviewed rows near row i with the same current label and a confidence of at least
        `min_confidence`: what bulk accept takes in one keystroke."""
        r = self.routing
        if self.embeddings is None:
            return []
        label = r.labels[i]
        cand = np.flatnonzero(~r.reviewed & (r.confidence >= min_confidence))
        cand = cand[[r.labels[j] == label and j != i for j in cand]] if len(cand) else cand
        if not len(cand):
            return []
        sims = self.embeddings[cand] @ self.embeddings[i]
        keep = cand[sims >= min_similarity]
        sims = sims[sims >= min_similarity]
        return [int(j) for j in keep[np.argsort(-sims)[:k]]]

    # decisions --------------------------------------------------------------------------------------
    def check_label(self, label: Any, i: int) -> Any:
        """The label in its stored form, or InputDataError when it does not fit the task."""
        kind = self.config.task
        if kind in CLOSED_TASKS:
            if not isinstance(label, str) or label not in self.names:
                raise InputDataError(f"{label!r} is not one of this task's labels", fix=f"use one of: {', '.join(self.names)}")
            return label
        if kind == "multilabel":
            names = list(getattr(self.task, "labels", []) or self.config.label_names)
            if not isinstance(label, list) or any(not isinstance(v, str) or v not in names for v in label):
                raise InputDataError(f"{label!r} is not a list of this task's labels", fix=f"choose from: {', '.join(names)}")
            return sorted(set(label), key=names.index)
        if kind == "relations":
            if not isinstance(label, dict) or not isinstance(label.get("entities", []), list) or not isinstance(label.get("relations", []), list):
                raise InputDataError("a relations review is an object {entities: [spans], relations: [{head, tail, type}]}")
            raw = list(label.get("entities") or [])
            order = sorted(range(len(raw)), key=lambda n: (_span_key(raw[n])))
            entities = self._spans(i, [raw[n] for n in order])
            where = {old: new for new, old in enumerate(order)}
            types = [k.name for k in self.config.relation.types]
            relations, seen = [], set()
            for rel in label.get("relations") or []:
                try:
                    head, tail, typ = where[int(rel["head"])], where[int(rel["tail"])], str(rel["type"])
                except (KeyError, TypeError, ValueError):
                    raise InputDataError(f"relation {rel!r} needs head and tail (entity numbers) and a type") from None
                if head == tail or typ not in types:
                    raise InputDataError(f"relation {rel!r} links an entity to itself or has an unknown type", fix=f"types: {', '.join(types)}")
                if (head, tail, typ) not in seen:
                    seen.add((head, tail, typ))
                    relations.append({"head": head, "tail": tail, "type": typ})
            return {"entities": entities, "relations": sorted(relations, key=lambda r: (r["head"], r["tail"], r["type"]))}
        if kind == "roles":
            return self._roles(i, label)
        if kind == "ner":
            if not isinstance(label, list):
                raise InputDataError("an NER review is a list of spans {start, end, type}")
            return sorted(self._spans(i, label), key=lambda s: (s["start"], s["end"]))
        if kind == "qa":
            if label is None or label == "":
                return ""
            if not isinstance(label, str):
                raise InputDataError("a QA review is the answer text, or empty for unanswerable")
            return label
        if kind == "extraction":
            if not isinstance(label, dict):
                raise InputDataError("an extraction review is an object of attribute values")
            return label
        return label

    @property
    def _gold_columns(self) -> set[str]:
        return {c for c in [self.config.gold_column, *self.task.gold_columns()] if c}

    def _roles(self, i: int, label: Any) -> dict[str, Any]:
        """A roles review: {arguments: [{start, end, role}]} for the row's own predicate; each argument a span of
        the sentence with a role of the task, never over the predicate."""
        if not isinstance(label, dict) or not isinstance(label.get("arguments", []), list):
            raise InputDataError("a roles review is an object {arguments: [{start, end, role}]}")
        predicate = self.task.predicate(self.records[i])
        if predicate is None:
            raise InputDataError("this row has no marked predicate; the review page labels the arguments of a given predicate")
        predicate.pop("sense", None)
        arguments = self._spans(i, label.get("arguments") or [], key="role")
        for a in arguments:
            if a["start"] < predicate["end"] and predicate["start"] < a["end"]:
                raise InputDataError(f"argument {a['text']!r} overlaps the predicate {predicate['text']!r}", fix="an argument is a span beside the predicate")
        return {"predicate": predicate, "arguments": sorted(arguments, key=lambda a: (a["start"], a["end"]))}

    def _spans(self, i: int, label: list[Any], key: str = "type") -> list[dict[str, Any]]:
        """Spans {start, end, <key>} checked against row i's text and the task's labels (NER: the entity
        types under "type"; roles: the roles under "role")."""
        text = self.texts[i]
        types = list(self.config.label_names)
        spans = []
        for span in label:
            try:
                start, end, typ = int(span["start"]), int(span["end"]), str(span.get(key) or span.get("type") or span.get("label"))
            except (KeyError, TypeError, ValueError, AttributeError):
                raise InputDataError(f"span {span!r} needs start, end and {key}") from None
            if not (0 <= start < end <= len(text)) or typ not in types:
                raise InputDataError(f"span {span!r} is outside the text or has an unknown {key}", fix=f"{key}s: {', '.join(types)}")
            spans.append({"start": start, "end": end, key: typ, "text": text[start:end]})
        return spans

    def row(self, i: Any) -> int:
        """`i` as a row of this run, or InputDataError: an int (not a bool, a float or a string) in range."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise InputDataError(f"a row is a whole number, not {type(i).__name__}")
        if not 0 <= int(i) < len(self.records):
            raise InputDataError(f"row {int(i)} is not in this run (0..{len(self.records) - 1})")
        return int(i)

    def submit(self, annotator: str, i: int, label: Any, kind: str = "person") -> int:
        """Commit one decision (before anything else is shown); refits after every `batch` decisions. The
        same decision sent again (a double click, a retried request) is the one already saved: its id."""
        with self._lock:
            i = self.row(i)
            label = self.check_label(label, i)
            given = self.log.ratings().get(i, {})
            if annotator in given and same_label(given[annotator], label):
                return next(r.id for r in reversed(self.log.active()) if r.row_index == i and r.annotator == annotator and r.kind != "resolve")
            item = self.table.get(i)
            shown = self.log.ratings().get(i, {}).get(annotator, self.routing.labels[i])
            lease = self._audit_leases.get(i)
            audit = lease is not None and lease[0] == annotator and i not in self.log.ratings()
            model = (None, None) if item is None else (item.label, item.confidence)
            review_id = self.log.add(i, self.row_hashes[i], annotator, label, previous=shown, model=model, kind=kind,
                                     audit=lease[1] if audit and lease is not None else 0.0)
            self._audit_leases.pop(i, None)
            self._leases.pop(i, None)
            self._after_review()
            return review_id

    def bulk_accept(self, annotator: str, rows: list[int]) -> int:
        """Accept the current label of each row (a confident cluster) in one transaction: at most `MAX_BULK`
        rows, each once; rows already settled or already rated by `annotator` are left as they are."""
        with self._lock:
            if len(rows) > MAX_BULK:
                raise InputDataError(f"bulk accept takes at most {MAX_BULK} rows at once; got {len(rows)}")
            r = self.routing
            rated = {i for i, given in self.log.ratings().items() if annotator in given}
            items = []
            for i in dict.fromkeys(self.row(i) for i in rows):
                if r.reviewed[i] or i in rated:
                    continue
                item = self.table.get(i)
                items.append((i, self.row_hashes[i], annotator, r.labels[i], r.labels[i], None if item is None else item.label,
                              None if item is None else item.confidence))
            count = self.log.add_many(items, kind="person")
            self._after_review(count)
            return count

    def undo(self, annotator: str) -> int | None:
        with self._lock:
            undone = self.log.undo(annotator)
            if undone is None:
                return None
            self.refit()
            return undone.row_index

    def resolve(self, annotator: str, i: int, label: Any) -> int:
        """Settle a row whose annotators disagree (only such a row: a resolution cannot overrule an
        agreement); with `reviewers` set, only one of them may."""
        with self._lock:
            if self.reviewers is not None and annotator not in self.reviewers:
                raise InputDataError(f"{annotator} may not resolve conflicts", fix=f"reviewers: {', '.join(sorted(self.reviewers)) or 'none'}")
            i = self.row(i)
            if i not in self.log.final(self.overlap)[1]:
                raise InputDataError(f"row {i} has no conflict to resolve", fix="the conflicts page lists the rows whose annotators disagree")
            label = self.check_label(label, i)
            rid = self.log.add(i, self.row_hashes[i], annotator, label, previous=None, kind="resolve")
            self.refit()
            return rid

    def unresolve(self, annotator: str, i: int) -> int:
        """Take back the resolution of row `i` (with `reviewers` set, only one of them may); the row is a
        conflict again. Logged as an undo that names who took it back; returns the row."""
        with self._lock:
            if self.reviewers is not None and annotator not in self.reviewers:
                raise InputDataError(f"{annotator} may not undo a resolution", fix=f"reviewers: {', '.join(sorted(self.reviewers)) or 'none'}")
            i = self.row(i)
            if self.log.undo_resolution(annotator, i) is None:
                raise InputDataError(f"row {i} has no resolution to undo", fix="the conflicts page lists the resolved rows")
            self.refit()
            return i

    def relabel(self, limit: int = 200, k: int | None = None, backend: Any = None) -> int:
        """The loop's relabel step: the `limit` most uncertain unreviewed rows are labeled again by the
        model, each with `k` reviewed rows (and the config's examples) as few-shot demos: the nearest ones,
        or as the strategy search chose (`relabel_k`, `relabel_selection`; k 0: the search found that demos
        do not pay on these rows, and the step relabels nothing). A run of its own in the store (its config
        holds the demos); returns how many rows were relabeled. The model runs outside the session's lock,
        so people keep reviewing meanwhile."""
        from labelmill.core import label_rows
        from labelmill.store import Store

        with self._lock:
            k = self.relabel_k if k is None else k
            reviewed = self.reviewed()
            rows = self.routing.queue()[:limit]
            if k <= 0 or len(reviewed) < k or not rows or not self.names:
                return 0
            examples = self._reviewed_examples(sorted(reviewed), reviewed, k, self.relabel_selection)
            cfg = self.config.model_copy(update={"examples": examples})
            frame = self.frame.iloc[rows].reset_index(drop=True)
        result = label_rows(cfg, frame, project=self.store.path, backend=backend, on_event=self.on_event)
        with Store(self.store.path) as store:
            table = store.labels(result.run_id, len(rows), self.names)
        with self._lock:
            self.router.update_llm(rows, table.probs, table.labels, table.confidence)
            self.refit()
        return len(rows)

    def escalate(self, model: str | None = None, share: float | None = None, backend: Any = None) -> int:
        """The loop's tier: a stronger model labels the `share` of rows (default `tier_share`) the first
        labeler was least sure of, and its distributions take the first labeler's place there; the
        combination's weights are then fitted on the reviews as before, so the reviewed rows are the
        cascade's seed. The rows are chosen by the first labeler's confidence alone (reviewed ones too:
        the fit compares like with like), so a session opened again finds them in the store's cache
        instead of asking the model twice. A run of its own in the store (the stronger model's name in
        its config); returns how many rows it labeled (0 without a model or a closed label set)."""
        from labelmill.core import label_rows
        from labelmill.store import Store

        model = model or self.tier_model
        if not model or not self.names:
            return 0
        share = self.tier_share if share is None else share
        with self._lock:
            count = int(round(min(1.0, max(0.0, share)) * len(self.records)))
            rows = [int(i) for i in np.argsort(self._first_confidence, kind="stable")[:count]]
            cfg = self.config.model_copy(update={"model": self.config.model.model_copy(update={"name": model})})
            frame = self.frame.iloc[rows].reset_index(drop=True)
        if not rows:
            return 0
        result = label_rows(cfg, frame, project=self.store.path, backend=backend, on_event=self.on_event)
        with Store(self.store.path) as store:
            table = store.labels(result.run_id, len(rows), self.names)
        with self._lock:
            self.router.update_llm(rows, table.probs, table.labels, table.confidence)
            self.tier_rows = len(rows)
            self.refit()
        return len(rows)

    def escalate_in_background(self) -> bool:
        """Start `escalate` on a thread unless a model job is running; False if one was (or no tier model is set)."""
        if not self.tier_model:
            return False
        return self._in_background("tier", lambda: f"review: {self.tier_model} labeled the {self.escalate()} rows the first labeler was least sure of")

    def wait_for_relabel(self, timeout: float | None = None) -> bool:
        """Wait for the background model jobs (a relabel, a guideline proposal, the tier, the strategy search, and
        any that came due meanwhile) to finish; True when none is running."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            thread = self._background
            if thread is None or thread is threading.current_thread():
                return True
            thread.join(None if end is None else max(0.0, end - time.monotonic()))
            if thread.is_alive():
                return False

    def _in_background(self, name: str, work: Callable[[], str]) -> bool:
        """Run one model job on a thread unless one is running (two model jobs on 2 cores slow each other
        3x); False if one was. `work` returns what to tell the person."""
        with self._lock:
            if self._background is not None and self._background.is_alive() and self._background is not threading.current_thread():
                return False  # (a job ending starts the next from its own thread)

            def run() -> None:
                try:
                    self.on_event(Notice(work()))
                except Exception as exc:  # noqa: BLE001 - a failed job leaves every review and label as it was
                    self.on_event(Notice(f"review: {name} failed ({type(exc).__name__}: {exc}); reviews are unaffected"))
                finally:
                    self._start_due_jobs()  # a job that came due while this one ran takes its place
                    with self._lock:
                        if self._background is threading.current_thread():
                            self._background, self._background_kind = None, None

            self._background = threading.Thread(target=run, name=f"labelmill-{name}", daemon=True)
            self._background_kind = name
            self._background.start()
            return True

    def relabel_in_background(self, limit: int = 200, k: int | None = None) -> bool:
        """Start `relabel` on a thread unless a model job is running; False if one was."""
        return self._in_background("relabel", lambda: f"review: relabeled {self.relabel(limit, k)} uncertain rows with reviewed rows as demos")

    def _reviewed_examples(self, rows: list[int], reviewed: Mapping[int, Any], k: int, selection: str) -> Any:
        """The reviewed `rows` as a demo pool (with the config's own examples file), `k` demos per row picked by `selection`."""
        from labelmill.config import ExamplesSpec

        spec = self.config.examples
        column = spec.label_column or self.config.gold_column or "label"
        items = [{**{c: _plain(v) for c, v in self.records[i].items()}, column: reviewed[i]} for i in rows]
        return ExamplesSpec(items=items, file=spec.file, label_column=column, k=k, selection=selection, embedding_model=spec.embedding_model)

    def tune_relabel(self, budget_s: float = 300.0, shots: tuple[int, ...] = (0, 4, 8), selectors: tuple[str, ...] = ("similar", "balanced"),
                     min_rows: int = TUNE_MIN_ROWS, seed: int = 0) -> dict[str, Any] | None:
        """The strategy search on the reviews: `labelmill tune` with a seeded half of the reviewed rows as its
        demo pool and the other half (at most TUNE_MAX_DEV rows; the rest join the pool) as its dev rows (the
        people's labels as gold), the same trials a user would run, within `budget_s`. Its trials are in the store (`tune_trials`). The relabel step takes the
        best few-shot strategy (`relabel_k`, `relabel_selection`) only when it beat zero-shot on those dev rows;
        otherwise `relabel_k` is 0 and the step is off (demos do not pay here; a later search may say
        otherwise). Calibration is not searched: the loop's combination refits the model's confidence on
        every review. Returns the outcome (also `relabel_search` and the status's `relabel`), None with fewer
        than `min_rows` (at least TUNE_MIN_ROWS) reviewed rows."""
        from labelmill.strategies.tune.run import tune

        with self._lock:
            reviewed = self.reviewed()
            if len(reviewed) < max(TUNE_MIN_ROWS, min_rows) or not self.names:
                return None
            rows = sorted(reviewed)
            order = np.random.default_rng(seed).permutation(len(rows))
            half = max(len(rows) // 2, len(rows) - TUNE_MAX_DEV)
            pool = sorted(rows[j] for j in order[:half])
            dev_rows = sorted(rows[j] for j in order[half:])
            column = self.config.gold_column or "reviewed_label"
            examples = self._reviewed_examples(pool, reviewed, max(shots), selectors[0])
            cfg = self.config.model_copy(update={"examples": examples, "gold_column": column})
            dev = self.frame.iloc[dev_rows].reset_index(drop=True).copy()
            dev[column] = [reviewed[i] for i in dev_rows]
        report = tune(cfg, dev, project=self.store.path, on_event=self.on_event, shots=tuple(sorted({0, *shots})), selectors=selectors,
                      calibrations=("none",), budget_s=budget_s, limit=None)
        done = [t for t in report["trials"] if t["status"] == "done" and t["accuracy"] is not None]
        zero = next((t["accuracy"] for t in done if t["shots"] == 0), None)
        few = max((t for t in done if t["shots"] > 0), key=lambda t: t["accuracy"], default=None)
        pays = few is not None and zero is not None and few["accuracy"] > zero
        outcome = {"dev_rows": len(dev_rows), "pool_rows": len(pool), "zero_shot_accuracy": zero,
                   "best_few_shot": None if few is None else {"k": few["shots"], "selection": few["selection"], "accuracy": few["accuracy"]},
                   "relabel": "on" if pays else "off", "elapsed_s": report["elapsed_s"]}
        with self._lock:
            self._take_search(outcome)
            self.log.save_search(len(reviewed), outcome)
        return outcome

    def _take_search(self, outcome: dict[str, Any]) -> None:
        """Set the relabel step's demos from a search's outcome (a fresh one, or the last one kept in the store)."""
        best = outcome.get("best_few_shot")
        if outcome.get("relabel") == "on" and best:
            self.relabel_k, self.relabel_selection = int(best["k"]), str(best["selection"])
        else:
            self.relabel_k = 0
        self.relabel_search = outcome

    def tune_in_background(self, budget_s: float = 300.0) -> bool:
        """Start `tune_relabel` on a thread unless a model job is running; False if one was."""
        return self._in_background("tune", lambda: "review: " + search_summary(self.tune_relabel(budget_s)))

    def propose_guideline(self, rounds: int = 1, min_rows: int = PROPOSE_MIN_ROWS, **knobs: Any) -> int:
        """The guideline step: `refine` on the reviewed rows, the people's labels as its gold. The edits it
        proposes from the model's errors there (a rule, a label's definition, each with its evidence) wait on
        the guideline page for a person; the next call scores those a person accepted or edited and commits
        one that helps on refine's held-out half. Returns how many proposals wait; 0 with fewer than
        `min_rows` reviewed rows (refine holds half of them out)."""
        from labelmill.strategies.refine.proposals import ReviewDecisions
        from labelmill.strategies.refine.run import refine

        with self._lock:
            reviewed = self.reviewed()
            if len(reviewed) < max(PROPOSE_MIN_ROWS, min_rows) or not self.names:
                return 0
            column = self.config.gold_column or "reviewed_label"
            rows = sorted(reviewed)
            dev = self.frame.iloc[rows].copy()
            dev.index = rows  # the session's row numbers, which refine's evidence names (whatever index the input had)
            dev[column] = [reviewed[i] for i in rows]
            cfg = self.config if self.config.gold_column else self.config.model_copy(update={"gold_column": column})
        decide = ReviewDecisions(self.store.path, cfg.name or cfg.task)
        refine(cfg, dev, project=self.store.path, rounds=rounds, decide=decide, on_event=self.on_event, **knobs)
        return decide.waiting

    def propose_in_background(self) -> bool:
        """Start `propose_guideline` on a thread unless a model job is running; False if one was."""
        return self._in_background("guideline", lambda: f"review: {self.propose_guideline()} proposed guideline edits wait on the guideline page")

    @property
    def background_job(self) -> str | None:
        """The model job running in the background (relabel, guideline, tier or the strategy search: tune), if any."""
        thread = self._background
        return self._background_kind if thread is not None and thread.is_alive() else None

    # reporting ------------------------------------------------------------------------------------
    STATUS_AGE = 0.5  # seconds the queue's aggregates (its length, reasons, reviews to the target) may be reused

    def status(self) -> dict[str, Any]:
        """The session's figures. The counts of reviews, the agreement and the estimate are always current; the queue's
        aggregates are recomputed at most every `STATUS_AGE` seconds or when a refit changed the queue
        (each is a pass over every row: twenty people polling a 100,000-row project would redo it 20
        times a second)."""
        from labelmill.numeric.agreement import agreement

        r = self.routing
        cached = self._status_cache
        if cached is None or cached[0] is not r or time.monotonic() - cached[1] > self.STATUS_AGE:
            slow = {"in_queue": self._queue_length(), "queue_reasons": r.reason_counts, "reviews_to_target": reviews_to_target(r, self.target)}
            self._status_cache = cached = (r, time.monotonic(), slow)
        estimate = dict(r.estimate)
        settled, conflicts = self.log.final(self.overlap)
        return {
            "rows": len(self.records), "reviewed": len(settled), "reviews": self.log.count(), "in_queue": cached[2]["in_queue"],
            "trusted": int(r.trusted.sum()), "queue_reasons": cached[2]["queue_reasons"], "conflicts": len(conflicts),
            "estimated_accuracy": estimate.get("estimated_accuracy"), "lower_bound": estimate.get("lower_bound"),
            "interval": None if estimate.get("low") is None else [estimate["low"], estimate["high"]], "audit_rows": estimate.get("audit_rows", 0),
            "target": self.target, "reviews_to_target": cached[2]["reviews_to_target"], "target_reached": bool(estimate.get("lower_bound", 0) >= self.target),
            "budget_left": self.budget_left(), "refits": self.refits, "refitting": self._refit_due or bool(self._refit_thread and self._refit_thread.is_alive()),
            "fit": r.fit, "annotators": self.log.annotators(), "agreement": agreement(self.log.shared()),
            "tier": None if not self.tier_model else {"model": self.tier_model, "rows": self.tier_rows, "running": self.background_job == "tier"},
            "relabel": {"k": self.relabel_k, "selection": self.relabel_selection, "search": self.relabel_search, "searching": self.background_job == "tune",
                        "search_after": max(self.tune_after, TUNE_MIN_ROWS) if self.tune_after and not self._tune_started else None,
                        "every": self.relabel_every or None, "running": self.background_job == "relabel"},
            "background": self.background_job,
        }

    def labeled_frame(self) -> tuple[Any, dict[str, str]]:
        """The input columns, the model's label and confidence, and the review columns: review_label,
        reviewed_by, review_status (reviewed / conflict / model), final_label, final_confidence."""
        from labelmill.core.output import labeled_frame

        r = self.routing
        settled, conflicts = self.log.final(self.overlap)
        ratings = self.log.ratings()
        resolvers = {x.row_index: x.annotator for x in self.log.active() if x.kind == "resolve"}
        model = [None if s is None else self.task.output_value(_label(s.label)) for s in self.table.rows]
        conf = [None if s is None else s.confidence for s in self.table.rows]
        errors = ["" if s is not None and s.label is not None else (s.error if s is not None else "pending") for s in self.table.rows]
        final = [self.task.output_value(_label(settled[i])) if i in settled else (None if r.labels[i] is None else self.task.output_value(_label(r.labels[i])))
                 for i in range(len(self.records))]
        status = ["reviewed" if i in settled else ("conflict" if i in conflicts else "model") for i in range(len(self.records))]
        extra = {
            "review_label": ("review_label", [self.task.output_value(_label(settled[i])) if i in settled else None for i in range(len(self.records))]),
            "reviewed_by": ("reviewed_by", [_who(ratings.get(i, {}), resolvers.get(i)) for i in range(len(self.records))]),
            "review_status": ("review_status", status),
            "final_label": ("final_label", final),
            "final_confidence": ("final_confidence", [float(c) for c in r.confidence]),
        }
        return labeled_frame(self.frame, self.config, model, conf, errors, extra)

    # headless -------------------------------------------------------------------------------------
    def simulate(self, answer: Callable[[int], Any], *, annotator: str = "simulated", reviews: int | None = None,
                 until: Callable[[ReviewSession], bool] | None = None, on_step: Callable[[ReviewSession], None] | None = None) -> int:
        """Review in queue order with `answer(row)` as the reviewer (a gold column in tests and the bench),
        through the same submit/refit path as the app. Stops after `reviews`, when `until(session)` holds,
        or when the queue is empty; returns the number of reviews."""
        self.log.add_annotator(annotator) if annotator not in self.log.annotators() else None
        done = 0
        while reviews is None or done < reviews:
            if until is not None and until(self):
                break
            row = self.next_row(annotator)
            if row is None:
                break
            self.submit(annotator, row.index, answer(row.index), kind="simulated")
            done += 1
            if on_step is not None:
                on_step(self)
        return done


def _inputs(frame: Any, cfg: Config) -> Any:
    """The input columns of `frame`: what a labeled output added (llm_, review_, final_ columns) set aside."""
    out = cfg.output
    produced = {out.label_column, out.confidence_column, out.error_column, "llm_distribution", "llm_needs_review", "llm_explanation",
                "llm_label_raw", "llm_confidence_raw"}
    keep = [c for c in frame.columns if c not in produced and not str(c).startswith(("llm_", "review_", "final_"))]
    return frame[keep].reset_index(drop=True)


def _names(cfg: Config, task: Any) -> list[str]:
    """The closed label set the queue and the student work over ([] for a task without one)."""
    return [str(n) for n in (getattr(task, "labels", None) or cfg.label_names)] if cfg.task in CLOSED_TASKS else []


def _student_data(cfg: Config, task: Any, texts: list[str], seed_ok: bool, o: ReviewOptions, store: Any, backend: Any,
                  on_event: EventHandler) -> StudentData:
    """The rows' embeddings (fine-tuned when asked), the config's labeled examples as the student's pool,
    and the seed rows held out from it with the model's distributions on them (when the run's labels
    carry distributions: `seed_ok`)."""
    names, project = _names(cfg, task), store.path
    embeddings = pool_x = None
    pool = _pool(cfg, task, names, o.seed_rows) if names and o.use_examples and (cfg.examples.file or cfg.examples.items) else None
    if names and o.student:
        embeddings, pool_x = _embeddings(cfg, texts, pool, store, on_event)
        if o.student == "finetuned" and pool is not None and embeddings is not None:
            embeddings, pool_x = _finetuned(cfg, texts, pool, names, store, o.finetune_rows, on_event)
    seed_probs = _seed_probs(cfg, pool, names, project, backend, on_event) if pool is not None and seed_ok else None
    data = StudentData(embeddings=embeddings)
    if pool is not None:
        train = pool.train
        data.pool_embeddings, data.pool_labels = None if pool_x is None else pool_x[train], [pool.labels[i] for i in train]
        if seed_probs is not None:
            data.seed_probs, data.seed_labels = seed_probs, [pool.labels[i] for i in pool.seed]
            data.seed_embeddings = None if pool_x is None else pool_x[pool.seed]
    return data


def _router(task: Any, names: list[str], table: Any, data: StudentData, o: ReviewOptions, calibrator: Any) -> Router:
    """The router over the model's labels, with the seed calibration and the trusted threshold."""
    threshold = o.trust_threshold if o.trust_threshold is not None else (calibrator.threshold if calibrator is not None else None)
    probs = table.probs if names and table.has_distribution.any() else None
    shown = [None if v is None else task.output_value(_label(v)) for v in table.labels]  # NER: the spans, not the raw answer
    return Router(names, shown, table.confidence, probs, data, calibrator=calibrator, trust_threshold=threshold,
                  student=bool(o.student) and data.embeddings is not None, prior=o.prior, queue_weight=o.queue_weight)


def probs_ok(table: Any) -> bool:
    return bool(len(table.names)) and bool(table.has_distribution.any())


def _label(value: Any):
    from labelmill.types import Label

    return Label(value=value)


def _who(ratings: Mapping[str, Any], resolver: str | None) -> str | None:
    """The export's reviewed_by: the annotators, and who resolved their disagreement."""
    names = ",".join(sorted(ratings)) or None
    return names if resolver is None else f"{names or ''}; resolved by {resolver}".lstrip("; ")


def _tells_the_model(reason: str) -> bool:
    """A queue reason that gives away what the model said or how sure it was (hidden in blind mode)."""
    return reason.startswith(("confidence", "LLM says", "likely label issue"))


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (str, int, float, bool, list, dict)) or value is None:
        return value
    return str(value)


@dataclass
class Pool:
    """The config's labeled examples, split into the student's training pool and a held-out seed: the
    seed rows are labeled by the model once (a run in the store) and, with the student's out-of-sample
    predictions, calibrate the combination from the first review on."""

    texts: list[str]
    labels: list[str]
    records: list[dict[str, Any]]
    seed: list[int]  # indices held out as the seed
    train: list[int]  # indices the student learns from


def gold_pool(cfg: Config, seed_rows: int | None = None) -> Pool | None:
    """The config's labeled examples as a review session of `cfg` splits them (its `--seed-rows`): the rows
    the student learns from and the held-out seed. None for a task without a closed label set or a config
    without examples. Benchmarks call this to give another arm exactly the gold rows the session gets."""
    from labelmill.tasks import make_task

    task = make_task(cfg)
    names = _names(cfg, task)
    seed_rows = ReviewOptions().seed_rows if seed_rows is None else seed_rows
    return _pool(cfg, task, names, seed_rows) if names and (cfg.examples.file or cfg.examples.items) else None


def _pool(cfg: Config, task: Any, names: list[str], seed_rows: int) -> Pool | None:
    from labelmill.selectors.pickers import load_examples

    label_column = cfg.examples.label_column or cfg.gold_column or "label"
    texts, labels, records = [], [], []
    for item in load_examples(cfg):
        value = item.get(label_column)
        if value is None or str(value) not in names:
            continue
        try:
            texts.append(task.display_text(item))
        except Exception:  # noqa: BLE001 - an example the template cannot render is left out
            continue
        labels.append(str(value))
        records.append(item)
    if not texts:
        return None
    order = [int(i) for i in np.random.default_rng(0).permutation(len(texts))]
    n_seed = min(seed_rows, len(texts) // 4)
    return Pool(texts, labels, records, sorted(order[:n_seed]), sorted(order[n_seed:]))


def _seed_probs(cfg: Config, pool: Pool, names: list[str], project: Any, backend: Any, on_event: EventHandler) -> np.ndarray | None:
    """The model's label distributions on the seed rows (labeled once; later opens read the store)."""
    import pandas as pd

    from labelmill.core import label_rows
    from labelmill.store import Store

    if not pool.seed:
        return None
    frame = pd.DataFrame([pool.records[i] for i in pool.seed])
    result = label_rows(cfg, frame, project=project, backend=backend, on_event=on_event)
    with Store(project) as store:
        probs = store.labels(result.run_id, len(frame), names).probs
    return None if np.isnan(probs).any() else probs


def _embeddings(cfg: Config, texts: list[str], pool: Pool | None, store: Any, on_event: EventHandler) -> tuple[Any, Any]:
    """Sentence embeddings of the rows and of every pool text (None, None without sentence-transformers)."""
    try:
        from labelmill.selectors.embeddings import embed
    except ImportError:
        return None, None
    try:
        rows = embed(texts, model=cfg.examples.embedding_model, store=store)
        return rows, (embed(pool.texts, model=cfg.examples.embedding_model, store=store) if pool is not None else None)
    except Exception as exc:  # noqa: BLE001 - no embeddings: the queue still works on confidence alone
        on_event(Notice(f"review: no sentence embeddings ({type(exc).__name__}: {exc}); no student, no nearest rows"))
        return None, None


def _finetuned(cfg: Config, texts: list[str], pool: Pool, names: list[str], store: Any, max_rows: int, on_event: EventHandler) -> tuple[Any, Any]:
    """Embeddings of the rows and of every pool text from an encoder fine-tuned on the pool's training
    part (at most `max_rows` of it), cached in the store under the fine-tune's hash."""
    import hashlib

    from labelmill.selectors.embeddings import embedding_key
    from labelmill.strategies.students.models import FinetunedStudent

    train = pool.train[:max_rows]
    digest = hashlib.sha256(json.dumps([cfg.examples.embedding_model, names, [(pool.texts[i], pool.labels[i]) for i in train]]).encode()).hexdigest()[:16]
    model_key = f"finetuned:{cfg.examples.embedding_model}:{digest}"
    every = list(dict.fromkeys(texts + pool.texts))
    keys = [embedding_key(model_key, t) for t in every]
    found = store.embeddings_get(keys)
    if len(found) < len(keys):
        on_event(Notice(f"review: fine-tuning the student's encoder on {len(train)} labeled examples (once; cached in the store)"))
        student = FinetunedStudent(len(names), cfg.examples.embedding_model, epochs=1)
        student.fit_texts([pool.texts[i] for i in train], np.array([names.index(pool.labels[i]) for i in train]))
        store.embeddings_put(model_key, dict(zip(keys, student.encode(every))))
        found = store.embeddings_get(keys)
    rows = np.stack([found[embedding_key(model_key, t)] for t in texts])
    return rows, np.stack([found[embedding_key(model_key, t)] for t in pool.texts])


def as_dict(view: RowView) -> dict[str, Any]:
    return dict(view.__dict__)


__all__ = ["Budget", "ReviewSession", "RowView"]


def search_summary(found: dict[str, Any] | None) -> str:
    """What the strategy search on the reviews found, in a line (the app's notice, the headless command's output)."""
    if found is None:
        return f"the strategy search needs {TUNE_MIN_ROWS} reviewed rows"
    best = found["best_few_shot"]
    if found["relabel"] == "on":
        return (f"{best['k']}-shot {best['selection']} demos beat zero-shot on {found['dev_rows']} reviewed rows "
                f"({best['accuracy']:.3f} against {found['zero_shot_accuracy']:.3f}); the relabel step uses them")
    if best is None or found["zero_shot_accuracy"] is None:  # a trial the budget left out
        return f"the strategy search compared nothing on {found['dev_rows']} reviewed rows (raise its budget); the relabel step is off"
    return (f"demos did not beat zero-shot on {found['dev_rows']} reviewed rows ({best['k']}-shot {best['selection']} "
            f"{best['accuracy']:.3f} against {found['zero_shot_accuracy']:.3f}); the relabel step is off")
