"""Sub-labelers: each one gives a column of the label matrix L[n, m] (a label index, or -1 to abstain).

A prompted sub-labeler is a small classification config of its own (the question as guidelines, its
answers as the labels), run through the core loop: its answers are scored, cached and stored with their
provenance like any run's, so a rerun asks nothing twice. Rules (keywords, regex) need no model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from labelmill.config import Config, SubLabelerSpec, derive_config
from labelmill.errors import ConfigError
from labelmill.store import LabelTable

ABSTAIN = -1
ABSTAIN_ANSWER = "abstain"
_WORD = re.compile(r"\w+", re.UNICODE)


def check_sub_labeler(spec: SubLabelerSpec, names: Sequence[str]) -> None:
    """A clear error for a sub-labeler that names a label the task lacks, or lacks what its kind needs."""
    where = f"weak.sub_labelers[{spec.name}]"
    if spec.kind == "prompt":
        if not spec.question or len(spec.answers) < 2:
            raise ConfigError(f"{where}: a prompted sub-labeler needs a question and at least two answers", fix="e.g. question: 'Does it insult someone?', answers: {yes: toxic, no: abstain}")
        wrong = [v for v in spec.answers.values() if v != ABSTAIN_ANSWER and v not in names]
    elif spec.kind in ("keywords", "regex"):
        if spec.kind == "keywords" and not spec.keywords:
            raise ConfigError(f"{where}: a keywords rule needs keywords", fix="list the words under keywords:")
        if spec.kind == "regex":
            if not spec.pattern:
                raise ConfigError(f"{where}: a regex rule needs a pattern", fix="give pattern: '...'")
            try:
                re.compile(spec.pattern)
            except re.error as exc:
                raise ConfigError(f"{where}: the pattern {spec.pattern!r} is not a regular expression ({exc})", fix="fix the pattern") from None
        wrong = [spec.label] if spec.label not in names else []
    else:
        wrong = []
    if wrong:
        raise ConfigError(f"{where} votes for {wrong[0]!r}, which is not a label of this task", fix=f"use one of: {', '.join(names)} (or abstain)")


def rule_votes(spec: SubLabelerSpec, texts: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """(n,) the rule's label index where it fires, -1 elsewhere."""
    label = list(names).index(spec.label)
    if spec.kind == "keywords":
        words = {w.casefold() for w in spec.keywords}
        phrases = [w for w in words if not _WORD.fullmatch(w)]  # "not good": matched as a phrase
        fires = [bool(words & {t.casefold() for t in _WORD.findall(text)}) or any(p in text.casefold() for p in phrases) for text in texts]
    else:
        pattern = re.compile(spec.pattern, re.IGNORECASE)
        fires = [bool(pattern.search(text)) for text in texts]
    return np.where(fires, label, ABSTAIN)


def prompt_config(base: Config, spec: SubLabelerSpec, input_template: str | None = None) -> Config:
    """The sub-labeler as a config of its own: its question as the guidelines, its answers as the labels
    (`input_template`: how its rows are shown, when not as the base config shows them)."""
    extra = {"input_template": input_template} if input_template else {}
    return derive_config(
        base, name=f"{base.name}:{spec.name}", task="classification", labels=list(spec.answers), guidelines=spec.question,
        examples={"k": 0, "items": [], "file": None}, gold_column=None, **extra,
    )


def model_votes(table: LabelTable, spec: SubLabelerSpec, names: Sequence[str]) -> np.ndarray:
    """(n,) a model sub-labeler's votes: its answer mapped to a task label, -1 where it abstains (no answer,
    an answer mapped to abstain, or a confidence under `abstain_below`)."""
    mapping = spec.answers if spec.kind == "prompt" else {n: n for n in names}
    votes = np.full(len(table), ABSTAIN)
    for i, stored in enumerate(table.rows):
        if stored is None or stored.label is None:
            continue
        target = mapping.get(str(stored.label), ABSTAIN_ANSWER)
        if target == ABSTAIN_ANSWER or (stored.confidence is not None and stored.confidence < spec.abstain_below):
            continue
        votes[i] = list(names).index(target)
    return votes
