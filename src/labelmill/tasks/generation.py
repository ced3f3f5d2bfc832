"""Generated labels: a summary, a rewrite, any free text the guidelines ask for (task: generation).

The answer is the model's text, cleaned of a leading 'Summary:' and quotes; its confidence is the mean
token probability until a strategy gives a better one (`labelmill synth summaries`: the restore score).
Against a reference (the gold column): ROUGE-L F1 per row, and a row counts as right at ROUGE-L >= 0.5.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from labelmill.numeric.confidence import mean_token_prob
from labelmill.tasks.base import RowInput, Task, is_missing
from labelmill.types import Generation, Label, Outcome, ParseFailure

_LEAD = re.compile(r"^\s*(?:summary|rewrite|rewritten text|output|answer|result)\s*:\s*", re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)
RIGHT_AT = 0.5


class GenerationTask(Task):
    default_max_tokens = 96

    def system_prompt(self) -> str:
        guidelines = self.config.guidelines.strip() or "Summarize the text in one sentence."
        return f"{guidelines}\n\nReply with the output text only."

    def parse(self, generation: Generation, row: RowInput | None = None) -> Outcome:
        text = clean_generation(generation.text)
        if not text:
            return ParseFailure("empty", generation.text, "the model wrote nothing")
        confidence = mean_token_prob(generation.token_logprobs)
        return Label(value=text, confidence=confidence, signals={"mean_token_prob": confidence} if confidence is not None else {})

    def parse_gold(self, value: Any) -> Any:
        return None if is_missing(value) or not str(value).strip() else str(value).strip()

    def is_correct(self, gold: Any, predicted: Any) -> bool:
        return predicted is not None and gold is not None and rouge_l(str(gold), str(predicted)) >= RIGHT_AT

    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        n = len(gold)
        scores = [rouge_l(str(g), str(p)) if g is not None and p is not None else 0.0 for g, p in zip(gold, predicted)]
        completed = sum(p is not None for p in predicted)
        lengths = [len(_WORD.findall(str(p))) for p in predicted if p is not None]
        return {"n_rows": n, "accuracy": float(np.mean([s >= RIGHT_AT for s in scores])) if n else 0.0,
                "rouge_l": float(np.mean(scores)) if n else 0.0, "completion_rate": completed / n if n else 0.0,
                "mean_words": float(np.mean(lengths)) if lengths else 0.0}


def clean_generation(text: str) -> str:
    """The output itself: its first paragraph, without a 'Summary:' lead or surrounding quotes."""
    first = (text or "").strip().split("\n\n")[0].strip()
    return " ".join(_LEAD.sub("", first).strip().strip('"“”').split())


class _Words:
    """rouge-score's tokenizer seam: our words (letters of any script, lower-cased), not its ASCII-only default."""

    def tokenize(self, text: str) -> list[str]:
        return [w.casefold() for w in _WORD.findall(text)]


def rouge_l(reference: str, candidate: str) -> float:
    """ROUGE-L F1 over lower-cased words (longest common subsequence; Google's rouge-score)."""
    from rouge_score import rouge_scorer

    return float(rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Words()).score(reference, candidate)["rougeL"].fmeasure)
