"""Cascade: the LLM labels a sample, a student trained on it labels the rest, and only the rows the student
is unsure of go to the LLM (and, optionally, the rows the LLM is still unsure of to a stronger model).

The student's confidence is calibrated on the sample without gold labels: a Platt fit of whether the
student's out-of-fold prediction agrees with the LLM's label, so "0.9" means the student agrees with the
LLM on 90% of such rows. Rows below `target` go to the LLM, the least confident first, at most
`llm_share` of all rows counting the sample. Every label is in the store: the LLM's (and the strong
model's) as runs with full provenance, the student's in the output with `llm_label_source`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelmill.config import Config, derive_config, load_with_notices
from labelmill.errors import ConfigError, InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.core.output import labeled_frame
from labelmill.io import read_rows, write_rows


@dataclass
class CascadeStats:
    rows: int
    sample_rows: int
    llm_rows: int  # sample included
    student_rows: int
    strong_rows: int
    llm_calls_saved: int
    threshold: float
    capped: bool  # more rows were below the threshold than llm_share allowed
    embed_s: float
    llm_s: float
    student_s: float
    strong_s: float
    wall_s: float
    accuracy: float | None = None  # against the gold column when the input has one (reporting only)
    accuracy_by_source: dict[str, float] | None = None


@dataclass
class CascadeResult:
    frame: Any
    stats: CascadeStats
    columns: dict[str, str]
    output_path: Path | None
    routing: CascadeRouting | None = None


@dataclass
class CascadeRouting:
    """What each tier decided on: the LLM's first sample, the student's calibrated confidence on the other
    rows (NaN on the sample), and the LLM's confidence on its rows before a stronger model saw any (NaN elsewhere)."""

    sample: np.ndarray
    student_confidence: np.ndarray
    llm_confidence: np.ndarray


def _strong_config(base: Config, strong: str | dict) -> Config:
    return derive_config(base, model={"name": strong} if isinstance(strong, str) else strong)


