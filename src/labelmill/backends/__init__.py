"""Backend registry. Built-ins register here exactly as plugins do through entry points."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from labelmill.registry import Registry
from labelmill.backends.base import Backend

if TYPE_CHECKING:
    from labelmill.config import ModelSpec

backends: Registry[type[Backend]] = Registry("backend", entry_point_group="labelmill.backends")
backends.register_lazy("llama_cpp", "labelmill.backends.llama:LlamaCppBackend")
backends.register_lazy("fake", "labelmill.backends.fake:FakeBackend")
backends.register_lazy("openai", "labelmill.backends.openai_api:OpenAIBackend")
backends.register_lazy("anthropic", "labelmill.backends.anthropic_api:AnthropicBackend")


def make_backend(spec: ModelSpec, base_dir: Path | None = None) -> Backend:
    return backends.get(spec.backend)(spec, base_dir=base_dir)


__all__ = ["Backend", "backends", "make_backend"]
