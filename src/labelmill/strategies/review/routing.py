"""The numbers behind the review queue: each row's current label and calibrated confidence, what a review
of it is worth, and the dataset's estimated accuracy without gold.

For a closed label set the current label of an unreviewed row comes from a combination refitted after
every batch of reviews (the loop):

- the LLM's label distribution (as stored by the run);
- a student (logistic regression on sentence embeddings) trained on the config's labeled examples and
  on every reviewed row, so each review teaches it;
- the combination: a multinomial logistic model over the two log-distributions (a weight each and a
  bias per label), fitted on the reviewed rows with out-of-fold student predictions. With too few
  reviews it starts from the LLM's distribution as it is (or the seed calibration).

A review is worth the chance that the label shown is wrong: 1 - confidence. The queue also says why a
row is in it (low confidence, LLM and student disagree, a likely label issue), and rows whose confidence
is at or above the trusted threshold never enter it.

The estimate: reviewed rows count as right, the others at their calibrated confidence. Once the random
audit rows are there (the review session draws them), that sum is corrected by the audit rows' mean error
and comes with a 95% interval that covers the truth whatever the calibration (`numeric/estimate.py`);
before, its bound adds the spread of that sum and the calibration error measured on held-out reviewed
rows (each reviewed row is scored by a model fitted without it).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict

from labelmill.core.strategy import Options

EPS = 1e-6
PARALLEL_FITS_ABOVE = 20_000_000  # rows x labels x dimensions of a student fit above which the held-out fits run two at a time


class Reasons(Sequence):
    """Why each row is queued, made when a row is shown (strings for every one of 100,000 rows would cost
    each refit half a second): its confidence, the LLM and the student disagreeing, cleanlab's rank of
    the LLM's label as a likely issue, two labels nearly tied. Reviewed rows have none."""

    def __init__(self, confidence: np.ndarray, reviewed: np.ndarray, llm_labels: list[Any], student_labels: list[Any] | None = None,
                 issue_rank: np.ndarray | None = None, gap: np.ndarray | None = None):
        self.confidence, self.reviewed, self.llm, self.student = confidence, reviewed, llm_labels, student_labels
        self.issue_rank = issue_rank if issue_rank is not None else np.zeros(len(confidence), dtype=int)  # per row, 0: no issue
        self.gap = gap

    def __len__(self) -> int:
        return len(self.confidence)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if self.reviewed[i]:
            return []
        why = [f"confidence {self.confidence[i]:.2f}"]
        if self.student is not None and self.student[i] != self.llm[i]:
            why.append(f"LLM says {self.llm[i]}, student says {self.student[i]}")
        if self.issue_rank[i]:
            why.append(f"likely label issue: cleanlab ranks the LLM's label #{self.issue_rank[i]} most suspect")
        if self.gap is not None and self.gap[i] < 0.1:
            why.append("two labels nearly tied")
        return why

    def counts(self, rows: np.ndarray) -> dict[str, int]:
        """{kind of reason: how many of `rows` have it} (the status's summary of the queue)."""
        rows = rows[~self.reviewed[rows]] if len(rows) else rows
        out = {"low confidence": int(len(rows))}
        if self.student is not None and len(rows):
            out["LLM and student disagree"] = sum(1 for i in rows.tolist() if self.student[i] != self.llm[i])
        out["likely label issue"] = int((self.issue_rank[rows] > 0).sum()) if len(rows) else 0
        if self.gap is not None:
            out["two labels nearly tied"] = int((self.gap[rows] < 0.1).sum())
        return {k: v for k, v in out.items() if v}


