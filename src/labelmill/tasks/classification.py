"""Single-label classification: score the closed label set, or generate and parse."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from labelmill.config import Strict
from labelmill.numeric.confidence import distribution_signals, label_distribution, mean_token_prob
from labelmill.registry import Section
from labelmill.types import Demo, Generation, Label, Outcome, ParseFailure, Prompt, ScoreResult
from labelmill.tasks.base import RowInput, Task, normalise, strip_answer_lead

if TYPE_CHECKING:
    from labelmill.config import Config


class ClassificationSpec(Strict):
    """Classification with a large label set."""

    labels_per_row: int = Field(
        0, ge=0, description="List and score only the k labels nearest each row: the cosine of the row's sentence embedding "
        "(examples.embedding_model) to each label's name and description; the other labels get probability 0 "
        "(Autolabel's label_selection). 0: every label, every row.",
    )


SECTION = Section("classification", ClassificationSpec, owner="task classification")


def label_list(config, specs: Sequence[Any] | None = None) -> str:
    lines = []
    for spec in config.labels if specs is None else specs:
        lines.append(f"- {spec.name}: {spec.description}" if spec.description else f"- {spec.name}")
    return "\n".join(lines)


def guidelines_with_labels(config, default: str, specs: Sequence[Any] | None = None) -> str:
    """The guidelines with '{labels}' filled in, or followed by the label list (`specs`: these labels only)."""
    guidelines = (config.guidelines or default).strip()
    labels = label_list(config, specs)
    if "{labels}" in guidelines:
        return guidelines.replace("{labels}", labels)
    return f"{guidelines}\n\nLabels:\n{labels}"


class LabelMatcher:
    """Finds which label of a closed set a free-text answer names; never guesses between two."""

    def __init__(self, labels: Sequence[str]):
        self.labels = list(labels)
        self.by_norm = {normalise(label): label for label in self.labels}
        # longest first, so 'not toxic' wins over 'toxic'
        self.patterns = sorted(
            ((re.compile(r"(?<![\w])" + re.escape(norm) + r"(?![\w])"), label) for norm, label in self.by_norm.items() if norm),
            key=lambda item: -len(item[0].pattern),
        )

    def match(self, answer: str) -> str | ParseFailure:
        if not answer.strip():
            return ParseFailure("empty", answer, "the model returned no text")
        for candidate in (answer, answer.strip().splitlines()[0]):
            for text in (normalise(candidate), normalise(strip_answer_lead(candidate))):
                if text in self.by_norm:
                    return self.by_norm[text]
        return self._search(normalise(strip_answer_lead(answer)) or normalise(answer), answer)

    def _search(self, text: str, answer: str) -> str | ParseFailure:
        found: list[tuple[int, str]] = []
        taken = np.zeros(len(text) + 1, dtype=bool)
        for pattern, label in self.patterns:
            for m in pattern.finditer(text):
                if not taken[m.start() : m.end()].any():
                    taken[m.start() : m.end()] = True
                    found.append((m.start(), label))
        distinct = {label for _, label in found}
        if len(distinct) == 1:
            return distinct.pop()
        if not distinct:
            return ParseFailure("no_label", answer, f"no label of {self.labels[:8]}{'...' if len(self.labels) > 8 else ''} in the answer")
        first = min(found)
        if first[0] == 0:  # the answer starts with a label: "positive, not negative"
            return first[1]
        return ParseFailure("ambiguous", answer, f"the answer names several labels: {sorted(distinct)}")


class ClassificationTask(Task):
    """One label per row from a closed set."""

    @classmethod
    def configure(cls, config: Config) -> None:
        if len(config.labels) < 2:
            raise ValueError(f"labels: a {config.task} task needs at least two labels")

    default_guidelines = "Classify the input into exactly one of the labels below."

    def __init__(self, config):
        super().__init__(config)
        self.matcher = LabelMatcher(self.labels)
        k = config.classification.labels_per_row
        self.nearest = NearestLabels(config, k) if 0 < k < len(self.labels) else None

    def system_prompt(self) -> str:
        return self._system_for(None)

    def _system_for(self, specs: Sequence[Any] | None) -> str:
        return guidelines_with_labels(self.config, self.default_guidelines, specs) + "\n\nAnswer with the label only."

    def prepare_rows(self, row_inputs: list[str], store: Any = None) -> None:
        if self.nearest is not None:
            self.nearest.prepare(row_inputs, store)

    def row_candidates(self, row_input: str) -> list[str] | None:
        return None if self.nearest is None else self.nearest.for_row(row_input)

    def build_prompt(self, row_input: str, demos: Sequence[Demo]) -> Prompt:
        prompt = super().build_prompt(row_input, demos)
        subset = self.row_candidates(row_input)
        if subset is None:
            return prompt
        chosen = set(subset)
        return dataclasses.replace(prompt, system=self._system_for([spec for spec in self.config.labels if spec.name in chosen]))

    def check_demo(self, number: int, gold: Any) -> None:
        from labelmill.selectors.pickers import check_demo_labels

        check_demo_labels(number, gold, self.labels)

    def candidates(self) -> list[str]:
        return list(self.labels)

    def from_scores(self, result: ScoreResult, row: RowInput | None = None) -> Outcome:
        probs = label_distribution(result.logprobs)
        best = int(np.argmax(probs))
        signals = distribution_signals(probs)
        return Label(
            value=self.labels[best],
            confidence=signals["top_prob"],
            distribution={label: float(p) for label, p in zip(self.labels, probs)},
            signals=signals,
        )

    def parse(self, generation: Generation, row: RowInput | None = None) -> Outcome:
        matched = self.matcher.match(generation.text)
        if isinstance(matched, ParseFailure):
            return matched
        confidence = mean_token_prob(generation.token_logprobs)
        signals = {"mean_token_prob": confidence} if confidence is not None else {}
        return Label(value=matched, confidence=confidence, signals=signals)

    def parse_gold(self, value: Any) -> Any:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        text = str(value).strip()
        if not text:
            return None
        matched = self.matcher.by_norm.get(normalise(text))
        return matched if matched is not None else text

    def is_correct(self, gold: Any, predicted: Any) -> bool:
        return predicted is not None and gold == predicted

    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        return classification_metrics(gold, predicted, self.labels)


class NearestLabels:
    """The k labels nearest each row (`classification.labels_per_row`): the cosine of the row's sentence embedding
    to each label's name and description, embedded once; in the config's label order. Embeddings go through the
    store's cache, like the few-shot selection's."""

    def __init__(self, config: Config, k: int):
        self.k = k
        self.model = config.examples.embedding_model
        self.labels = [spec.name for spec in config.labels]
        self.texts = [f"{spec.name.replace('_', ' ')}: {spec.description}" if spec.description else spec.name.replace("_", " ") for spec in config.labels]
        self._label_vectors: np.ndarray | None = None
        self._rows: dict[str, list[str]] = {}

    def prepare(self, texts: list[str], store: Any = None) -> None:
        from labelmill.selectors.embeddings import embed

        if self._label_vectors is None:
            self._label_vectors = embed(self.texts, self.model, store)
        todo = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if todo:
            similarity = embed(todo, self.model, store) @ self._label_vectors.T
            for text, row in zip(todo, similarity):
                keep = set(np.argsort(-row, kind="stable")[: self.k].tolist())
                self._rows[text] = [label for i, label in enumerate(self.labels) if i in keep]

    def for_row(self, text: str) -> list[str]:
        if text not in self._rows:
            self.prepare([text])
        return self._rows[text]


def classification_metrics(gold: Sequence[Any], predicted: Sequence[Any], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy (failures count wrong), completion rate, macro-F1, per-class P/R/F1, confusion matrix."""
    n = len(gold)
    completed = [p is not None for p in predicted]
    correct = [p is not None and g == p for g, p in zip(gold, predicted)]
    per_class = {}
    f1s = []
    gold_counts = Counter(gold)
    pred_counts = Counter(p for p in predicted if p is not None)
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted) if g == label and p == label)
        precision = tp / pred_counts[label] if pred_counts[label] else 0.0
        recall = tp / gold_counts[label] if gold_counts[label] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": gold_counts[label]}
        if gold_counts[label] or pred_counts[label]:
            f1s.append(f1)
    names = list(labels)
    index = {label: i for i, label in enumerate(names)}
    matrix = [[0] * (len(names) + 1) for _ in names]  # last column: no label (failure)
    for g, p in zip(gold, predicted):
        if g in index:
            matrix[index[g]][index[p] if p in index else len(names)] += 1
    n_completed = sum(completed)
    return {
        "n_rows": n,
        "accuracy": sum(correct) / n if n else 0.0,
        "accuracy_on_completed": sum(correct) / n_completed if n_completed else 0.0,
        "completion_rate": n_completed / n if n else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "per_class": per_class,
        "confusion_matrix": {"labels": names, "columns": names + ["(no label)"], "rows": matrix},
    }
