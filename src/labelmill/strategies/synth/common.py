"""What synth's pipelines share: the config of a model asked for text or verdicts, and their result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from labelmill.config import Config, load_config


@dataclass
class FrameResult:
    frame: pd.DataFrame
    figures: dict[str, Any] = field(default_factory=dict)
    output_path: Path | None = None


def model_config(model: str | dict | Config | None = None, name: str = "synth-writer") -> Config:
    """A config for a model that writes or judges: the model settings (a name, a dict of model settings, or a
    config to take them from); the embedded default model otherwise. Its task is never run (calls name their answers)."""
    if isinstance(model, Config):
        return model
    spec = {"name": model} if isinstance(model, str) else dict(model or {})
    return load_config({"task": "classification", "name": name, "labels": ["A", "B"], "model": {"backend": "llama_cpp", "name": "qwen2.5-coder-0.5b", **spec}})
