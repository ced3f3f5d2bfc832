"""refine: written guidelines that improve from the model's own errors, versioned in the store and read
like a document; proposals wait for people in the review app."""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {  # name -> its module; imported on first use, so loading the strategy's registration stays cheap
    "refine": "labelmill.strategies.refine.loop",
    "RefineResult": "labelmill.strategies.refine.loop",
    "GuidelineVersions": "labelmill.strategies.refine.versions",
    "Version": "labelmill.strategies.refine.versions",
    "Proposals": "labelmill.strategies.refine.proposals",
    "Proposal": "labelmill.strategies.refine.proposals",
}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'labelmill.strategies.refine' has no attribute {name!r}")


__all__ = sorted(_PUBLIC)