@dataclass
class Routing:
    """Each row's current label, confidence and why it is (or is not) in the queue."""

    labels: list[Any]  # (n,) current label: the reviewed one, else the model's
    confidence: np.ndarray  # (n,) calibrated confidence of the current label; 1.0 for reviewed rows
    value: np.ndarray  # (n,) what a review is worth (0 for reviewed rows)
    reasons: Reasons  # (n,) why the row is queued (made when asked)
    llm_labels: list[Any]
    student_labels: list[Any] | None
    reviewed: np.ndarray  # (n,) bool
    trusted: np.ndarray  # (n,) bool: at or above the trusted threshold
    estimate: dict[str, float] = field(default_factory=dict)
    fit: dict[str, Any] = field(default_factory=dict)
    log_position: int = -1  # how many log entries the reviews it was fitted on spanned (set by the session)

    def queue(self, limit: int | None = None) -> list[int]:
        """Unreviewed, untrusted rows, most valuable first."""
        order = self.order
        return list(order if limit is None else order[:limit])

    @functools.cached_property
    def reason_counts(self) -> dict[str, int]:
        """How many queued rows have each kind of reason (counted once per routing, over its queue)."""
        return self.reasons.counts(np.array(self.order, dtype=int))

    @functools.cached_property
    def queued(self) -> frozenset[int]:
        return frozenset(self.order)

    @functools.cached_property
    def order(self) -> tuple[int, ...]:
        """The queue, sorted once (a routing is not changed after it is made; every request reads it)."""
        rows = np.flatnonzero(~self.reviewed & ~self.trusted)
        return tuple(int(i) for i in rows[np.argsort(-self.value[rows], kind="stable")])


from labelmill.numeric.combination import combine, fit_combination  # noqa: E402  (re-exported: tests and the bench read them here)
from labelmill.strategies.students.models import surest_rows  # noqa: E402  (re-exported: the loop's prior)


@dataclass
class StudentData:
    """What the student and the combination learn from besides the reviews: the rows' embeddings (n, d), the
    config's labeled examples (`pool_*`, the student's training rows) and the seed rows held out from the
    student, with the LLM's distributions on them (`seed_*`, where the combination is fitted)."""

    embeddings: np.ndarray | None = None
    pool_embeddings: np.ndarray | None = None
    pool_labels: Sequence[Any] = ()
    seed_probs: np.ndarray | None = None
    seed_labels: Sequence[Any] = ()
    seed_embeddings: np.ndarray | None = None


