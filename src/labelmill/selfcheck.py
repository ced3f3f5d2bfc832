"""`python -m labelmill.selfcheck`: load the default embedded model and score a small batch.

Exits non-zero (or dies with SIGILL on a llama.cpp build this CPU cannot run) when the model is unusable.
"""

from __future__ import annotations

import sys
import time


def main() -> int:
    from .config import ModelSpec
    from .backends.llama import LlamaCppBackend
    from .errors import LabelmillError
    from .types import Prompt

    started = time.perf_counter()
    try:
        backend = LlamaCppBackend(ModelSpec())
        system = "Classify the sentiment.\n\nLabels:\n- positive\n- negative\n\nAnswer with the label only."
        prompts = [Prompt(system, (), "a wonderful, moving film"), Prompt(system, (), "dull and far too long")]
        results = backend.score(prompts, ["positive", "negative"])
    except LabelmillError as exc:
        print(f"selfcheck failed: {exc.one_line()}", file=sys.stderr)
        return 1
    picks = ["positive" if r.logprobs[0] > r.logprobs[1] else "negative" for r in results]
    print(f"selfcheck: {backend.model_id} loaded and scored {len(prompts)} rows in {time.perf_counter() - started:.1f} s -> {picks}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
