"""Python sub-labelers for examples/weak/goemotions.yaml, written from shared/data/goemotions/train.csv only.

Each function gets the row (a dict) and returns an emotion, a list of emotions, or None to abstain.
"""

from __future__ import annotations

import re

_QUESTION = re.compile(r"\b(why|how|what|who|where|when|which)\b[^?]*\?", re.IGNORECASE)
_CONFUSED = re.compile(r"\b(confus\w*|i don'?t (get|understand)|what do you mean|huh)\b", re.IGNORECASE)


def asks(row: dict) -> str | None:
    """A wh-question: curiosity (in train, most rows with one are curiosity or confusion)."""
    text = str(row.get("text", ""))
    if _CONFUSED.search(text):
        return "confusion"
    return "curiosity" if _QUESTION.search(text) else None
