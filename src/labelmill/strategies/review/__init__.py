"""review: people on the hard rows. A queue ranked by what a review is worth, a local web app, several
annotators with agreement figures, the review -> refit -> relabel loop, and exports."""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {  # name -> its module; imported on first use, so loading the strategy's registration stays cheap
    "ReviewSession": "labelmill.strategies.review.session",
    "RowView": "labelmill.strategies.review.session",
    "Budget": "labelmill.strategies.review.session",
    "create_app": "labelmill.strategies.review.app",
}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'labelmill.strategies.review' has no attribute {name!r}")


__all__ = sorted(_PUBLIC)
