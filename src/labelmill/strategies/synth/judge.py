"""`labelmill judge`: an LLM as judge, scored over a closed answer set (one forward pass per verdict).

- **Pairwise:** each pair is judged in both orders (first answer shown as A, then as B). A verdict that
  changes with the order is a position flip and counts as a tie; the flip rate and the position
  consistency are reported. P(first is better) is the mean over the two orders.
  `mode="pointwise"` asks instead, of each answer alone, "Is the proposed answer correct?" (P(yes)
  scored) and prefers the answer with the higher P(yes): nothing is shown in an order, so the verdict
  cannot flip. Small models that answer "A" to every A/B question (the 0.5B and 1.5B here) judge well
  this way.
- **Rubric:** an absolute 1-5 score (Prometheus-style), optionally against a reference answer; the
  expected score under the judge's distribution over the five digits, and its argmax.
- Where rows carry a human verdict (or score), the judge's agreement with people: accuracy and Cohen's kappa.

Every request goes through the store's cache, so a rerun asks nothing twice and a crashed run resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import softmax
from pydantic import ConfigDict

from labelmill.config import Config
from labelmill.core import ask_scores
from labelmill.core.job import Call
from labelmill.core.strategy import Options
from labelmill.errors import InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.io import read_rows, write_rows
from labelmill.numeric.agreement import cohen_kappa
from labelmill.strategies.synth.common import FrameResult, model_config
from labelmill.types import Prompt

PAIR_SYSTEM = ("You are a fair and strict judge. Compare two answers to the question and decide which is better: correct, "
               "relevant to the question and supported by the context. Do not let the order or the length of the answers sway you. "
               "Answer with A or B only.")
RUBRIC_SYSTEM = ("You are a fair and strict judge. Score the answer from 1 to 5: 1 wrong or irrelevant, 2 mostly wrong, 3 partly right, "
                 "4 right with small flaws, 5 fully right and relevant. Answer with the digit only.")
POINT_SYSTEM = ("You are a fair and strict judge. Decide whether the proposed answer to the question is correct: right, relevant to the "
                "question and supported by the context. Answer with yes or no only.")
SIDES = ("A", "B")
YES_NO = ("yes", "no")
MODES = ("pairwise", "pointwise")
DIGITS = ("1", "2", "3", "4", "5")
VERDICTS = ("first", "second", "tie")


JudgeResult = FrameResult


def judge_config(model: str | dict | Config | None = None) -> Config:
    """A judge's config: the model settings (a name, a dict of model settings, or a config to take them from)."""
    return model_config(model, name="judge")


