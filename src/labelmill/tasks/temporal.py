"""The order of two events: a marked event pair -> BEFORE / AFTER / EQUAL / VAGUE.

A row holds a text (one or two sentences) and two events, e1 and e2, given as character spans (or marked
<e1>...</e1> and <e2>...</e2> in the text, as `relation` reads them). The answer is one label of the closed
set, scored like classification, so every row gets a label (completion 1.0) and its distribution is its
confidence. Labels compare the events' start points, as MATRES does.

Eval reports accuracy, macro-F1, per-label precision and recall, and MATRES's micro-F1 without the vague
label (a VAGUE prediction or gold row counts on neither side). Human agreement on event order is low, so
when a row carries its annotators' judgements (`temporal.annotations_column`) eval also reports how often
each annotator agrees with the majority, how often two annotators agree, and how often the model agrees
with an annotator: the figures a model's score means something beside.

A small model is weak at event order; what tells the order is mostly in a few words around the events
(tense and aspect auxiliaries, modals, "then", "after", a sentence end between them). The task gives a
student those cues (`order_cues`, hashed beside the sentence embedding), so with labeled pairs a tiered
cascade's student tier (`labelmill run --tiers student,MODEL --tiers-seed PAIRS.jsonl`) learns them; see
bench/README for what it reaches on UDS-Time.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from labelmill.config import Strict
from labelmill.registry import Section
from labelmill.tasks.base import load_structured, normalise
from labelmill.tasks.classification import ClassificationTask, classification_metrics, guidelines_with_labels
from labelmill.tasks.relation import row_pair, shown_pair

if TYPE_CHECKING:
    from labelmill.config import Config


class TemporalSpec(Strict):
    """The temporal order of two marked events (BEFORE / AFTER / EQUAL / VAGUE)."""

    text_column: str = Field("text", description="Column with the text holding both events (one or two sentences).")
    e1_column: str = Field("e1", description="Column with the first event: {start, end, text}, its JSON, or its text (or <e1> marks in the text).")
    e2_column: str = Field("e2", description="Column with the second event.")
    annotations_column: str | None = Field(
        "annotations", description="Optional column with each annotator's judgement (labels, or UDS-Time's [start1, end1, start2, end2, "
        "confidence] lists): eval reports the model's and each annotator's agreement with the majority.",
    )
    vague_label: str = Field("VAGUE", description="The label left out of the MATRES-style micro-F1.")


SECTION = Section("temporal", TemporalSpec, owner="task temporal", fingerprint="unless_default")


#: the default label set, MATRES's four relations between start points
ORDER_LABELS = (
    ("BEFORE", "e1 starts before e2 starts"),
    ("AFTER", "e1 starts after e2 starts"),
    ("EQUAL", "e1 and e2 start at the same time"),
    ("VAGUE", "the text does not tell which starts first"),
)


def order_from_starts(start1: float, start2: float) -> str:
    """An annotator's label from the two start points (UDS-Time sliders): earlier, later or the same."""
    return "BEFORE" if start1 < start2 else "AFTER" if start1 > start2 else "EQUAL"


def annotator_labels(cell: Any, names: Mapping[str, str]) -> list[str]:
    """Each annotator's label from an annotations cell: a list of labels, or of UDS-Time lists
    [start1, end1, start2, end2, confidence] (compared on start points). Unreadable entries are skipped."""
    data = load_structured(cell) if isinstance(cell, str) else cell
    if data is None or isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        return []
    out = []
    for item in data:
        if isinstance(item, str):
            label = names.get(normalise(item))
            if label:
                out.append(label)
        elif hasattr(item, "__len__") and len(item) >= 3:
            try:
                out.append(order_from_starts(float(item[0]), float(item[2])))
            except (TypeError, ValueError):
                continue
    return out


def majority(labels: Sequence[str], vague: str) -> str | None:
    """The label a strict majority holds, else the vague label (None for no labels)."""
    if not labels:
        return None
    label, count = Counter(labels).most_common(1)[0]
    return label if count * 2 > len(labels) else vague


def micro_f1_without(gold: Sequence[Any], predicted: Sequence[Any], left_out: str) -> dict[str, float]:
    """MATRES-style micro P/R/F1: predictions and gold rows of `left_out` count on neither side; a failed row
    predicts nothing."""
    right = sum(1 for g, p in zip(gold, predicted) if p is not None and p == g and g != left_out)
    n_pred = sum(1 for p in predicted if p is not None and p != left_out)
    n_gold = sum(1 for g in gold if g != left_out)
    precision = right / n_pred if n_pred else 0.0
    recall = right / n_gold if n_gold else 0.0
    return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0}


# the words around an event that tell its time: tense and aspect auxiliaries, modals, negation, connectives
CUE_WORDS = frozenset(
    "will would had have has to was were is are am be been being after before then when while since until as because so if could "
    "should can may might must did do does not n't never already now later first once and but that going gonna 'll 'd 've".split()
)
CUE_MARKS = frozenset(",.;:()-!?")
CUE_DIMS = 1024  # hashed feature slots (a fixed width: no vocabulary to fit, the same columns for every row)
_TOKEN = re.compile(r"n't|'\w+|\w+|[^\w\s]")


