"""Question answering: extractive (a span of the context, or unanswerable), multiple choice, free form.

Extractive answers are aligned to the context like NER mentions (exact, then ignoring case, then
whitespace), so they are always spans of it. An answer found nowhere in the context means the model
made one up: with unanswerable questions allowed it becomes "unanswerable" (signal `not_in_context`),
otherwise a typed failure. Each answer is then checked by a scored yes/no question (`verify_prompt`);
below `qa.answerable_threshold` it becomes "unanswerable". The probability of starting the answer with
'unanswerable' is kept as a signal. Multiple-choice options are lettered and the letters scored.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from labelmill.numeric.confidence import distribution_signals, label_distribution, mean_token_prob
from labelmill.types import Generation, Label, Outcome, ParseFailure, Prompt, ScoreResult
from labelmill.config import Strict
from labelmill.registry import Section
from labelmill.tasks.base import (
    RowInput,
    Task,
    is_missing,
    load_structured,
    normalise,
    strip_answer_lead,
)
from labelmill.tasks.spans import occurrences

if TYPE_CHECKING:
    from labelmill.config import Config


class QASpec(Strict):
    """Question answering: where the question, context and options are, and the answer style."""

    mode: Literal["extractive", "multiple_choice", "free_form"] = Field(
        "extractive", description="extractive: the answer is a span of the context; multiple_choice: one of the options; free_form: any text."
    )
    context_column: str = Field("context", description="Column with the passage (extractive answers are spans of it).")
    question_column: str = Field("question", description="Column with the question.")
    options_column: str | None = Field(None, description="multiple_choice: column with the options (a list, or text joined by options_separator).")
    options_separator: str = "|"
    allow_unanswerable: bool = Field(True, description="extractive: the model may answer that the context does not say.")
    verify: bool = Field(
        True, description="extractive: check each answer with a scored yes/no question (does the context answer this?)."
    )
    answerable_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="extractive + verify: answer 'unanswerable' when P(yes) of the check is below this."
    )


SECTION = Section("qa", QASpec, owner="task qa", fingerprint="always")


UNANSWERABLE = "unanswerable"
_UNANSWERABLE_TEXTS = {
    "unanswerable", "not answerable", "no answer", "none", "n/a", "unknown", "not mentioned", "not stated",
    "the context does not say", "cannot be answered", "not in the context", "not found",
}
LETTERS = "ABCDEFGH"


class QATask(Task):
    default_max_tokens = 24

    @classmethod
    def configure(cls, config: Config) -> None:
        if config.qa.mode == "multiple_choice" and not config.qa.options_column:
            raise ValueError("qa.options_column: multiple_choice needs the column that holds the options")

    @classmethod
    def default_input_template(cls, config: Config) -> str:
        return "Question: {question}" if config.qa.mode == "multiple_choice" else "Context: {context}\nQuestion: {question}"

    def __init__(self, config):
        super().__init__(config)
        self.spec = config.qa
        self.mode = self.spec.mode

    # rows ----------------------------------------------------------------------------------------
    def required_columns(self) -> list[str]:
        needed = super().required_columns()
        if self.mode == "extractive":
            needed.append(self.spec.context_column)
        if self.mode == "multiple_choice" and self.spec.options_column:
            needed.append(self.spec.options_column)
        return list(dict.fromkeys(needed))

    def options(self, row: Mapping[str, Any]) -> list[str]:
        value = load_structured(row.get(self.spec.options_column)) if self.spec.options_column else None
        if isinstance(value, (list, tuple, np.ndarray)):
            return [str(v) for v in value][: len(LETTERS)]
        if is_missing(value):
            return []
        return [p.strip() for p in str(value).split(self.spec.options_separator) if p.strip()][: len(LETTERS)]

    def render(self, row: Mapping[str, Any]) -> str:
        text = super().render(row)
        if self.mode == "multiple_choice":
            text += "\n" + "\n".join(f"{LETTERS[i]}) {option}" for i, option in enumerate(self.options(row)))
        return text

    # prompt --------------------------------------------------------------------------------------
    def system_prompt(self) -> str:
        guidelines = self.config.guidelines.strip()
        if self.mode == "extractive":
            default = "Answer the question with the shortest span of text copied exactly from the context."
            rule = f" If the context does not contain the answer, answer {UNANSWERABLE}." if self.spec.allow_unanswerable else ""
            return (guidelines or default) + rule + " Answer with the span only."
        if self.mode == "multiple_choice":
            return (guidelines or "Answer the question.") + " Answer with the letter of the correct option only."
        return (guidelines or "Answer the question.") + " Answer briefly."

    def demo_answer(self, gold: Any, row: Mapping[str, Any] | None = None) -> str:
        answers = gold or [""]
        first = answers[0]
        if self.mode == "multiple_choice" and row is not None:
            options = self.options(row)
            if first in options:
                return LETTERS[options.index(first)]
        return first if first else UNANSWERABLE

    # answers -------------------------------------------------------------------------------------
    def candidates(self) -> list[str] | None:
        return list(LETTERS) if self.mode == "multiple_choice" else None

    def from_scores(self, result: ScoreResult, row: RowInput | None = None) -> Outcome:
        n = len(self.options(row.fields)) if row is not None else len(LETTERS)
        if n == 0:
            return ParseFailure("no_options", "", f"the row has no options in column {self.spec.options_column!r}")
        probs = label_distribution(result.logprobs[:n])
        best = int(np.argmax(probs))
        options = self.options(row.fields) if row is not None else list(LETTERS)
        return Label(
            value=options[best],
            confidence=float(probs[best]),
            distribution={options[i]: float(p) for i, p in enumerate(probs)},
            signals=distribution_signals(probs),
        )

    def parse(self, generation: Generation, row: RowInput | None = None) -> Outcome:
        text = strip_answer_lead(generation.text).strip()
        text = text.splitlines()[0].strip() if text else ""
        if self.mode == "multiple_choice":
            return self._parse_choice(text, generation, row)
        p_none = self.unanswerable_probability(generation) if self.mode == "extractive" and self.spec.allow_unanswerable else 0.0
        says_none = _is_unanswerable(text)
        signals = {"p_unanswerable": p_none}
        if self.mode == "extractive" and self.spec.allow_unanswerable and says_none:
            return Label(value="", confidence=mean_token_prob(generation.token_logprobs), signals=signals)
        if says_none:
            if self.mode == "extractive":
                return ParseFailure("unanswerable_not_allowed", generation.text, "the model said the context has no answer")
            return Label(value="", confidence=mean_token_prob(generation.token_logprobs), signals=signals)
        if not text:
            return ParseFailure("empty", generation.text, "the model returned no answer")
        answer_conf = mean_token_prob(generation.token_logprobs)
        confidence = None if answer_conf is None else answer_conf * (1.0 - p_none)
        if self.mode == "free_form":
            return Label(value=text, confidence=confidence, signals=signals)
        context = str(row.fields.get(self.spec.context_column, "")) if row is not None else ""
        span = align_answer(context, text)
        if span is None:
            if self.spec.allow_unanswerable:  # the model made up an answer the context does not hold
                signals["not_in_context"] = 1.0
                return Label(value="", confidence=0.5 * (1.0 - (answer_conf or 0.0)), signals=signals)
            return ParseFailure("not_in_context", generation.text, "the answer is not a span of the context")
        start, end, fuzzy = span
        signals.update({"answer_start": float(start), "fuzzy_aligned": float(fuzzy)})
        return Label(value=context[start:end], confidence=confidence, signals=signals)

    def _parse_choice(self, text: str, generation: Generation, row: RowInput | None) -> Outcome:
        options = self.options(row.fields) if row is not None else []
        match = re.match(r"^\(?([A-H])\b[).:]?", text)
        if match and LETTERS.index(match.group(1)) < len(options):
            return Label(value=options[LETTERS.index(match.group(1))], confidence=mean_token_prob(generation.token_logprobs))
        for option in options:
            if normalise(option) == normalise(text):
                return Label(value=option, confidence=mean_token_prob(generation.token_logprobs))
        return ParseFailure("no_option", generation.text, "the answer names no option")

    VERIFY_SYSTEM = (
        "Some questions look related to the context but ask about something the context never states. "
        "Decide whether the proposed answer is what the context says about this exact question. Answer yes or no."
    )

    def verify_prompt(self, row: RowInput, label: Label) -> Prompt | None:
        if self.mode != "extractive" or not self.spec.allow_unanswerable or not self.spec.verify or label.value == "":
            return None
        question = str(row.fields.get(self.spec.question_column, ""))
        context = str(row.fields.get(self.spec.context_column, ""))
        return Prompt(system=self.VERIFY_SYSTEM, turns=(), user=f"Context: {context}\nQuestion: {question}\nProposed answer: {label.value}")

    def apply_verification(self, label: Label, p_yes: float) -> Outcome:
        signals = {**label.signals, "p_answerable": p_yes}
        if p_yes < self.spec.answerable_threshold:
            return Label(value="", confidence=1.0 - p_yes, signals=signals)
        confidence = None if label.confidence is None else label.confidence * p_yes
        return Label(value=label.value, confidence=confidence, signals=signals)

    @staticmethod
    def unanswerable_probability(generation: Generation) -> float:
        """Probability mass of first tokens that begin the word 'unanswerable' (from the top first tokens)."""
        total = 0.0
        for token, logprob in generation.top_logprobs.items():
            piece = token.strip().casefold()
            if len(piece) >= 2 and UNANSWERABLE.startswith(piece):
                total += float(np.exp(logprob))
        return min(total, 1.0)

    # gold and metrics ----------------------------------------------------------------------------
    def parse_gold(self, value: Any) -> Any:
        """A list of acceptable answers; [''] means unanswerable; None when the cell is missing."""
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        data = load_structured(value) if isinstance(value, str) and value.strip()[:1] in "[{" else value
        if isinstance(data, dict):
            data = data.get("text") or data.get("answers") or []
        if isinstance(data, (list, tuple, np.ndarray)):
            answers = [str(a) for a in data if not is_missing(a)]
            return answers or [""]
        text = str(data).strip()
        return [""] if _is_unanswerable(text) or not text else [text]

    def parse_output(self, value: Any) -> Any:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        return str(value)

    def example_gold(self, item: Mapping[str, Any], label_column: str) -> Any:
        return self.parse_gold(item[label_column]) or [""]

    def is_correct(self, gold: Any, predicted: Any) -> bool:
        if predicted is None:
            return False
        if self.mode == "multiple_choice":
            return normalise(str(predicted)) in {normalise(g) for g in gold}
        return exact_match(predicted, gold) == 1.0

    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        n = len(gold)
        completed = sum(p is not None for p in predicted)
        if self.mode == "multiple_choice":
            correct = sum(self.is_correct(g, p) for g, p in zip(gold, predicted))
            return {"n_rows": n, "accuracy": correct / n if n else 0.0, "accuracy_on_completed": correct / completed if completed else 0.0, "completion_rate": completed / n if n else 0.0}
        em = [exact_match(p, g) if p is not None else 0.0 for g, p in zip(gold, predicted)]
        f1 = [token_f1(p, g) if p is not None else 0.0 for g, p in zip(gold, predicted)]
        has_answer = [g != [""] for g in gold]
        out: dict[str, Any] = {
            "n_rows": n,
            "exact_match": float(np.mean(em)) if n else 0.0,
            "f1": float(np.mean(f1)) if n else 0.0,
            "accuracy": float(np.mean(em)) if n else 0.0,
            "accuracy_on_completed": float(sum(em) / completed) if completed else 0.0,
            "completion_rate": completed / n if n else 0.0,
        }
        for name, mask in (("answerable", has_answer), ("unanswerable", [not h for h in has_answer])):
            idx = [i for i, m in enumerate(mask) if m]
            out[name] = {
                "rows": len(idx),
                "exact_match": float(np.mean([em[i] for i in idx])) if idx else None,
                "f1": float(np.mean([f1[i] for i in idx])) if idx else None,
                "said_unanswerable": sum(1 for i in idx if predicted[i] == ""),
            }
        return out

    def extra_outputs(self, value: Any, record: Mapping[str, Any]) -> dict[str, Any]:
        if self.mode != "extractive":
            return {}
        if value == "":
            return {"answer_start": -1}
        context = str(record.get(self.spec.context_column, ""))
        hits = occurrences(context, str(value))
        return {"answer_start": hits[0][0] if hits else -1}


# ----------------------------------------------------------------------------------------------


def _is_unanswerable(text: str) -> bool:
    norm = normalise(text)
    return norm in _UNANSWERABLE_TEXTS or norm.startswith(UNANSWERABLE)


def align_answer(context: str, answer: str) -> tuple[int, int, bool] | None:
    """(start, end, fuzzy) of the answer in the context; a near miss is the best window by token F1 >= 0.6."""
    answer = answer.strip().strip("\"'“”").rstrip(".").strip()
    if not answer:
        return None
    hits = occurrences(context, answer)
    if hits:
        return hits[0][0], hits[0][1], False
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", context)]
    target = len(answer.split())
    best, best_span = 0.0, None
    for size in range(max(1, target - 2), target + 3):
        for i in range(max(0, len(words) - size) + 1):
            start, end = words[i][0], words[i + size - 1][1]
            score = token_f1(context[start:end], [answer])
            if score > best:
                best, best_span = score, (start, end)
    if best_span is None or best < 0.6:
        return None
    start, end = best_span
    while end > start and context[end - 1] in string.punctuation:
        end -= 1
    return start, end, True


_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(predicted: str, gold: Sequence[str]) -> float:
    return max(float(normalize_answer(predicted) == normalize_answer(g)) for g in gold)


def _f1(predicted: str, gold: str) -> float:
    p, g = normalize_answer(predicted).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def token_f1(predicted: str, gold: Sequence[str]) -> float:
    """SQuAD token F1, the best over the gold answers."""
    return max(_f1(predicted, g) for g in gold)
