"""What every benchmark prints at the end: its figures as JSON (`--json`) or one `key value` line each."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def emit(figures: dict[str, Any], as_json: bool, default: Any = float) -> None:
    if as_json:
        print(json.dumps(figures, indent=1, default=default))
        return
    for key, value in figures.items():
        print(f"{key:40} {value}")


@contextmanager
def workdir(path: str | None) -> Iterator[Path]:
    """The folder a bench keeps its project stores in: `path` (kept), or a temporary one removed at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(path) if path else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        yield work


def per_set(sets: str, measure: Callable[[str], dict[str, Any]], figures: dict[str, Any]) -> None:
    """`measure` each of the comma-separated `sets` into `figures`, each set's plain figures on stderr as it ends."""
    for name in sets.split(","):
        one = measure(name.strip())
        print(json.dumps({k: v for k, v in one.items() if not isinstance(v, (dict, list))}, default=float), file=sys.stderr, flush=True)
        figures.update(one)


def add_audit_options(parser: Any) -> None:
    """The review loop's audit options (`ReviewOptions.audit`, `audit_every`, `audit_uniform`), left at the
    loop's defaults unless given: the figures measured under earlier defaults name them in their commands."""
    parser.add_argument("--audit", type=int, default=None, help="Audit rows among the first reviews (0: none; default: the loop's).")
    parser.add_argument("--audit-every", type=int, default=None, help="After the first --audit rows, one review in this many is an "
                        "audit row (default: the loop's).")
    parser.add_argument("--audit-uniform", type=float, default=None,
                        help="The uniform share of each audit draw (the rest in proportion to 1 - confidence; default: the loop's).")


def audit_knobs(args: Any) -> dict[str, Any]:
    """The `ReviewSession.open` keywords of the audit options given (see `add_audit_options`)."""
    return {key: getattr(args, key) for key in ("audit", "audit_every", "audit_uniform") if getattr(args, key) is not None}
