"""ensemble's config section (`ensemble:`): the members and how their answers are combined. Registered in
`labelmill.registry.sections`; light to import (the config reads it when it validates a file)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from labelmill.config import Strict
from labelmill.registry import Section


class EnsembleSpec(Strict):
    """Several labelers over the same rows: prompt variants and/or other models, combined per row."""

    members: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Each member changes some sections of this config, e.g. {} (as is), {guidelines: '...'}, {model: {name: qwen2.5-coder-1.5b}}.",
    )
    combine: Literal["auto", "mean", "vote"] = Field(
        "auto", description="mean: average the members' label distributions; vote: majority of their labels; auto: mean when every member scored a distribution."
    )


SECTION = Section("ensemble", EnsembleSpec, owner="strategy ensemble", fingerprint="unless_default")
