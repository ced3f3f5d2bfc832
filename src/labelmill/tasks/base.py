"""The task seam: a prompt builder, a pure parser, and metrics. A new task type is one module."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labelmill.template import render_row, template_fields
from labelmill.types import Demo, Generation, Label, Outcome, ParseFailure, Prompt, ScoreResult

if TYPE_CHECKING:
    from labelmill.config import Config


@dataclass(frozen=True)
class RowInput:
    """What a parser may look at besides the answer: the row as shown to the model, and its columns."""

    text: str
    fields: Mapping[str, Any]


class Task(ABC):
    """Prompt builder + pure parser + metrics for one task type."""

    default_max_tokens = 32

    @classmethod
    def configure(cls, config: Config) -> None:
        """Fill this task type's config defaults and check its sections; raise ValueError naming the key."""

    @classmethod
    def default_input_template(cls, config: Config) -> str:
        """How a row is shown when the config gives no input_template."""
        return "{text}"

    @classmethod
    def template(cls, name: str) -> str:
        """The commented starting config `labelmill init NAME` writes (built-ins ship theirs in labelmill/templates)."""
        from importlib import resources

        path = resources.files("labelmill").joinpath("templates", f"{name}.yaml")
        if not path.is_file():
            raise FileNotFoundError(name)
        return path.read_text(encoding="utf-8")

    def __init__(self, config: Config):
        self.config = config
        self.labels = config.label_names

    # rows ----------------------------------------------------------------------------------
    def required_columns(self) -> list[str]:
        return template_fields(self.config.input_template or "{text}")

    def render(self, row: Mapping[str, Any]) -> str:
        """The row as the model sees it."""
        return render_row(self.config.input_template or "{text}", row)

    def display_text(self, row: Mapping[str, Any]) -> str:
        """The row as a person reads it (the review page; span offsets point into it): as the model sees it,
        unless the task shows the model more (roles: the sentence alone, the prompt marks the predicate)."""
        return self.render(row)

    # prompt building -----------------------------------------------------------------------
    @abstractmethod
    def system_prompt(self) -> str: ...

    def user_message(self, row_input: str) -> str:
        return row_input

    def build_prompt(self, row_input: str, demos: Sequence[Demo]) -> Prompt:
        turns = tuple((self.user_message(d.input), d.answer) for d in demos)
        return Prompt(system=self.system_prompt(), turns=turns, user=self.user_message(row_input))

    def demo_answer(self, gold: Any, row: Mapping[str, Any] | None = None) -> str:
        """The answer a few-shot demo shows for its (parsed) gold value."""
        return str(gold)

    def example_gold_columns(self, label_column: str) -> list[str]:
        """Columns a few-shot example needs besides the input's."""
        return [label_column]

    def example_gold(self, item: Mapping[str, Any], label_column: str) -> Any:
        return self.parse_gold(item[label_column])

    def check_demo(self, number: int, gold: Any) -> None:
        """Raise ConfigError when a few-shot example's gold value cannot be right."""

    def reask(self, prompt: Prompt, generation: Generation, failure: ParseFailure) -> Prompt | None:
        """A follow-up prompt that shows the model its invalid answer and the error, or None (no re-ask)."""
        return None

    def verify_prompt(self, row: RowInput, label: Label) -> Prompt | None:
        """A yes/no question that checks a parsed answer (scored when the backend can score), or None."""
        return None

    def apply_verification(self, label: Label, p_yes: float) -> Outcome:
        """The label after its check answered yes with probability `p_yes`."""
        return label

    #: True when the task asks scored follow-up questions about its answers (a backend that cannot score cannot run it)
    asks_followups = False

    def followups(self, row: RowInput, label: Label) -> list[tuple[Prompt, tuple[str, ...]]]:
        """Scored questions about a parsed answer, each with its closed answer set (relations: one per
        candidate entity pair). Must depend only on the row and the label: `apply_followups` gets the
        answers in the same order."""
        return []

    def apply_followups(self, row: RowInput, label: Label, answers: list[list[float]]) -> Outcome:
        """The label after its follow-up questions: the candidates' log-probabilities, question by question."""
        return label

    # answers -------------------------------------------------------------------------------
    def candidates(self) -> list[str] | None:
        """The closed set of answers to score, or None when the task must generate."""
        return None

    def prepare_rows(self, row_inputs: list[str], store: Any = None) -> None:
        """Work a batch of rows needs before their prompts are built (classification's nearest labels embed them)."""

    def row_candidates(self, row_input: str) -> list[str] | None:
        """The part of `candidates()` this row's prompt lists and its score covers (classification's
        `labels_per_row`), or None: all of them. The rest get probability 0."""
        return None

    def schema(self) -> dict | None:
        """A JSON schema the answer must follow (constrained decoding where the backend supports it)."""
        return None

    def from_scores(self, result: ScoreResult, row: RowInput | None = None) -> Outcome:
        raise NotImplementedError(f"{type(self).__name__} cannot score candidates")

    @abstractmethod
    def parse(self, generation: Generation, row: RowInput | None = None) -> Outcome: ...

    # gold and metrics ------------------------------------------------------------------------
    def gold_columns(self) -> list[str]:
        """Columns eval needs."""
        return [self.config.gold_column] if self.config.gold_column else []

    def gold(self, record: Mapping[str, Any]) -> Any:
        """A row's gold value (None when it has none)."""
        return self.parse_gold(record.get(self.config.gold_column)) if self.config.gold_column else None

    def parse_output(self, value: Any) -> Any:
        """A cell of our own label column (as written to a file and read back) as a comparable value."""
        return self.parse_gold(value)

    def extra_outputs(self, value: Any, record: Mapping[str, Any]) -> dict[str, Any]:
        """Extra output columns derived from a label (suffix -> value), e.g. NER's BIO tags."""
        return {}

    @abstractmethod
    def parse_gold(self, value: Any) -> Any:
        """A gold cell as a comparable value (None when empty)."""

    @abstractmethod
    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        """Metrics over all rows; a failed row has predicted None and counts as wrong."""

    def record_metrics(self, records: Sequence[Mapping[str, Any]], predicted: Sequence[Any]) -> dict[str, Any]:
        """Metrics that need more of each gold row than its gold value (temporal: the annotators' own
        judgements); `records` and `predicted` are aligned with `metrics`' rows."""
        return {}

    @abstractmethod
    def is_correct(self, gold: Any, predicted: Any) -> bool: ...

    def student_features(self, records: Sequence[Mapping[str, Any]]) -> Any:
        """Features a student learns from beside the sentence embedding, one row per record (an (n, d) float32
        array), or None: the embedding alone. A task whose label hangs on cues a sentence encoder blurs gives
        them here (event order: the tense, modals and connectives around each event)."""
        return None

    def output_value(self, label: Label) -> Any:
        return label.value


