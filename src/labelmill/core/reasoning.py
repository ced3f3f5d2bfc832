"""Reasoning and voting: chain-of-thought explanations, self-consistency votes, and the model's checks of its labels.

All of it is more prompts through the same cache and store (config section `reasoning`):

  chain_of_thought  the row's prompt asks for a short explanation first (generated, kept per row); the
                    answer prompt then shows it and asks for the answer, scored over the label set
                    where the task has one, so the confidence stays a distribution
  samples = k       k answers per row: the greedy one and k-1 sampled at `sample_temperature` (with
                    chain_of_thought: k explanations, each answered); the majority wins, its vote share is
                    the confidence and signal `agreement`, the first answer's own confidence is kept as
                    `answer_confidence`, and the distribution is the vote shares
  p_true            "Is the proposed answer correct?" scored yes/no (Kadavath et al.'s P(True)): signal `p_true`
  verbalized        "How likely is it right, 0-9?" scored over the ten digits: signal `verbalized`, the
                    expected value / 9

Checks never change the label or its confidence; they are signals for `labelmill calibrate --method fused`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelmill.errors import TRANSIENT_ERRORS
from labelmill.numeric.confidence import label_distribution
from labelmill.types import Demo, Label, Outcome, ParseFailure, Prompt

EXPLAIN_REQUEST = (
    "Before answering, think step by step: in at most three short sentences, say what in the text decides the answer. "
    "Do not give the answer yet."
)
ANSWER_REQUEST = "Now give the answer only."
P_TRUE_SYSTEM = "You check answers given to a task. Answer yes or no."
VERBAL_SYSTEM = "You rate answers given to a task. Answer with one digit."
YES_NO = ("yes", "no")
DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class Call:
    """One kind of model request: what the prompts are answered with, and what the cache key holds."""

    kind: str  # main | verify | explain | sample | verbalized
    method: str  # score | generate
    candidates: tuple[str, ...] = ()
    max_tokens: int = 0
    temperature: float = 0.0
    seed: int = 0


def explain_prompt(prompt: Prompt) -> Prompt:
    """The row's prompt, asking for an explanation before the answer (same system and demos: shared prefix)."""
    return Prompt(system=prompt.system, turns=prompt.turns, user=f"{prompt.user}\n\n{EXPLAIN_REQUEST}")


def with_demo_reasons(prompt: Prompt, demos: Sequence[Demo]) -> Prompt:
    """Chain of thought with explained demos: each demo's question shown as the row's answer prompt is (its text,
    its reasoning, the request for the answer), so the demos teach the step the row takes. A prompt whose turns
    are not one per demo (a task that builds its own) is left as it is."""
    if len(prompt.turns) != len(demos) or not any(d.explanation for d in demos):
        return prompt
    turns = tuple((_reasoned(user, d.explanation) if d.explanation else user, answer) for (user, answer), d in zip(prompt.turns, demos))
    return Prompt(system=prompt.system, turns=turns, user=prompt.user)


def _reasoned(user: str, explanation: str) -> str:
    return f"{user}\n\nReasoning: {explanation.strip()}\n\n{ANSWER_REQUEST}"


def answer_prompt(prompt: Prompt, explanation: str) -> Prompt:
    """The row's prompt with the explanation shown, asking for the answer."""
    return Prompt(system=prompt.system, turns=prompt.turns, user=_reasoned(prompt.user, explanation))


def answer_text(value: Any) -> str:
    """A label value as the checks show it."""
    if isinstance(value, str):
        return value if value else "(no answer)"
    return json.dumps(value, ensure_ascii=False)


def _check_user(task_prompt: Prompt, value: Any, question: str) -> str:
    return f"Task: {task_prompt.system}\n\n{task_prompt.user}\n\nProposed answer: {answer_text(value)}\n{question}"


def p_true_prompt(task_prompt: Prompt, label: Label) -> Prompt:
    return Prompt(system=P_TRUE_SYSTEM, turns=(), user=_check_user(task_prompt, label.value, "Is the proposed answer correct?"))


def verbalized_prompt(task_prompt: Prompt, label: Label) -> Prompt:
    question = "How likely is it that the proposed answer is correct? Answer with one digit from 0 (surely wrong) to 9 (surely right)."
    return Prompt(system=VERBAL_SYSTEM, turns=(), user=_check_user(task_prompt, label.value, question))


def p_yes(logprobs: Sequence[float]) -> float:
    return float(label_distribution(logprobs)[0])


def expected_digit(logprobs: Sequence[float]) -> float:
    """The expected answer on the 0-9 scale, divided by 9."""
    probs = label_distribution(logprobs)
    return float(probs @ np.arange(len(probs)) / 9.0)


def _key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def vote(outcomes: Sequence[Outcome], explanations: Sequence[str | None] | None = None) -> tuple[Outcome, str | None]:
    """Majority vote over one row's answers (the first is the greedy one and breaks ties).

    Returns the winning outcome (the first answer that gave the winning value, with confidence = its vote
    share, distribution = vote shares, signals agreement / answer_confidence / votes) and the explanation
    behind it. An answer that failed for good (it did not parse) counts as a vote for nobody; an answer
    whose request failed transiently (a timeout, a server error) fails the row, typed, so that a rerun asks
    again instead of keeping a vote short of one path. When all failed, the first failure stands.
    """
    transient = next((o for o in outcomes if isinstance(o, ParseFailure) and o.kind in TRANSIENT_ERRORS), None)
    if transient is not None:
        return transient, None
    explanations = list(explanations or [None] * len(outcomes))
    labels = [(o, e) for o, e in zip(outcomes, explanations) if isinstance(o, Label)]
    if not labels:
        return outcomes[0], explanations[0]
    counts = Counter(_key(o.value) for o, _ in labels)
    top = max(counts.values())
    winner_key = next(_key(o.value) for o, _ in labels if counts[_key(o.value)] == top)
    first = labels[0][0]
    winner, explanation = next((o, e) for o, e in labels if _key(o.value) == winner_key)
    n = len(outcomes)
    distribution = {k: c / n for k, c in counts.items()} if all(isinstance(o.value, str) for o, _ in labels) else None
    signals = {
        **winner.signals,
        "agreement": top / n,
        "votes": float(n),
        "failed_votes": float(sum(isinstance(o, ParseFailure) for o in outcomes)),
    }
    if first.confidence is not None:
        signals["answer_confidence"] = float(first.confidence)
    return Label(value=winner.value, confidence=top / n, distribution=distribution, signals=signals), explanation
