"""The task seam: a prompt builder, a pure parser, and metrics. A new task type is one module."""

from __future__ import annotations

import re
import string
import unicodedata
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ..types import Generation, Label, Outcome, Prompt, ScoreResult

if TYPE_CHECKING:
    from ..config import Config


@dataclass(frozen=True)
class Demo:
    """A few-shot example: the rendered input and its answer."""

    input: str
    answer: str


class Task(ABC):
    """Prompt builder + pure parser + metrics for one task type."""

    def __init__(self, config: "Config"):
        self.config = config
        self.labels = config.label_names

    # prompt building -----------------------------------------------------------------------
    @abstractmethod
    def system_prompt(self) -> str: ...

    def user_message(self, row_input: str) -> str:
        return row_input

    def build_prompt(self, row_input: str, demos: Sequence[Demo]) -> Prompt:
        turns = tuple((self.user_message(d.input), d.answer) for d in demos)
        return Prompt(system=self.system_prompt(), turns=turns, user=self.user_message(row_input))

    def demo_answer(self, gold: Any) -> str:
        return str(gold)

    # answers -------------------------------------------------------------------------------
    def candidates(self) -> list[str] | None:
        """The closed set of answers to score, or None when the task must generate."""
        return None

    def from_scores(self, result: ScoreResult) -> Outcome:
        raise NotImplementedError(f"{type(self).__name__} cannot score candidates")

    @abstractmethod
    def parse(self, generation: Generation) -> Outcome: ...

    # gold and metrics ------------------------------------------------------------------------
    @abstractmethod
    def parse_gold(self, value: Any) -> Any:
        """A gold cell as a comparable value (None when empty)."""

    @abstractmethod
    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        """Metrics over all rows; a failed row has predicted None and counts as wrong."""

    @abstractmethod
    def is_correct(self, gold: Any, predicted: Any) -> bool: ...

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


def strip_answer_lead(text: str) -> str:
    """'The answer is: Positive.' -> 'Positive.' (one lead phrase, so a label named 'Output' survives)."""
    return _ANSWER_LEAD.sub("", text.strip(), count=1).strip()