# ----------------------------------------------------------------------------------------------
# text normalisation shared by the parsers

_ANSWER_LEAD = re.compile(
    r"^(?:(?:the\s+)?(?:final\s+)?(?:answer|label|category|class|classification|output|sentiment|prediction|result)"
    r"(?:\s+(?:is|would be|:))?\s*[:\-=]?\s*)",
    re.IGNORECASE,
)
_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower case, unify unicode, drop markdown/quotes/brackets and surrounding punctuation."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("_", " ").replace("*", " ").replace("`", " ")
    text = _WS.sub(" ", text).strip()
    return text.strip(string.punctuation + " \"'“”‘’«»")


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def load_structured(value: Any) -> Any:
    """A cell that holds a list/dict: as is, or decoded from JSON (or a Python literal, as pandas writes)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    import json

    try:
        return json.loads(text)
    except ValueError:
        import ast

        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return value


def unfenced(text: str) -> str:
    """An answer without the markdown code fence a model may wrap it in."""
    body = text.strip()
    fence = re.match(r"^```[a-z]*\s*(.*?)\s*```", body, re.DOTALL)
    return fence.group(1).strip() if fence else body


def strip_answer_lead(text: str) -> str:
    """'The answer is: Positive.' -> 'Positive.' (one lead phrase, so a label named 'Output' survives)."""
    return _ANSWER_LEAD.sub("", text.strip(), count=1).strip()
