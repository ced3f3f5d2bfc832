"""Multi-label classification: zero or more labels per row, generated as a list and parsed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from labelmill.numeric.confidence import mean_token_prob
from labelmill.types import Generation, Label, Outcome, ParseFailure
from labelmill.tasks.base import RowInput, Task, normalise, strip_answer_lead
from labelmill.tasks.classification import LabelMatcher, guidelines_with_labels

if TYPE_CHECKING:
    from labelmill.config import Config

_SPLIT = re.compile(r"\s*(?:[,;|\n]|\band\b)\s*")
_NONE = {"none", "no label", "no labels", "nothing", "n/a", "null", "[]", ""}


class MultilabelTask(Task):
    """Every label that applies, from a closed set; an empty answer set is allowed."""

    @classmethod
    def configure(cls, config: Config) -> None:
        if not config.labels:
            raise ValueError("labels: give at least one label")

    default_guidelines = "Choose every label below that applies to the input."

    def __init__(self, config):
        super().__init__(config)
        self.matcher = LabelMatcher(self.labels)
        self.separator = config.label_separator

    def system_prompt(self) -> str:
        return (
            guidelines_with_labels(self.config, self.default_guidelines)
            + "\n\nAnswer with the labels from the list that apply, separated by commas."
        )

    def demo_answer(self, gold: Any, row=None) -> str:
        return ", ".join(gold) if gold else "none"

    def check_demo(self, number: int, gold: Any) -> None:
        from labelmill.selectors.pickers import check_demo_labels

        check_demo_labels(number, gold or [], self.labels)

    def parse(self, generation: Generation, row: RowInput | None = None) -> Outcome:
        text = strip_answer_lead(generation.text.strip()).strip("[]{}() ")
        if normalise(text) in _NONE:
            return Label(value=[], confidence=mean_token_prob(generation.token_logprobs))
        found, unknown = [], []
        for part in _SPLIT.split(text):
            if normalise(part) in _NONE:  # "none, joy" -> joy
                continue
            matched = self.matcher.match(part)
            if isinstance(matched, ParseFailure):
                unknown.append(part.strip())
            elif matched not in found:
                found.append(matched)
        if unknown:
            return ParseFailure("unknown_label", generation.text, f"not in the label set: {unknown[:5]}")
        confidence = mean_token_prob(generation.token_logprobs)
        return Label(value=sorted(found), confidence=confidence, signals={"mean_token_prob": confidence} if confidence is not None else {})

    def output_value(self, label: Label) -> Any:
        return self.separator.join(label.value)

    def parse_gold(self, value: Any) -> Any:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        if isinstance(value, (list, tuple, np.ndarray)):
            parts = [str(v) for v in value]
        else:
            parts = [p for p in str(value).split(self.separator) if p.strip()]
        out = []
        for part in parts:
            matched = self.matcher.by_norm.get(normalise(part))
            out.append(matched if matched is not None else part.strip())
        return sorted(set(out))

    def is_correct(self, gold: Any, predicted: Any) -> bool:
        return predicted is not None and sorted(gold or []) == sorted(predicted)

    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        n = len(gold)
        index = {label: i for i, label in enumerate(self.labels)}
        y_true = np.zeros((n, len(self.labels)), dtype=bool)
        y_pred = np.zeros_like(y_true)
        for row, (g, p) in enumerate(zip(gold, predicted)):
            for label in g or []:
                if label in index:
                    y_true[row, index[label]] = True
            for label in p or []:
                y_pred[row, index[label]] = True
        tp = (y_true & y_pred).sum(0)
        fp = (~y_true & y_pred).sum(0)
        fn = (y_true & ~y_pred).sum(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
            recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
            f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
        present = (tp + fp + fn) > 0
        micro_p = tp.sum() / max(tp.sum() + fp.sum(), 1)
        micro_r = tp.sum() / max(tp.sum() + fn.sum(), 1)
        completed = sum(p is not None for p in predicted)
        exact = sum(self.is_correct(g, p) for g, p in zip(gold, predicted))
        return {
            "n_rows": n,
            "accuracy": exact / n if n else 0.0,  # exact set match; failures count wrong
            "accuracy_on_completed": exact / completed if completed else 0.0,
            "completion_rate": completed / n if n else 0.0,
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "micro_f1": float(2 * micro_p * micro_r / (micro_p + micro_r)) if micro_p + micro_r else 0.0,
            "hamming_loss": float((y_true != y_pred).mean()) if n else 0.0,
            "per_class": {
                label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(y_true[:, i].sum())}
                for label, i in index.items()
            },
        }