class PairsOptions(Options):
    """judge pairs' knobs: the judge, the question / first / second / context / human columns, the mode (pairwise or pointwise) and the batch size."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str | dict | Config | None = None
    question: str = "question"
    first: str = "first"
    second: str = "second"
    context: str | None = "context"
    human: str | None = "human"
    mode: str = "pairwise"
    batch: int = 64


def judge_pairs(
    data: Any, options: PairsOptions | dict | None = None, *, project: str | Path = "labelmill.db", output: str | Path | None = None, backend: Any = None, on_event: EventHandler = ignore, **knobs: Any,
) -> JudgeResult:
    """Judge each row's two answers (columns `first`, `second`) to `question` (with `context` if the rows
    have it) in both orders. `human`: a column with first / second / tie (or a / b) to measure agreement.
    `mode`: "pairwise" (an A/B question per order) or "pointwise" (P(correct) of each answer alone)."""
    o = PairsOptions.of(options, knobs)
    model, question, first, second, context, human, mode, batch = o.model, o.question, o.first, o.second, o.context, o.human, o.mode, o.batch
    if mode not in MODES:
        raise InputDataError(f"judge pairs: unknown mode {mode!r}", fix=f"use one of: {', '.join(MODES)}")
    frame = read_rows(data)
    missing = [c for c in (question, first, second) if c not in frame.columns]
    if missing:
        raise InputDataError(f"judge pairs: no column {missing[0]!r} in the rows", fix=f"name the columns with --question/--first/--second; the rows have: {', '.join(map(str, frame.columns))}")
    cfg = judge_config(model)
    rows = frame.to_dict("records")
    on_event(Notice(f"judge: {len(rows)} pairs, {'both orders' if mode == 'pairwise' else 'each answer alone'}, with {cfg.model.name}"))
    p1, p2, extra = _pair_probabilities(cfg, rows, o, context is not None and context in frame.columns, project, backend)
    v1, v2 = np.where(p1 >= 0.5, "first", "second"), np.where(p2 >= 0.5, "first", "second")
    verdict = np.where(v1 == v2, v1, "tie")
    out = frame.copy()
    out["judge_p_first_order1"], out["judge_p_first_order2"] = p1.round(4), p2.round(4)
    out["judge_p_first"] = ((p1 + p2) / 2).round(4)
    out["judge_verdict"] = verdict
    for key, values in extra.items():
        out[key] = values
    flips = float((v1 != v2).mean()) if len(rows) else 0.0
    figures: dict[str, Any] = {"judge_model": f"{cfg.model.backend}:{cfg.model.name}", "mode": mode, "pairs": len(rows), "flip_rate": round(flips, 4),
                               "position_consistency": round(1 - flips, 4), "first_wins": round(float((verdict == "first").mean()), 4) if len(rows) else 0.0,
                               "ties": round(float((verdict == "tie").mean()), 4) if len(rows) else 0.0,
                               "order1_first_share": round(float((v1 == "first").mean()), 4) if len(rows) else 0.0}
    if human and human in frame.columns:
        figures.update(_agreement_with_people(frame[human], verdict, v1, p1, p2))
    path = write_rows(out, output) if output else None
    return JudgeResult(out, figures, path)


def _pair_probabilities(cfg: Config, rows: list[dict[str, Any]], o: PairsOptions, has_context: bool, project: str | Path,
                        backend: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """P(first is better) in each order (pairwise: an A/B question per order; pointwise: from each answer's
    P(correct) alone, the same in either order) and the extra columns pointwise adds."""
    question, first, second, context, batch = o.question, o.first, o.second, o.context, o.batch

    def ask(row: dict[str, Any], a: str, b: str) -> Prompt:
        shown = f"Context: {_text(row.get(context))}\n\n" if has_context else ""
        return Prompt(PAIR_SYSTEM, (), f"{shown}Question: {_text(row[question])}\n\nAnswer A: {_text(a)}\n\nAnswer B: {_text(b)}\n\nWhich answer is better, A or B?")

    def ask_one(row: dict[str, Any], answer: str) -> Prompt:
        shown = f"Context: {_text(row.get(context))}\n\n" if has_context else ""
        asked = "Is the proposed answer correct according to the context?" if has_context else "Is the proposed answer correct?"
        return Prompt(POINT_SYSTEM, (), f"{shown}Question: {_text(row[question])}\n\nProposed answer: {_text(answer)}\n\n{asked}")

    if o.mode == "pointwise":
        prompts = [ask_one(r, r[first]) for r in rows] + [ask_one(r, r[second]) for r in rows]
        yes = _p_first(_scores(cfg, prompts, Call("judge_point", "score", YES_NO), project, backend, batch))
        pa, pb = yes[: len(rows)], yes[len(rows):]
        p = np.where(pa + pb > 0, pa / np.maximum(pa + pb, 1e-12), 0.5)  # the same in either order
        return p, p, {"judge_p_correct_first": pa.round(4), "judge_p_correct_second": pb.round(4)}
    forward = [ask(r, r[first], r[second]) for r in rows]
    swapped = [ask(r, r[second], r[first]) for r in rows]
    p1 = _p_first(_scores(cfg, forward, Call("judge_pair", "score", SIDES), project, backend, batch))
    p2 = 1.0 - _p_first(_scores(cfg, swapped, Call("judge_pair", "score", SIDES), project, backend, batch))  # first is B here
    return p1, p2, {}


def _agreement_with_people(said_column: Any, verdict: np.ndarray, v1: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> dict[str, Any]:
    """The verdicts against people's (first / second / tie): accuracy (a tie where people chose is wrong), on
    the decided rows, kappa, with one order only, and with the position bias averaged out."""
    figures: dict[str, Any] = {}
    people = [_human(v) for v in said_column]
    known = [i for i, h in enumerate(people) if h is not None]
    if not known:
        return figures
    said, judged = [people[i] for i in known], [str(verdict[i]) for i in known]
    figures["human_rows"] = len(known)
    figures["accuracy"] = round(float(np.mean([a == b for a, b in zip(said, judged)])), 4)
    decided = [(a, b) for a, b in zip(said, judged) if b != "tie"]
    figures["accuracy_on_decided"] = round(float(np.mean([a == b for a, b in decided])), 4) if decided else None
    figures["kappa"] = round(cohen_kappa(said, judged), 4)
    order1 = [str(v1[i]) for i in known]
    figures["accuracy_one_order"] = round(float(np.mean([a == b for a, b in zip(said, order1)])), 4)
    mean = ["first" if (p1[i] + p2[i]) / 2 >= 0.5 else "second" for i in known]
    figures["accuracy_mean_of_orders"] = round(float(np.mean([a == b for a, b in zip(said, mean)])), 4)
    return figures


class ScoresOptions(Options):
    """judge scores' knobs: the judge, the question / answer / reference / context / human columns and the batch size."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str | dict | Config | None = None
    question: str = "question"
    answer: str = "answer"
    reference: str | None = "reference"
    context: str | None = "context"
    human: str | None = "human_score"
    batch: int = 64


