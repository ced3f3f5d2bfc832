"""The same-labels arms every comparison carries (bench/README, "Same labels, same clock"): given the gold
rows a method gets, (a) the student alone trained on them and (b) the LLM calibrated on them. Each arm is
timed from its first step: loading the encoder, embedding, the fit; labeling the seed rows, the fit, the
calibrated pass. The benches (cascade, weak, review) turn these into their own figures."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ENCODER = "all-mpnet-base-v2"


@dataclass
class StudentArm:
    names: list[str]
    probs: np.ndarray  # (rows, labels): the student's distributions on the rows
    seconds: float
    gold_rows: int  # the gold rows it learned from
    left_out: int  # gold rows whose label is not one of the config's labels

    @property
    def labels(self) -> np.ndarray:
        return np.array(self.names)[self.probs.argmax(axis=1)]

    def accuracy(self, gold: Any) -> float:
        return float((self.labels == np.asarray(gold).astype(str)).mean())


def student_alone(config: Any, gold: pd.DataFrame, rows: pd.DataFrame, store: Path, label_column: str = "label",
                  encoder: str = ENCODER) -> StudentArm:
    """Logistic regression on `encoder` embeddings of the `gold` rows (labels in `label_column`), its
    distributions on `rows`. A store of its own (`store`): nothing embedded by another arm is reused."""
    from labelmill.selectors.embeddings import embed, unload_all
    from labelmill.store import Store
    from labelmill.strategies.students.models import LinearStudent
    from labelmill.tasks import make_task

    task, names = make_task(config), [str(n) for n in config.label_names]
    known = gold[gold[label_column].astype(str).isin(names)]
    if known.empty:
        raise ValueError(f"no gold row has one of the labels {names} in column {label_column!r}")
    started = time.perf_counter()
    with Store(store) as db:
        X_gold = embed([task.render(r) for r in known.to_dict("records")], encoder, db)
        X = embed([task.render(r) for r in rows.to_dict("records")], encoder, db)
    y = np.array([names.index(v) for v in known[label_column].astype(str)])
    probs = LinearStudent(len(names), seed=0).fit(X_gold, y).predict_proba(X)
    seconds = time.perf_counter() - started
    unload_all()  # the next arm loads what it needs on its own clock
    return StudentArm(names, probs, seconds, len(known), len(gold) - len(known))


@dataclass
class CalibratedArm:
    frame: pd.DataFrame  # the rows with the calibrated llm_label / llm_confidence
    calibrator: Any
    seconds: float  # the seed rows' pass, the fit and the calibrated pass (the rows' answers come from the cache)


def llm_calibrated(config: Any, seed: pd.DataFrame, rows: pd.DataFrame, project: Path, output: Path | None = None) -> CalibratedArm:
    """The LLM given the seed rows as calibration: `calibrate` labels them and fits (method auto), then the
    rows are labeled with it. Run on the project that holds the uncalibrated pass, so its answers are read
    back and the seconds are the calibration's own (add the uncalibrated pass's for the arm's total)."""
    from labelmill import api

    started = time.perf_counter()
    cal = api.calibrate(config, seed, project=project)
    knobs = {"output": output} if output is not None else {}
    result = api.label(config, rows, project=project, calibration=cal, **knobs)
    seconds = time.perf_counter() - started
    frame = pd.read_csv(output) if output is not None else result.frame
    return CalibratedArm(frame, cal, seconds)
