"""`python -m labelmill.selfcheck`: load the default embedded model and score a small batch.

Exit codes: 0 the model runs; 1 it failed; 3 its weights are missing (no rebuild can fix that); a build
that uses instructions this CPU traps dies with SIGILL. `--json` prints llama.cpp's own system info too.
"""

from __future__ import annotations

import json
import sys
import time

NO_WEIGHTS = 3


def main(argv: list[str] | None = None) -> int:
    from labelmill.backends.llama import LlamaCppBackend
    from labelmill.config import ModelSpec
    from labelmill.errors import LabelmillError, ModelNotFoundError
    from labelmill.types import Prompt

    as_json = "--json" in (sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    try:
        backend = LlamaCppBackend(ModelSpec())
        system = "Classify the sentiment.\n\nLabels:\n- positive\n- negative\n\nAnswer with the label only."
        prompts = [Prompt(system, (), "a wonderful, moving film"), Prompt(system, (), "dull and far too long")]
        results = backend.score(prompts, ["positive", "negative"])
    except ModelNotFoundError as exc:
        print(f"selfcheck failed: {exc.one_line()}", file=sys.stderr)
        return NO_WEIGHTS
    except LabelmillError as exc:
        print(f"selfcheck failed: {exc.one_line()}", file=sys.stderr)
        return 1
    picks = ["positive" if r.logprobs[0] > r.logprobs[1] else "negative" for r in results]
    seconds = time.perf_counter() - started
    if as_json:
        import llama_cpp

        info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
        print(json.dumps({"model": backend.model_id, "rows": len(prompts), "seconds": round(seconds, 2), "picks": picks,
                          "llama_cpp_python": llama_cpp.__version__, "system_info": info}))
    else:
        print(f"selfcheck: {backend.model_id} loaded and scored {len(prompts)} rows in {seconds:.1f} s -> {picks}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