def judge_scores(
    data: Any, options: ScoresOptions | dict | None = None, *, project: str | Path = "labelmill.db", output: str | Path | None = None, backend: Any = None, on_event: EventHandler = ignore, **knobs: Any,
) -> JudgeResult:
    """Score each row's `answer` to `question` from 1 to 5 (against `reference` where the rows have it)."""
    o = ScoresOptions.of(options, knobs)
    model, question, answer, reference, context, human, batch = o.model, o.question, o.answer, o.reference, o.context, o.human, o.batch
    frame = read_rows(data)
    missing = [c for c in (question, answer) if c not in frame.columns]
    if missing:
        raise InputDataError(f"judge scores: no column {missing[0]!r} in the rows", fix=f"name the columns with --question/--answer; the rows have: {', '.join(map(str, frame.columns))}")
    cfg = judge_config(model)
    with_ref = reference is not None and reference in frame.columns
    with_ctx = context is not None and context in frame.columns
    prompts = []
    for row in frame.to_dict("records"):
        shown = f"Context: {_text(row.get(context))}\n\n" if with_ctx else ""
        ref = f"\n\nReference answer (scores 5): {_text(row.get(reference))}" if with_ref else ""
        prompts.append(Prompt(RUBRIC_SYSTEM, (), f"{shown}Question: {_text(row[question])}{ref}\n\nAnswer to score: {_text(row[answer])}\n\nScore (1-5):"))
    on_event(Notice(f"judge: scoring {len(prompts)} answers with {cfg.model.name}"))
    logprobs = _scores(cfg, prompts, Call("judge_rubric", "score", DIGITS), project, backend, batch)
    probs = softmax(logprobs, axis=1)
    expected = probs @ np.arange(1, 6)
    out = frame.copy()
    out["judge_score"] = probs.argmax(axis=1) + 1
    out["judge_expected_score"] = expected.round(3)
    figures: dict[str, Any] = {"judge_model": f"{cfg.model.backend}:{cfg.model.name}", "rows": len(frame), "mean_score": round(float(expected.mean()), 4) if len(frame) else None}
    if human and human in frame.columns:
        scores = pd.to_numeric(frame[human], errors="coerce")
        known = scores.notna().to_numpy()
        if known.any():
            said = scores[known].round().astype(int).tolist()
            got = out["judge_score"][known].astype(int).tolist()
            figures["human_rows"] = int(known.sum())
            figures["accuracy"] = round(float(np.mean([a == b for a, b in zip(said, got)])), 4)
            figures["kappa"] = round(cohen_kappa(said, got), 4)
            if known.sum() > 2 and np.std(said) > 0:
                figures["pearson"] = round(float(np.corrcoef(said, expected[known])[0, 1]), 4)
    path = write_rows(out, output) if output else None
    return JudgeResult(out, figures, path)


def _scores(cfg: Config, prompts: list[Prompt], call: Call, project: str | Path, backend: Any, batch: int) -> np.ndarray:
    """(n, len(call.candidates)) the judge's log-probabilities, through the core's cache (`core.ask_scores`)."""
    return ask_scores(cfg, prompts, call.candidates, kind=call.kind, project=project, backend=backend, batch=batch)


def _p_first(logprobs: np.ndarray) -> np.ndarray:
    """P(A) from log-probabilities over (A, B)."""
    if not len(logprobs):
        return np.zeros(0)
    return softmax(logprobs, axis=1)[:, 0]


def _human(value: Any) -> str | None:
    text = str(value).strip().casefold() if value is not None and not (isinstance(value, float) and np.isnan(value)) else ""
    return {"first": "first", "a": "first", "1": "first", "second": "second", "b": "second", "2": "second", "tie": "tie"}.get(text)


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else " ".join(str(value).split())
