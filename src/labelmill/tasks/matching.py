"""Entity matching: do two records refer to the same real-world entity? A closed, two-label set, scored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labelmill.tasks.base import is_missing, normalise
from labelmill.tasks.classification import (
    ClassificationTask,
    classification_metrics,
    guidelines_with_labels,
)

if TYPE_CHECKING:
    from labelmill.config import Config

_YES = {"1", "1.0", "true", "yes", "y", "match", "matched", "same", "duplicate", "positive"}
_NO = {"0", "0.0", "false", "no", "n", "no match", "not match", "different", "not duplicate", "negative", "non-match", "nonmatch"}


class MatchingTask(ClassificationTask):
    """labels[0] is the match label, labels[1] the no-match label; gold may also be 1/0, true/false, yes/no."""

    @classmethod
    def configure(cls, config: Config) -> None:
        from labelmill.config import LabelSpec

        if not config.labels:
            config.labels = [LabelSpec(name="match", description="both records refer to the same real-world entity"),
                             LabelSpec(name="no match", description="the records refer to different entities")]
        if len(config.labels) != 2:
            raise ValueError("labels: a matching task has exactly two labels, the match label first")

    @classmethod
    def default_input_template(cls, config: Config) -> str:
        return "Record A: {left}\nRecord B: {right}"

    default_guidelines = (
        "Decide whether Record A and Record B refer to the same real-world entity (the same product, "
        "person or organisation), not merely similar ones. Details that differ, such as a model number, "
        "size or version, mean different entities."
    )

    @property
    def match_label(self) -> str:
        return self.labels[0]

    def system_prompt(self) -> str:
        return guidelines_with_labels(self.config, self.default_guidelines) + (
            "\n\nDo Record A and Record B refer to the same entity? Answer yes or no."
        )

    def candidates(self) -> list[str]:
        """The model answers yes (labels[0]) or no (labels[1]): a question small models answer best."""
        return ["yes", "no"]

    def demo_answer(self, gold: Any, row=None) -> str:
        return "yes" if gold == self.labels[0] else "no"

    def parse_gold(self, value: Any) -> Any:
        if isinstance(value, bool):
            return self.labels[0] if value else self.labels[1]
        if isinstance(value, (int, float)) and not is_missing(value):
            return self.labels[0] if value else self.labels[1]
        if is_missing(value):
            return None
        text = normalise(str(value))
        if text in self.matcher.by_norm:
            return self.matcher.by_norm[text]
        if text in _YES:
            return self.labels[0]
        if text in _NO:
            return self.labels[1]
        return str(value).strip()

    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        out = classification_metrics(gold, predicted, self.labels)
        match = out["per_class"][self.match_label]
        out.update({"precision": match["precision"], "recall": match["recall"], "f1": match["f1"], "match_label": self.match_label})
        out["predicted_matches"] = sum(1 for p in predicted if p == self.match_label)
        out["gold_matches"] = sum(1 for g in gold if g == self.match_label)
        return out
