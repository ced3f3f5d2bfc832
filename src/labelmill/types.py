"""Plain data passed between the seams: prompts, model answers, labels and typed failures."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Demo:
    """A few-shot example: the rendered input and its answer (and why, where its file says: `examples.explanation_column`)."""

    input: str
    answer: str
    explanation: str | None = None


@dataclass(frozen=True)
class Prompt:
    """A chat prompt: system text, few-shot turns (user, assistant), then the row's user message.

    Rows of one job share system and turns, so their rendered prompts share a long token prefix
    that backends evaluate once.
    """

    system: str
    turns: tuple[tuple[str, str], ...]
    user: str

    def messages(self) -> list[dict[str, str]]:
        out = [{"role": "system", "content": self.system}] if self.system else []
        for user, assistant in self.turns:
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        out.append({"role": "user", "content": self.user})
        return out

    def canonical(self) -> str:
        return json.dumps(self.messages(), ensure_ascii=False, separators=(",", ":"))

    def hash(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:16]


@dataclass
class ScoreResult:
    """Log-probability of each candidate continuation (whole token sequence) given the prompt."""

    logprobs: list[float]
    prompt_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None  # the request failed (timeout, server_error, ...): no scores
    error_detail: str = ""


@dataclass
class Generation:
    """Generated text with the log-probability of each generated token.

    When the backend knows them: `tokens` are the generated tokens' texts ("".join(tokens) is the raw
    text; `text` is it stripped, the first `lead` characters of the raw text being whitespace), and `top_logprobs` are the
    most likely first tokens (token text -> log-probability), which lets a task read the probability
    of an answer it did not pick ("unanswerable", "none").
    """

    text: str
    token_logprobs: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    tokens: list[str] = field(default_factory=list)
    lead: int = 0
    top_logprobs: dict[str, float] = field(default_factory=dict)
    cost_usd: float = 0.0
    error: str | None = None  # the request failed (timeout, server_error, ...; see backends/remote.py): no text
    error_detail: str = ""


@dataclass
class Label:
    """A parsed label. `value` is a str (classification) or a sorted list of str (multilabel)."""

    value: Any
    confidence: float | None = None
    distribution: dict[str, float] | None = None
    signals: dict[str, float] = field(default_factory=dict)


@dataclass
class ParseFailure:
    """A model answer that could not be turned into a label. Counted, never written as a label."""

    kind: str  # empty | no_label | ambiguous | unknown_label | invalid_json | schema | not_in_context | backend_error
    raw: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind


Outcome = Label | ParseFailure


def finite(value: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # a numpy scalar
        return finite(value.item())
    return value


class DatasetSpec(BaseModel):
    """How to read the input file (the config's `dataset` section; `io.read_rows` reads by it)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    delimiter: str | None = Field(None, description="CSV delimiter (default: sniffed).")
    encoding: str | None = Field(None, description="Text encoding (default: UTF-8, with a clear error otherwise).")
    sheet: str | int | None = Field(None, description="XLSX sheet name or index.")
