"""labelmill: label and synthesize text datasets with LLMs, and know which labels to trust.

Importing labelmill is cheap: models, llama.cpp and pandas load only when a step needs them.
"""

from __future__ import annotations

from typing import Any

from labelmill.errors import (
    BackendError,
    ConfigError,
    InputDataError,
    LabelmillError,
    MissingDependencyError,
    ModelNotFoundError,
    RunStopped,
    StoreError,
)

__version__ = "0.1.0"

_API = {"label", "run", "plan", "calibrate", "evaluate", "init_config"}
_LAZY = {  # public names loaded on first use: importing labelmill stays cheap
    "load_config": "labelmill.config", "Config": "labelmill.config",
    "Store": "labelmill.store", "RunResult": "labelmill.core", "Strategy": "labelmill.core.strategy",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        from labelmill import api

        return getattr(api, name)
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'labelmill' has no attribute {name!r}")


__all__ = [
    "label", "run", "plan", "calibrate", "evaluate", "init_config", "load_config", "Config", "Store", "RunResult", "Strategy",
    "LabelmillError", "ConfigError", "InputDataError", "ModelNotFoundError", "MissingDependencyError", "BackendError", "StoreError", "RunStopped",
]


def __dir__() -> list[str]:
    """The public API (loaded lazily, so a plain `dir` would not list `label` or `plan`)."""
    return sorted({*__all__, "__version__"})