class RouterOptions(Options):
    """The router's knobs: a seed calibrator of the LLM, the trusted threshold (rows above never enter the
    queue), the reviews needed before the combination is refitted, whether a student learns, the random
    seed, and whether confidences are recalibrated on the reviews. `prior`: with no labeled examples, what
    the student learns from besides the reviews: "llm", the LLM's own surest labels (per label, the more
    confident half of the rows it gave that label, at most 200; each weighs `prior_weight` against a
    review's 2), "self", the same from the LLM until the student's first fit on reviews, then the student's
    own surest labels of its latest fit (self-training), "auto", the student's own only while it beats the
    LLM on the random audit rows (`_follow_prior`), or None. `queue_weight`: how much a reviewed row the queue chose counts in the
    combination's fit, against 1 for a seed row or a random audit row (the queue's rows are the hard ones:
    counted fully they pull the combination towards them)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    calibrator: Any = None
    trust_threshold: float | None = None
    min_fit: int = 30
    student: bool = True
    seed: int = 0
    recalibrate: bool = True
    prior: Literal["llm", "self", "auto"] | None = "auto"
    prior_weight: float = 0.5
    queue_weight: float = 1.0


class Router:
    """Refits the loop's models from the reviewed rows and routes every row.

    `llm_probs` (n, k) over `names` (None for a task without a closed label set: then the LLM's own
    confidence, seed-calibrated when a calibrator is given, ranks the rows); `embeddings` (n, d) of the
    rows and `pool_embeddings`/`pool_labels` (the config's labeled examples) feed the student.
    """

    def __init__(
        self, names: Sequence[str], llm_labels: Sequence[Any], llm_confidence: np.ndarray, llm_probs: np.ndarray | None = None,
        data: StudentData | None = None, options: RouterOptions | dict | None = None, **knobs: Any,
    ):
        o, d = RouterOptions.of(options, knobs), data or StudentData()
        embeddings, pool_embeddings, pool_labels = d.embeddings, d.pool_embeddings, d.pool_labels
        seed_probs, seed_labels, seed_embeddings = d.seed_probs, d.seed_labels, d.seed_embeddings
        calibrator, trust_threshold, min_fit, student, seed, recalibrate = o.calibrator, o.trust_threshold, o.min_fit, o.student, o.seed, o.recalibrate
        self.prior, self.prior_weight, self.queue_weight = o.prior, o.prior_weight, o.queue_weight
        self._last_student: Any = None  # the latest refit's student: the next refit starts from its weights
        self.names = list(names)
        self.n = len(llm_labels)
        self.llm_labels = list(llm_labels)
        self._ids: np.ndarray | None = None  # see _llm_ids
        self.llm_confidence = np.nan_to_num(np.asarray(llm_confidence, dtype=float), nan=0.0)
        self.embeddings = embeddings
        self.calibrator = calibrator
        self.trust_threshold = trust_threshold
        self.min_fit = min_fit
        self.recalibrate = recalibrate
        self.seed = seed
        self.llm_probs = None
        if llm_probs is not None and self.names:
            p = np.asarray(llm_probs, dtype=float)
            ok = ~np.isnan(p).any(axis=1)
            fill = np.full((self.n, len(self.names)), 1.0 / len(self.names))
            self.llm_probs = np.where(ok[:, None], np.nan_to_num(p), fill)
            if calibrator is not None and getattr(calibrator, "method", "") not in ("isotonic", "platt", "fused"):
                self.llm_probs = calibrator.distribution(self.llm_probs)
        index = {name: i for i, name in enumerate(self.names)}
        self.pool_x = pool_embeddings if pool_embeddings is not None and len(pool_labels) else None
        self.pool_y = np.array([index.get(str(v), -1) for v in pool_labels], dtype=int) if len(pool_labels) else np.zeros(0, dtype=int)
        if self.pool_x is not None:
            keep = self.pool_y >= 0
            self.pool_x, self.pool_y = self.pool_x[keep], self.pool_y[keep]
        self.use_student = bool(student and embeddings is not None and self.llm_probs is not None)
        self.prior_rows = surest_rows(self.llm_probs) if self.llm_probs is not None and self.use_student and self.pool_x is None and self.prior is not None else np.zeros(0, dtype=int)
        self._own_probs: np.ndarray | None = None  # prior "self"/"auto": the student's latest distributions when its surest labels are the next prior
        # the seed: labeled rows held out from the student, with the LLM's distributions on them
        self.seed_p = self.seed_x = None
        self.seed_y = np.zeros(0, dtype=int)
        if seed_probs is not None and len(seed_labels) and self.llm_probs is not None:
            y = np.array([index.get(str(v), -1) for v in seed_labels], dtype=int)
            keep = y >= 0
            p = np.asarray(seed_probs, dtype=float)[keep]
            if calibrator is not None and getattr(calibrator, "method", "") not in ("isotonic", "platt", "fused"):
                p = calibrator.distribution(p)
            self.seed_p, self.seed_y = p, y[keep]
            self.seed_x = None if seed_embeddings is None else np.asarray(seed_embeddings)[keep]

    def update_llm(self, rows: Sequence[int], probs: np.ndarray, labels: Sequence[Any], confidence: np.ndarray) -> None:
        """Rows the LLM labeled again (the loop's relabel step): their distribution, label and confidence."""
        self._ids = None  # the LLM's label indices, made again at the next refit
        for j, i in enumerate(rows):
            if self.llm_probs is not None and not np.isnan(probs[j]).any():
                self.llm_probs[i] = probs[j]
            if labels[j] is not None:
                self.llm_labels[i] = labels[j]
                self.llm_confidence[i] = float(np.nan_to_num(confidence[j], nan=0.0))

    # ------------------------------------------------------------------------------------------
    def route(self, reviewed: Mapping[int, Any], audit: Sequence[int] = (), audit_weight: Sequence[float] | None = None) -> Routing:
        """Refit on the reviewed rows {row: label} and route every row. `audit`: the reviewed rows that were
        drawn at random for the audit (see `estimate_with_audit`), `audit_weight` their weights in the
        estimate, in the same order (all 1 when None: uniform draws)."""
        weight_of = dict(zip((int(i) for i in audit), audit_weight)) if audit_weight is not None else {}
        n = self.n
        given = [(int(i), v) for i, v in reviewed.items() if 0 <= int(i) < n]
        is_reviewed = np.zeros(n, dtype=bool)
        is_reviewed[[i for i, _ in given]] = True
        audit = [int(i) for i in audit if 0 <= int(i) < n and int(i) in reviewed]
        if self.llm_probs is None:
            return self._route_by_confidence(reviewed, is_reviewed, audit, weight_of)
        rows, gold = _in_row_order(given, self.names, n)
        parts = [self.llm_probs]
        student = held_student = seed_student = None
        n_seed = len(self.seed_y)
        fit: dict[str, Any] = {"reviewed_for_fit": int(len(rows)), "seed_rows": int(n_seed)}
        if self.use_student:
            student, held_student, seed_student = self._student(rows, gold, audit)
            parts.append(student)
        fit_parts, fit_gold = self._fit_data(rows, gold, student, held_student, seed_student)
        if len(rows) > FIT_MAX_ROWS and all(len(p) == len(fit_gold) for p in fit_parts):
            # the combination has a few weights: a sample of the reviewed rows (every audit row in it) fits
            # them as well, and a refit on a 100,000-row project stops holding the interpreter for a second
            keep = _fit_sample(rows, audit, FIT_MAX_ROWS, self.seed)
            fit_parts, fit_gold = [_seed_and(p, n_seed, keep) for p in fit_parts], _seed_and(fit_gold, n_seed, keep)
            rows, gold, fit["fit_sample"] = rows[keep], gold[keep], int(len(keep))
        if len(fit_gold) >= self.min_fit and len(np.unique(fit_gold)) >= 2 and all(len(p) == len(fit_gold) for p in fit_parts):
            audited = set(audit)
            fit_weight = np.concatenate([np.ones(n_seed), [1.0 if int(i) in audited else self.queue_weight for i in rows]])
            theta = fit_combination(fit_parts, fit_gold, weight=fit_weight)
            held_q = self._held_out_combination(fit_parts, fit_gold, fit_weight, start=theta)
            q = combine(parts, theta)
            fit.update({"weights": [round(float(w), 3) for w in theta[: len(parts)]], "bias": [round(float(b), 3) for b in theta[len(parts) :]]})
            held_conf, held_ok = held_q[:n_seed].max(axis=1), held_q[:n_seed].argmax(axis=1) == fit_gold[:n_seed]
            if not n_seed:
                held_conf, held_ok = held_q.max(axis=1), held_q.argmax(axis=1) == fit_gold
        else:
            q = self.llm_probs if student is None else combine(parts, np.concatenate([[1.0, 0.0], np.zeros(len(self.names))]))
            held_q = held_conf = held_ok = None
        predicted = q.argmax(axis=1)
        confidence = q.max(axis=1)
        audit_conf, audit_ok, audit_w = _audit_answers(audit, rows, gold, held_q, n_seed, confidence, predicted, weight_of)
        if self.recalibrate and n_seed >= 50 and held_conf is not None and 0 < held_ok.mean() < 1:
            # the combination's confidence mapped to P(right) on the seed's held-out rows (Platt): rows like
            # the whole dataset, so the estimate does not inherit an overconfident fit on the hard rows
            from labelmill.numeric.calibration import fit_platt

            a, c = fit_platt(held_conf, held_ok.astype(float))
            confidence, audit_conf = _platt(confidence, a, c), _platt(audit_conf, a, c)
            fit["platt"] = [round(a, 3), round(c, 3)]
        labels: list[Any] = np.array(self.names, dtype=object)[predicted].tolist()
        labels = _with_reviews(labels, given)
        confidence = np.where(is_reviewed, 1.0, confidence)
        student_labels = None if student is None else np.array(self.names, dtype=object)[student.argmax(axis=1)].tolist()
        reasons = self._reasons(confidence, student_labels, is_reviewed, q)
        value = np.where(is_reviewed, 0.0, 1.0 - confidence)
        trusted = self._trusted(confidence, is_reviewed)
        estimate = estimate_with_audit(confidence, is_reviewed, audit_conf, audit_ok, held_conf, held_ok, audit_w)
        return Routing(labels, confidence, value, reasons, list(self.llm_labels), student_labels, is_reviewed, trusted, estimate, fit)

    def _fit_data(self, rows: np.ndarray, gold: np.ndarray, student: np.ndarray | None, held_student: np.ndarray | None,
                  seed_student: np.ndarray | None) -> tuple[list[np.ndarray], np.ndarray]:
        """The combination's fitting rows: the seed (rows like the whole dataset) and the reviewed rows (the
        hard ones): each part's distributions there (the student's held out), and their labels."""
        n_seed = len(self.seed_y)
        fit_gold = np.concatenate([self.seed_y, gold]) if n_seed else gold
        fit_parts = [np.vstack([self.seed_p, self.llm_probs[rows]]) if n_seed else self.llm_probs[rows]]
        if student is not None:
            if n_seed and seed_student is None:
                seed_student = self.seed_p  # no seed embeddings: the student is taken to agree with the LLM there
            other = held_student if held_student is not None else np.zeros((0, len(self.names)))
            fit_parts.append(np.vstack([seed_student, other]) if n_seed else other)
        return fit_parts, fit_gold

    def _trusted(self, confidence: np.ndarray, is_reviewed: np.ndarray) -> np.ndarray:
        if self.trust_threshold is None:
            return np.zeros(self.n, dtype=bool)
        return (~is_reviewed) & (confidence >= self.trust_threshold)

    def _student(self, rows: np.ndarray, gold: np.ndarray, audit: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(n, k) student probabilities for every row, out-of-fold ones for the reviewed rows, and
        out-of-sample ones for the seed rows (never in its training data). The audit rows' own come from
        one more fit on every reviewed row but them: the estimate compares what the model says of a row
        it never saw, and a fold that leaves out a fifth of the reviews (the queue's rare labels among
        them) says less than the model that labels the rows left: measured on Banking77, the 5-fold
        answers made the interval miss the truth low (0.86 of checkpoints covered)."""
        from labelmill.strategies.students.models import LinearStudent, one_blas_thread

        k = len(self.names)
        X = self.embeddings
        pool_x, pool_y, pool_w = self._pool(rows)
        if (len(pool_y) == 0 or len(np.unique(pool_y)) < 2) and len(rows) < 10:  # nothing to learn from yet: the student agrees with the LLM
            return self.llm_probs.copy(), None if len(rows) == 0 else self.llm_probs[rows], self.seed_p
        train_x = np.vstack([pool_x, X[rows]]) if len(rows) else pool_x
        train_y = np.concatenate([pool_y, gold]) if len(rows) else pool_y
        weight = np.concatenate([pool_w, np.full(len(rows), 2.0)])
        model = LinearStudent(k, seed=self.seed).fit(train_x, train_y, weight, start=self._last_student)
        self._last_student = model
        full = model.predict_proba(X)
        on_seed = model.predict_proba(self.seed_x) if self.seed_x is not None and len(self.seed_y) else None
        if len(rows) == 0:
            return full, None, on_seed
        held = np.zeros((len(rows), k))
        folds = 5 if len(rows) >= 10 else 2
        order = np.random.default_rng(self.seed).permutation(len(rows))
        audited = np.isin(rows, np.asarray(list(audit), dtype=int))
        # (rows it learns from, rows it answers): each fold, then the audit rows (see above)
        fits = [(np.setdiff1d(order, order[f::folds]), order[f::folds]) for f in range(folds)]
        if audited.any() and not audited.all():
            fits.append((np.flatnonzero(~audited), np.flatnonzero(audited)))

        def held_out(fit: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            train, test = fit
            fy = np.concatenate([pool_y, gold[train]])
            if len(np.unique(fy)) < 2:
                return test, full[rows[test]]
            fx, fw = np.vstack([pool_x, X[rows[train]]]), np.concatenate([pool_w, np.full(len(train), 2.0)])
            return test, LinearStudent(k, seed=self.seed).fit(fx, fy, fw, start=model).predict_proba(X[rows[test]])

        if len(train_y) * k * X.shape[1] >= PARALLEL_FITS_ABOVE:  # big fits (many labels) two at a time: numpy's BLAS leaves the interpreter
            from concurrent.futures import ThreadPoolExecutor

            with one_blas_thread(), ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(held_out, fits))
        else:
            answers = [held_out(fit) for fit in fits]
        for test, probs in answers:
            held[test] = probs
        self._follow_prior(rows, gold, audited, full, held)
        return full, held, on_seed

    def _follow_prior(self, rows: np.ndarray, gold: np.ndarray, audited: np.ndarray, full: np.ndarray, held: np.ndarray) -> None:
        """Which surest labels the next fits learn from (`_pool`). "self": the student's own (this fit's) from its
        first fit on reviews on. "auto": the student's own while its held-out answers on the random audit rows
        (at least 10) are right more often than the LLM's labels there, else the LLM's: self-training where the
        student already knows more than the LLM (AG News: 0.5B 0.51), the LLM's labels where they are the better
        teacher (SST-2 with the 1.5B tier: 0.91)."""
        if self.prior == "self":
            self._own_probs = full
        elif self.prior == "auto" and audited.sum() >= 10:
            ours = np.mean(held[audited].argmax(axis=1) == gold[audited])
            theirs = np.mean(self.llm_probs[rows[audited]].argmax(axis=1) == gold[audited])
            self._own_probs = full if ours > theirs else None

    def _pool(self, reviewed_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, weight) the student learns from besides the reviews: the config's labeled examples, or
        else the surest labels on rows nobody reviewed: the LLM's, or the student's own (`_follow_prior`)."""
        X = self.embeddings
        if self.pool_x is not None:
            return self.pool_x, self.pool_y, np.ones(len(self.pool_y))
        said = self.llm_probs if self._own_probs is None else self._own_probs
        rows = np.setdiff1d(self.prior_rows if self._own_probs is None else surest_rows(said), reviewed_rows)
        if not len(rows):
            return np.zeros((0, X.shape[1]), dtype=X.dtype), np.zeros(0, dtype=int), np.zeros(0)
        return X[rows], said[rows].argmax(axis=1), np.full(len(rows), self.prior_weight)

    def _held_out_combination(self, held_parts: Sequence[np.ndarray], gold: np.ndarray, weight: np.ndarray, folds: int = 5,
                              start: np.ndarray | None = None) -> np.ndarray:
        """Each reviewed row's combined distribution from a combination fitted without it."""
        n = len(gold)
        out = np.zeros((n, len(self.names)))
        order = np.random.default_rng(self.seed + 1).permutation(n)
        for f in range(folds):
            test = order[f::folds]
            train = np.setdiff1d(order, test)
            theta = fit_combination([p[train] for p in held_parts], gold[train], weight=weight[train], start=start)
            out[test] = combine([p[test] for p in held_parts], theta)
        return out

    def _reasons(self, confidence: np.ndarray, student_labels: list[Any] | None, is_reviewed: np.ndarray, q: np.ndarray) -> Reasons:
        margin = np.sort(q, axis=1)
        gap = margin[:, -1] - (margin[:, -2] if q.shape[1] > 1 else 0.0)
        return Reasons(confidence, is_reviewed, list(self.llm_labels), student_labels, self._label_issue_rank(q), gap)

    def _label_issue_rank(self, q: np.ndarray) -> np.ndarray:
        """Per row, the rank (1 = most suspect; 0 = none) of its LLM label among the label issues cleanlab
        finds under the loop's distributions; without cleanlab (or past LABEL_ISSUES_MAX_ROWS rows), among
        the rows where the model now prefers another label, least probable label first."""
        ids = self._llm_ids()
        ok = ids >= 0
        try:
            from cleanlab.filter import find_label_issues

            if len(np.unique(ids[ok])) < 2:
                raise ValueError("one label only")
            if ok.sum() > LABEL_ISSUES_MAX_ROWS:
                raise ValueError("too many rows to find label issues at every refit")
            found = find_label_issues(ids[ok], q[ok], return_indices_ranked_by="self_confidence", n_jobs=1)
            rows = np.flatnonzero(ok)[found]
        except (ImportError, ValueError):
            rows = np.flatnonzero(ok & (q.argmax(axis=1) != np.maximum(ids, 0)))
            rows = rows[np.argsort(q[rows, ids[rows]], kind="stable")]
        rank = np.zeros(len(q), dtype=int)
        rank[np.asarray(rows, dtype=int)] = np.arange(1, len(rows) + 1)
        return rank

    def _llm_ids(self) -> np.ndarray:
        """The LLM's label of each row as an index into the names (-1: none), made once."""
        if self._ids is None:
            index = {name: j for j, name in enumerate(self.names)}
            self._ids = np.array([index.get(str(v), -1) if v is not None else -1 for v in self.llm_labels], dtype=int)
        return self._ids

    def _route_by_confidence(self, reviewed: Mapping[int, Any], is_reviewed: np.ndarray, audit: Sequence[int] = (),
                             weight_of: Mapping[int, float] | None = None) -> Routing:
        import json

        conf = self.llm_confidence.copy()
        if self.calibrator is not None:
            conf = np.nan_to_num(self.calibrator.confidence(conf), nan=0.0)
        audited = np.array(list(audit), dtype=int)
        audit_ok = np.array([json.dumps(self.llm_labels[i], sort_keys=True) == json.dumps(reviewed[int(i)], sort_keys=True) for i in audited], dtype=bool)
        labels = list(self.llm_labels)
        for i, value in reviewed.items():
            if 0 <= int(i) < self.n:
                labels[int(i)] = value
        confidence = np.where(is_reviewed, 1.0, conf)
        reasons = Reasons(confidence, is_reviewed, list(self.llm_labels))
        value = np.where(is_reviewed, 0.0, 1.0 - confidence)
        return Routing(labels, confidence, value, reasons, list(self.llm_labels), None, is_reviewed, self._trusted(confidence, is_reviewed),
                       estimate_with_audit(confidence, is_reviewed, conf[audited], audit_ok, None, None,
                                           np.array([(weight_of or {}).get(int(i), 1.0) for i in audited], dtype=float)), {})


def _in_row_order(given: list[tuple[int, Any]], names: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, label indices) of the reviewed rows whose label is one of `names`, in row order (so the folds
    never depend on the order of the log)."""
    index = {name: i for i, name in enumerate(names)}
    at = np.fromiter((i for i, _ in given), dtype=int, count=len(given))
    said = np.fromiter((index.get(str(v), -1) for _, v in given), dtype=int, count=len(given))
    order = np.argsort(np.where(said >= 0, at, n), kind="stable")[: int((said >= 0).sum())]
    return at[order], said[order]


def _with_reviews(labels: list[Any], given: list[tuple[int, Any]]) -> list[Any]:
    for i, v in given:
        labels[i] = v
    return labels


def _seed_and(values: np.ndarray, n_seed: int, keep: np.ndarray) -> np.ndarray:
    """The seed's part of `values` whole, and the reviewed rows' part at the positions `keep`."""
    return np.concatenate([values[:n_seed], values[n_seed:][keep]])


FIT_MAX_ROWS = 2_000  # reviewed rows the combination is fitted on at most (a sample beyond: see `_fit_sample`)


def _fit_sample(rows: np.ndarray, audit: Sequence[int], most: int, seed: int) -> np.ndarray:
    """Positions in `rows` (sorted) of the rows a big refit fits on: every audit row (the estimate's unbiased
    part), the rest a random draw (fixed by `seed`), in row order."""
    audited = np.flatnonzero(np.isin(rows, np.asarray(list(audit), dtype=int)))
    others = np.setdiff1d(np.arange(len(rows)), audited)
    drawn = np.random.default_rng(seed).choice(others, size=max(0, min(len(others), most - len(audited))), replace=False)
    return np.sort(np.concatenate([audited, drawn]).astype(int))


LABEL_ISSUES_MAX_ROWS = 20_000  # above this, a refit ranks label issues by the rule below, not by cleanlab's (0.3 s on 100,000 rows)


def _platt(values: np.ndarray, a: float, c: float) -> np.ndarray:
    logit = np.log(np.clip(values, EPS, 1 - EPS) / np.clip(1 - values, EPS, 1.0))
    return 1.0 / (1.0 + np.exp(-np.clip(a * logit + c, -30, 30)))


def _audit_answers(audit: Sequence[int], rows: np.ndarray, gold: np.ndarray, held_q: np.ndarray | None, n_seed: int, confidence: np.ndarray,
                   predicted: np.ndarray, weight_of: Mapping[int, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(confidence, right, weight) of what a model fitted without each audit row said of it: out of fold once
    the combination is fitted (`held_q` over the seed rows, then `rows`); before, the LLM's own distribution,
    which no review has touched. The weight: `weight_of` the row (1 where it has none)."""
    wanted = np.array([int(i) for i in audit], dtype=int)
    pos = np.searchsorted(rows, wanted)  # (rows are in row order)
    at = pos[(pos < len(rows)) & (rows[np.minimum(pos, max(len(rows) - 1, 0))] == wanted)] if len(rows) else np.zeros(0, dtype=int)
    audited = rows[at] if len(at) else np.zeros(0, dtype=int)
    weights = np.array([weight_of.get(int(i), 1.0) for i in audited], dtype=float)
    if held_q is not None and len(at):
        return held_q[n_seed + at].max(axis=1), held_q[n_seed + at].argmax(axis=1) == gold[at], weights
    return confidence[audited], predicted[audited] == gold[at], weights


AUDIT_FOR_INTERVAL = 10  # audit rows before the estimate comes with an interval (and the stop rule uses its low end)


def estimate_with_audit(confidence: np.ndarray, is_reviewed: np.ndarray, audit_conf: np.ndarray, audit_ok: np.ndarray,
                        held_conf: np.ndarray | None, held_ok: np.ndarray | None, audit_weight: np.ndarray | None = None) -> dict[str, Any]:
    """With `AUDIT_FOR_INTERVAL` audit rows or more: the audit-corrected estimate and its 95% interval
    (`numeric.estimate.accuracy_interval`; `lower_bound` is the interval's low end); before, the estimate
    from the confidences alone, with `estimate_accuracy`'s bound and no interval."""
    if len(audit_ok) < AUDIT_FOR_INTERVAL:
        return {**estimate_accuracy(confidence, is_reviewed, held_conf, held_ok), "audit_rows": int(len(audit_ok)), "low": None, "high": None}
    from labelmill.numeric.estimate import accuracy_interval

    left = confidence[~is_reviewed]
    found = accuracy_interval(left, int(is_reviewed.sum()), audit_conf, audit_ok, frontier=float(left.min()) if len(left) else None,
                              audit_weight=audit_weight)
    return {**found, "lower_bound": found["low"], "reviewed": int(is_reviewed.sum()), "rows": len(confidence)}


def estimate_accuracy(confidence: np.ndarray, is_reviewed: np.ndarray, held_conf: np.ndarray | None, held_ok: np.ndarray | None, z: float = 1.645) -> dict[str, float]:
    """The dataset's accuracy without gold: reviewed rows count as right, the others at their confidence.

    The lower bound takes off z standard deviations of that sum (each unreviewed row right with its
    confidence) and the calibration error in the large measured on held-out reviewed rows (how much
    their confidences overstated their accuracy), when there are any.
    """
    n = len(confidence)
    unreviewed = ~is_reviewed
    c = confidence[unreviewed]
    expected = float(is_reviewed.sum() + c.sum())
    spread = math.sqrt(float((c * (1 - c)).sum()))
    overstated = 0.0
    if held_conf is not None and held_ok is not None and len(held_conf) >= 20:
        overstated = max(0.0, float(held_conf.mean() - held_ok.mean())) * 0.5
    lower = (expected - z * spread - overstated * len(c)) / n if n else float("nan")
    return {"estimated_accuracy": expected / n if n else float("nan"), "lower_bound": max(0.0, lower), "reviewed": int(is_reviewed.sum()), "rows": n}


def reviews_to_target(routing: Routing, target: float) -> int | None:
    """How many more reviews, in queue order, should bring the estimate to `target` (counting each
    review as turning its row's confidence into a right answer, with no gain from the loop: an upper
    figure). None if reviewing every queued row would not reach it."""
    n = len(routing.confidence)
    expected = routing.estimate.get("estimated_accuracy", 0.0) * n
    need = target * n
    if expected >= need:
        return 0
    for count, i in enumerate(routing.queue(), start=1):
        expected += 1.0 - routing.confidence[i]
        if expected >= need:
            return count
    return None
