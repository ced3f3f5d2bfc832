"""synth: data made by the model. Labeled examples, summaries searched without references, instructions,
responses, rationales, critiques, preferences, an LLM judge, and the filters and exports they share."""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {  # name -> its module; imported on first use, so loading the strategy's registration stays cheap
    "synth_examples": "labelmill.strategies.synth.examples",
    "SynthResult": "labelmill.strategies.synth.examples",
    "synth_summaries": "labelmill.strategies.synth.summaries",
    "synth_instructions": "labelmill.strategies.synth.texts",
    "synth_responses": "labelmill.strategies.synth.texts",
    "synth_rationales": "labelmill.strategies.synth.texts",
    "synth_critiques": "labelmill.strategies.synth.texts",
    "synth_preferences": "labelmill.strategies.synth.texts",
    "judge_pairs": "labelmill.strategies.synth.judge",
    "judge_scores": "labelmill.strategies.synth.judge",
    "dpo_rows": "labelmill.strategies.synth.exports",
    "write_jsonl": "labelmill.strategies.synth.exports",
}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'labelmill.strategies.synth' has no attribute {name!r}")


__all__ = sorted(_PUBLIC)