def order_cues(text: str, e1: Mapping[str, Any], e2: Mapping[str, Any]) -> dict[str, float]:
    """The cues of event order a sentence encoder blurs, as named features: each event's word and ending, the
    cue words just before and after it (by position), the cue words and marks between the two events (a
    sentence end among them), how far apart they are, and the pair of event words."""
    out: dict[str, float] = {}
    for tag, e in (("e1", e1), ("e2", e2)):
        word = str(e["text"]).lower()
        out[f"{tag}_word={word}"] = 1.0
        for ending in ("ed", "ing", "en", "s", "e"):
            if word.endswith(ending):
                out[f"{tag}_ends={ending}"] = 1.0
        before = _TOKEN.findall(text[: e["start"]].lower())[-4:]
        for i, token in enumerate(reversed(before)):
            if token in CUE_WORDS:
                out[f"{tag}_before{i}={token}"] = out[f"{tag}_before={token}"] = 1.0
        for i, token in enumerate(_TOKEN.findall(text[e["end"]:].lower())[:2]):
            if token in CUE_WORDS:
                out[f"{tag}_after{i}={token}"] = 1.0
    first, second = (e1, e2) if e1["start"] <= e2["start"] else (e2, e1)
    if first is e2:
        out["e2_first"] = 1.0
    between = _TOKEN.findall(text[first["end"]:second["start"]].lower())
    out["between_tokens"] = min(len(between), 40) / 40
    for token in set(between):
        if token in CUE_WORDS or token in CUE_MARKS:
            out[f"between={token}"] = 1.0
    out[f"pair={str(e1['text']).lower()}|{str(e2['text']).lower()}"] = 1.0
    return out


def hashed(features: Sequence[Mapping[str, float]], dims: int = CUE_DIMS) -> np.ndarray:
    """Named features into `dims` fixed columns (CRC-32 of the name, stable across runs and machines)."""
    out = np.zeros((len(features), dims), dtype=np.float32)
    for i, row in enumerate(features):
        for name, value in row.items():
            out[i, zlib.crc32(name.encode("utf-8")) % dims] += value
    return out


class TemporalTask(ClassificationTask):
    """The temporal order of two marked events, from a closed label set (default BEFORE / AFTER / EQUAL / VAGUE)."""

    default_guidelines = (
        "Read the text and decide when the event marked <e1>...</e1> (e1) starts compared with the event marked "
        "<e2>...</e2> (e2). Go by what the text says or implies about time (tense, 'then', 'after', 'before'), "
        "not by the order the words appear in."
    )

    @classmethod
    def configure(cls, config: Config) -> None:
        from labelmill.config import LabelSpec

        if not config.labels:
            config.labels = [LabelSpec(name=name, description=text) for name, text in ORDER_LABELS]
        if len(config.labels) < 2:
            raise ValueError("labels: a temporal task needs at least two labels")
        if config.temporal.vague_label not in config.label_names:
            raise ValueError(f"temporal.vague_label: {config.temporal.vague_label!r} is not one of the labels ({', '.join(config.label_names)})")

    @classmethod
    def default_input_template(cls, config: Config) -> str:
        return "{" + config.temporal.text_column + "}"

    def required_columns(self) -> list[str]:
        spec = self.config.temporal
        return [spec.text_column, spec.e1_column, spec.e2_column]

    def pair(self, row: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """The row's plain text and its two events (offsets into that text), however the row marks them."""
        spec = self.config.temporal
        return row_pair(row, spec.text_column, spec.e1_column, spec.e2_column)

    def render(self, row: Mapping[str, Any]) -> str:
        spec = self.config.temporal
        return shown_pair(row, spec.text_column, spec.e1_column, spec.e2_column)

    def system_prompt(self) -> str:
        return guidelines_with_labels(self.config, self.default_guidelines) + "\n\nAnswer with the label only."

    def student_features(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Each pair's order cues (`order_cues`), hashed: a student learns tense, modals and connectives beside
        the embedding of the marked pair (on UDS-Time dev pairs they carry most of what a student learns)."""
        return hashed([order_cues(*self.pair(r)) for r in records])

    # metrics ----------------------------------------------------------------------------------------
    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        out = classification_metrics(gold, predicted, self.labels)
        vague = self.config.temporal.vague_label
        micro = micro_f1_without(gold, predicted, vague)
        counts = Counter(gold)
        top = counts.most_common(1)[0][0] if counts else None
        out.update({
            "temporal_accuracy": out["accuracy"], "temporal_macro_f1": out["macro_f1"],
            "temporal_micro_f1_no_vague": micro["f1"], "temporal_precision_no_vague": micro["precision"], "temporal_recall_no_vague": micro["recall"],
            "majority_label": top, "majority_accuracy": counts[top] / len(gold) if gold else 0.0,
            "majority_macro_f1": classification_metrics(gold, [top] * len(gold), self.labels)["macro_f1"] if gold else 0.0,
        })
        return out

    def record_metrics(self, records: Sequence[Mapping[str, Any]], predicted: Sequence[Any]) -> dict[str, Any]:
        """Agreement with the annotators, from the rows' annotations column (nothing when rows have none)."""
        column = self.config.temporal.annotations_column
        if not column:
            return {}
        vague = self.config.temporal.vague_label
        names = {normalise(n): n for n in self.labels}
        with_majority, pairwise, with_model = [], [], []
        rows = 0
        for record, p in zip(records, predicted):
            labels = annotator_labels(record.get(column), names)
            if len(labels) < 2:
                continue
            rows += 1
            top = majority(labels, vague)
            with_majority += [a == top for a in labels]
            pairwise += [labels[a] == labels[b] for a in range(len(labels)) for b in range(a + 1, len(labels))]
            with_model += [p is not None and p == a for a in labels]
        if not rows:
            return {}
        return {
            "temporal_annotated_rows": rows,
            "temporal_annotator_agreement": float(np.mean(with_majority)),
            "temporal_annotator_pairwise_agreement": float(np.mean(pairwise)),
            "temporal_model_annotator_agreement": float(np.mean(with_model)),
        }


__all__ = ["CUE_DIMS", "ORDER_LABELS", "TemporalTask", "annotator_labels", "hashed", "majority", "micro_f1_without", "order_cues", "order_from_starts"]
