"""weak's config section (`weak:`): the sub-labelers and how their votes are combined. Registered in
`labelmill.registry.sections`; light to import (the config reads it when it validates a file)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from labelmill.config import Strict
from labelmill.registry import Section


class SubLabelerSpec(Strict):
    """One sub-labeler of weak supervision: a small question to the model, a rule, or the main labeler."""

    name: str = Field(description="A short name (its vote column is weak_vote_<name>).")
    kind: Literal["prompt", "keywords", "regex", "zero_shot", "python", "column"] = Field(
        description="prompt: a yes/no or small-choice question scored on the model; keywords / regex: a rule; "
        "zero_shot: the main labeler (this config as it is); python: a function of the row; column: labels another "
        "model (or the FreeAL student, or a person) already gave, read from a column."
    )
    question: str = Field("", description="prompt: the question asked about each row, e.g. 'Does this comment insult someone?'.")
    answers: dict[str, str] = Field(
        default_factory=dict,
        description="prompt: each answer the model may give -> the task label it votes for, or 'abstain', e.g. {yes: toxic, no: abstain}.",
    )
    abstain_below: float | Literal["auto"] = Field(
        0.0, description="prompt, zero_shot: abstain when the model's confidence is below this; auto: a threshold per label chosen on "
        "the weak.seed rows, the lowest at which the sub-labeler's votes for that label reach weak.min_precision (its own calibration).",
    )
    function: str = Field("", description="python: 'module:function' or 'file.py:function' (next to the config); called with the row (a dict), "
                          "returns a label, None to abstain (a list of labels for multi-label tasks).")
    column: str = Field("", description="column: the column holding the labels (empty: abstain).")
    file: str | None = Field(None, description="column: read the column from this file (same rows, same order) instead of the input.")

    @field_validator("abstain_below")
    @classmethod
    def _threshold_range(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not 0.0 <= value <= 1.0:
            raise ValueError("abstain_below is a confidence between 0 and 1, or 'auto'")
        return value
    keywords: list[str] = Field(default_factory=list, description="keywords: vote `label` when the row contains any of these words (case-insensitive).")
    pattern: str = Field("", description="regex: vote `label` when this regular expression matches the row (case-insensitive).")
    label: str = Field("", description="keywords / regex: the task label the rule votes for.")

    @field_validator("answers", mode="before")
    @classmethod
    def _yes_no_keys(cls, value: Any) -> Any:
        """YAML reads an unquoted yes / no as true / false: they mean the answers "yes" and "no"."""
        if isinstance(value, dict):
            return {("yes" if k else "no") if isinstance(k, bool) else k: v for k, v in value.items()}
        return value


class WeakSpec(Strict):
    """Weak supervision (`labelmill weak`): sub-labelers whose votes a label model combines."""

    sub_labelers: list[SubLabelerSpec] = Field(default_factory=list)
    label_model: Literal["dawid_skene", "majority_vote", "snorkel"] = Field(
        "dawid_skene", description="dawid_skene: learns each sub-labeler's accuracy per label (EM, abstaining modelled as an answer); "
        "majority_vote: the most common vote; snorkel: snorkel's LabelModel (pip install 'labelmill[weak]')."
    )
    seed: str | None = Field(None, description="Labeled rows (a train, dev or seed file with the gold column, never test rows): each sub-labeler "
                             "is run and scored on them, for abstain_below: auto and the accuracy floor.")
    seed_rows: int = Field(300, ge=10, description="How many seed rows to use (a sample drawn with model.seed when the file has more).")
    min_precision: float = Field(0.6, gt=0.0, le=1.0, description="abstain_below: auto picks the lowest threshold whose votes reach this precision on the seed rows.")
    min_coverage: float = Field(0.01, ge=0.0, le=1.0, description="A sub-labeler voting on fewer rows than this share is flagged.")
    min_accuracy: float = Field(0.5, ge=0.0, le=1.0, description="A sub-labeler less accurate than this on the seed rows is flagged.")
    select: bool = Field(False, description="Drop flagged sub-labelers before the label model combines the votes (also --select).")
    fit_on_seed: bool = Field(True, description="dawid_skene: also learn from the seed rows, whose classes are known (semi-supervised): "
                              "each sub-labeler's confusions are pinned to what it does there, and EM cannot swap two classes.")


# the weak section does not change what a config's labeler answers: its sub-labelers run as configs of their own
SECTION = Section("weak", WeakSpec, owner="strategy weak", fingerprint="never")