def cascade(
    config: str | Path | dict | Config,
    data: Any,
    *,
    sample: float = 200,
    llm_share: float = 0.2,
    target: float = 0.9,
    strong: str | dict | None = None,
    strong_threshold: float = 0.6,
    project: str | Path = "labelmill.db",
    output: str | Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    sampling: str = "diverse",
    backend: Any = None,
    on_event: EventHandler = ignore,
) -> CascadeResult:
    """Label `data` with a student for the easy rows and the LLM for the rest (classification configs).

    `sample`: rows (or a share of rows when < 1) the LLM labels first: with `sampling` "diverse", the
    medoids of as many k-means clusters of the embeddings (the student learns more from rows that cover
    the data), with "random" a random draw with `seed`;
    `llm_share`: the most rows the LLM labels in all; `target`: the student's calibrated confidence below
    which a row goes to the LLM; `strong`: a model name (or a `model:` mapping) for rows whose LLM
    confidence is below `strong_threshold`.
    """
    from labelmill.numeric import calibration as cal_mod
    from labelmill.selectors.embeddings import embed
    from labelmill.core import Job
    from labelmill.store.db import Store
    from labelmill.strategies.students.models import LinearStudent, out_of_fold

    started = time.perf_counter()
    cfg = load_with_notices(config, on_event)
    if cfg.task != "classification":
        raise ConfigError(f"--cascade works on classification tasks; this config is {cfg.task!r}", fix="run without --cascade")
    if not 0 < llm_share <= 1:
        raise ConfigError(f"llm_share must be in (0, 1]; got {llm_share}", fix="pass a share such as 0.2")
    names = cfg.label_names
    L = len(names)
    frame = read_rows(data, cfg.dataset)
    if limit is not None:
        frame = frame.head(limit)
    n = len(frame)
    n_sample = min(n, round(sample * n) if isinstance(sample, float) and sample < 1 else int(sample))
    if n_sample < 20:
        raise InputDataError(f"the cascade's sample has {n_sample} rows; the student needs at least 20", fix="pass a larger --cascade-sample (200 is typical)")
    job = Job(cfg, backend)
    job.check_columns(frame)
    texts = [job.row_input(r) for r in frame.to_dict("records")]
    labels: list[Any] = [None] * n
    confidence: list[float | None] = [None] * n
    source = ["" for _ in range(n)]
    errors = ["" for _ in range(n)]
    strong_s = 0.0
    strong_rows = 0
    try:
        with Store(project) as store:
            t0 = time.perf_counter()
            on_event(Notice(f"cascade: embedding {n} rows for the student"))
            X = embed(texts, cfg.examples.embedding_model, store)
            embed_s = time.perf_counter() - t0
            sample_rows = _sample(X, n_sample, sampling, seed)
            n_sample = len(sample_rows)
            t0 = time.perf_counter()
            _llm(job, store, frame, sample_rows, names, labels, confidence, source, errors, "llm", on_event)
            llm_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            y_rows = np.array([i for i in sample_rows if labels[i] is not None])
            if len(y_rows) < 20:
                raise InputDataError(f"the LLM labeled only {len(y_rows)} of the {n_sample} sample rows", fix="see llm_error in the output; check the model")
            y = np.array([names.index(labels[i]) for i in y_rows])
            oof = out_of_fold(X[y_rows], y, L, seed=seed)
            agree = oof.argmax(axis=1) == y
            calibrator = cal_mod.fit("platt", None, None, oof.max(axis=1), agree, names)
            student = LinearStudent(L, seed=seed).fit(X[y_rows], y)
            rest = np.setdiff1d(np.arange(n), sample_rows)
            probs = student.predict_proba(X[rest])
            conf = calibrator.confidence(probs.max(axis=1))
            budget = max(0, int(llm_share * n) - n_sample)
            unsure = rest[conf < target]
            order = np.argsort(conf[conf < target], kind="stable")
            capped = len(unsure) > budget
            routed = np.sort(unsure[order[:budget]])
            student_confidence = np.full(n, np.nan)
            student_confidence[rest] = conf
            student_s = time.perf_counter() - t0
            on_event(Notice(f"cascade: the student is unsure of {len(unsure)} of {len(rest)} rows; {len(routed)} go to the LLM" + (" (capped by llm_share)" if capped else "")))
            t0 = time.perf_counter()
            _llm(job, store, frame, routed, names, labels, confidence, source, errors, "llm", on_event)
            llm_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            # the student learns from every LLM label it now has, and labels the rows no model saw
            y_rows = np.array([i for i in range(n) if labels[i] is not None and source[i] == "llm"])
            student = LinearStudent(L, seed=seed).fit(X[y_rows], np.array([names.index(labels[i]) for i in y_rows]))
            left = np.array([i for i in range(n) if not source[i]], dtype=int)
            if len(left):
                probs = student.predict_proba(X[left])
                conf_left = calibrator.confidence(probs.max(axis=1))
                for i, p, c in zip(left, probs.argmax(axis=1), conf_left):
                    labels[i], confidence[i], source[i] = names[int(p)], float(c), "student"
            student_s += time.perf_counter() - t0
            llm_confidence = np.array([c if s_ == "llm" and c is not None else np.nan for s_, c in zip(source, confidence)], dtype=float)
            if strong is not None:
                weak = np.array([i for i in range(n) if source[i] == "llm" and confidence[i] is not None and confidence[i] < strong_threshold], dtype=int)
                if len(weak):
                    t0 = time.perf_counter()
                    strong_job = Job(_strong_config(cfg, strong))
                    try:
                        _llm(strong_job, store, frame, weak, names, labels, confidence, source, errors, "strong", on_event)
                    finally:
                        strong_job.backend.close()
                    strong_s = time.perf_counter() - t0
                    strong_rows = len(weak)
    finally:
        if backend is None:
            job.backend.close()
    out, columns = labeled_frame(frame, cfg, labels, confidence, errors, {"source": ("llm_label_source", source)})
    llm_rows = sum(s == "llm" for s in source) + strong_rows  # rows the strong model relabeled were LLM rows first
    stats = CascadeStats(
        rows=n, sample_rows=n_sample, llm_rows=llm_rows, student_rows=sum(s == "student" for s in source), strong_rows=strong_rows,
        llm_calls_saved=n - llm_rows, threshold=target, capped=bool(capped), embed_s=round(embed_s, 2), llm_s=round(llm_s, 2),
        student_s=round(student_s, 2), strong_s=round(strong_s, 2), wall_s=round(time.perf_counter() - started, 2),
    )
    if cfg.gold_column and cfg.gold_column in frame.columns:
        gold = [str(g) for g in frame[cfg.gold_column]]
        stats.accuracy = float(np.mean([g == lab for g, lab in zip(gold, labels)]))
        stats.accuracy_by_source = {s: float(np.mean([gold[i] == labels[i] for i in range(n) if source[i] == s])) for s in sorted(set(source)) if s}
    out_path = write_rows(out, output) if output else None
    on_event(Notice("cascade: " + ", ".join(f"{k} {v}" for k, v in asdict(stats).items() if v is not None)))
    return CascadeResult(out, stats, columns, out_path, CascadeRouting(np.asarray(sample_rows), student_confidence, llm_confidence))


def _sample(X: np.ndarray, k: int, sampling: str, seed: int) -> np.ndarray:
    """Row indices of the LLM's first sample: k-means medoids ("diverse") or a random draw."""
    if sampling == "random" or k >= len(X):
        return np.sort(np.random.default_rng(seed).permutation(len(X))[:k])
    if sampling != "diverse":
        raise ConfigError(f"unknown cascade sampling {sampling!r}", fix="use diverse or random")
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(X)
    picked = set()
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if len(members):
            picked.add(int(members[np.argmin(((X[members] - km.cluster_centers_[c]) ** 2).sum(axis=1))]))
    return np.array(sorted(picked))


def _llm(job, store, frame, rows, names, labels, confidence, source, errors, tag, on_event) -> None:
    """Label `rows` of `frame` with `job` (one resumable run of that subset) and write them into the lists."""
    from labelmill.core import Runner

    if len(rows) == 0:
        return
    sub = frame.iloc[rows].reset_index(drop=True)
    result = Runner(job, store, on_event).run(sub)
    found = store.labels(result.run_id, len(rows), names)
    for j, i in enumerate(rows):
        a = found.get(j)
        if a is None:
            continue
        if a.label is not None and a.label in names:
            labels[i], confidence[i], source[i], errors[i] = a.label, a.confidence, tag, ""
        elif tag == "llm":
            source[i], errors[i] = tag, a.error or "no label"
