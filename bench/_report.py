"""What every benchmark prints at the end: its figures as JSON (`--json`) or one `key value` line each."""

from __future__ import annotations

import json
from typing import Any


def emit(figures: dict[str, Any], as_json: bool, default: Any = float) -> None:
    if as_json:
        print(json.dumps(figures, indent=1, default=default))
        return
    for key, value in figures.items():
        print(f"{key:40} {value}")
