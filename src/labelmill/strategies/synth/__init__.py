"""synth: data made by the model. Labeled examples, summaries searched without references, instructions,
responses, rationales, critiques, preferences, an LLM judge, and the filters and exports they share."""

from labelmill.registry import lazy_exports

_PUBLIC = {  # name -> its module, imported on first use
    "synth_examples": "examples",
    "SynthResult": "examples",
    "synth_summaries": "summaries",
    "synth_instructions": "texts",
    "synth_responses": "texts",
    "synth_rationales": "texts",
    "synth_critiques": "texts",
    "synth_preferences": "texts",
    "judge_pairs": "judge",
    "judge_scores": "judge",
    "dpo_rows": "exports",
    "write_jsonl": "exports",
    "ExamplesOptions": "examples",
    "SummariesOptions": "summaries",
    "InstructionsOptions": "texts",
    "ResponsesOptions": "texts",
    "CritiquesOptions": "texts",
    "PreferencesOptions": "texts",
    "PairsOptions": "judge",
    "ScoresOptions": "judge",
}
__getattr__ = lazy_exports(__name__, _PUBLIC)
__all__ = sorted(_PUBLIC)
