"""The backend seam: complete a batch of prompts, and score a closed set of continuations."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labelmill.types import Generation, Prompt, ScoreResult

if TYPE_CHECKING:
    from labelmill.config import ModelSpec


class Backend(ABC):
    """A model behind one small protocol. Capabilities are flags, not subclasses."""

    name: ClassVar[str]
    can_score: ClassVar[bool] = False
    has_logprobs: ClassVar[bool] = False
    supports_schema: ClassVar[bool] = False

    def __init__(self, spec: ModelSpec, *, base_dir: Path | None = None):
        self.spec = spec
        self.base_dir = base_dir or Path(".")

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Human-readable model identity (name or file name)."""

    @property
    def model_sha256(self) -> str | None:
        """Hash of the weights when known; part of every cache key and annotation."""
        return None

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_id, "sha256": self.model_sha256}

    def score(self, prompts: Sequence[Prompt], candidates: Sequence[str]) -> list[ScoreResult]:
        """log P(candidate | prompt) for every prompt and candidate (only if `can_score`)."""
        raise NotImplementedError(f"backend {self.name} cannot score candidates")

    @abstractmethod
    def generate(
        self, prompts: Sequence[Prompt], *, max_tokens: int, temperature: float, seed: int, schema: dict | None = None
    ) -> list[Generation]:
        """One completion per prompt, with token log-probabilities when `has_logprobs`.

        `schema` (a JSON schema) asks for output that conforms to it, when `supports_schema`;
        other backends ignore it and the task validates the answer.
        """

    def render(self, prompt: Prompt) -> str:
        """The prompt as the model sees it (for `plan`)."""
        return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in prompt.messages())

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def close(self) -> None:
        """Free the model; the backend is unusable afterwards."""
