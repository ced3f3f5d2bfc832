"""Sub-labelers: each one gives, per row, a vote on each label: V[n, k] with 1 = votes for the label, 0 =
votes against it (a multi-label zero-shot labeler leaving it out), -1 = no vote. For a one-label task a row
has at most one 1, and column j of the label matrix L[n, m] is that label's index (or -1).

A prompted sub-labeler is a small classification config of its own (the question as guidelines, its
answers as the labels), run through the core loop: its answers are scored, cached and stored with their
provenance like any run's, so a rerun asks nothing twice. Rules (keywords, regex), Python functions and
label columns need no model.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labelmill.config import Config, derive_config
from labelmill.strategies.weak.section import SubLabelerSpec
from labelmill.errors import ConfigError
from labelmill.store import LabelTable

ABSTAIN = -1
ABSTAIN_ANSWER = "abstain"
MODEL_KINDS = ("prompt", "zero_shot")
_WORD = re.compile(r"\w+", re.UNICODE)


def where(spec: SubLabelerSpec) -> str:
    return f"weak.sub_labelers[{spec.name}]"


def check_sub_labeler(spec: SubLabelerSpec, names: Sequence[str]) -> None:
    """A clear error for a sub-labeler that names a label the task lacks, or lacks what its kind needs."""
    wrong: list[str] = []
    if spec.kind == "prompt":
        if not spec.question or len(spec.answers) < 2:
            raise ConfigError(f"{where(spec)}: a prompted sub-labeler needs a question and at least two answers", fix="e.g. question: 'Does it insult someone?', answers: {yes: toxic, no: abstain}")
        wrong = [v for v in spec.answers.values() if v != ABSTAIN_ANSWER and v not in names]
    elif spec.kind in ("keywords", "regex"):
        if spec.kind == "keywords" and not spec.keywords:
            raise ConfigError(f"{where(spec)}: a keywords rule needs keywords", fix="list the words under keywords:")
        if spec.kind == "regex":
            if not spec.pattern:
                raise ConfigError(f"{where(spec)}: a regex rule needs a pattern", fix="give pattern: '...'")
            try:
                re.compile(spec.pattern)
            except re.error as exc:
                raise ConfigError(f"{where(spec)}: the pattern {spec.pattern!r} is not a regular expression ({exc})", fix="fix the pattern") from None
        wrong = [spec.label] if spec.label not in names else []
    elif spec.kind == "python" and ":" not in spec.function:
        raise ConfigError(f"{where(spec)}: a python sub-labeler needs function: 'module:function' or 'file.py:function'", fix="e.g. function: rules.py:mentions_money")
    elif spec.kind == "column" and not spec.column:
        raise ConfigError(f"{where(spec)}: a column sub-labeler needs column: (the column holding the labels)", fix="e.g. column: student_label")
    if spec.abstain_below == "auto" and spec.kind not in MODEL_KINDS:
        raise ConfigError(f"{where(spec)}: abstain_below: auto calibrates a model's confidence; a {spec.kind} sub-labeler has none", fix="drop abstain_below")
    if wrong:
        raise ConfigError(f"{where(spec)} votes for {wrong[0]!r}, which is not a label of this task", fix=f"use one of: {', '.join(names)} (or abstain)")


def one_label(V: np.ndarray) -> np.ndarray:
    """(n,) a one-label sub-labeler's column of L: the label it votes for, -1 where it abstains."""
    return np.where((V == 1).any(axis=1), (V == 1).argmax(axis=1), ABSTAIN)


def from_labels(values: Sequence[Any], names: Sequence[str], multi: bool, against_rest: bool = False) -> np.ndarray:
    """V[n, k] from per-row answers: a label, a list of labels (multi-label), or None to abstain.
    `against_rest`: a multi-label answer also votes against the labels it leaves out."""
    index = {n: i for i, n in enumerate(names)}
    V = np.full((len(values), len(names)), ABSTAIN, dtype=int)
    for i, value in enumerate(values):
        if value is None:
            continue
        chosen = [value] if isinstance(value, str) else list(value)
        if not chosen and not against_rest:
            continue
        if multi and against_rest:
            V[i] = 0
        for label in chosen:
            V[i, index[label]] = 1
    return V


def rule_votes(spec: SubLabelerSpec, texts: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """V[n, k]: the rule's label where it fires."""
    if spec.kind == "keywords":
        words = {w.casefold() for w in spec.keywords}
        phrases = [w for w in words if not _WORD.fullmatch(w)]  # "not good": matched as a phrase
        fires = [bool(words & {t.casefold() for t in _WORD.findall(text)}) or any(p in text.casefold() for p in phrases) for text in texts]
    else:
        pattern = re.compile(spec.pattern, re.IGNORECASE)
        fires = [bool(pattern.search(text)) for text in texts]
    return from_labels([spec.label if f else None for f in fires], names, multi=False)


def load_function(spec: SubLabelerSpec, base_dir: Path) -> Callable[[dict], Any]:
    """The function a python sub-labeler names: 'module:function', or 'file.py:function' next to the config."""
    target, _, attr = spec.function.rpartition(":")
    try:
        if target.endswith(".py"):
            path = (base_dir / target).resolve()
            name = f"labelmill_weak_{abs(hash(str(path)))}"
            module = sys.modules.get(name)
            if module is None:
                loader = importlib.util.spec_from_file_location(name, path)
                if loader is None or not path.is_file():
                    raise FileNotFoundError(f"no file {path}")
                module = importlib.util.module_from_spec(loader)
                loader.loader.exec_module(module)  # type: ignore[union-attr]
                sys.modules[name] = module
        else:
            module = importlib.import_module(target)
        function = getattr(module, attr)
    except Exception as exc:  # an import error of the user's file is theirs to see
        raise ConfigError(f"{where(spec)}: cannot load {spec.function!r} ({type(exc).__name__}: {exc})",
                          fix="check the module or file path (relative to the config's folder) and the function's name") from None
    if not callable(function):
        raise ConfigError(f"{where(spec)}: {spec.function!r} is not a function", fix="name a function of the row")
    return function


def python_votes(spec: SubLabelerSpec, function: Callable[[dict], Any], records: Sequence[dict], names: Sequence[str], multi: bool) -> np.ndarray:
    """V[n, k] from a Python function of each row (its label, a list for multi-label, or None)."""
    answers = []
    for i, row in enumerate(records):
        try:
            value = function(dict(row))
        except Exception as exc:
            raise ConfigError(f"{where(spec)}: {spec.function} raised on row {i} ({type(exc).__name__}: {exc})",
                              fix="make the function return None for rows it cannot judge") from None
        answers.append(_checked(spec, value, names, i))
    return from_labels(answers, names, multi)


def column_votes(spec: SubLabelerSpec, values: Sequence[Any], names: Sequence[str], separator: str | None) -> np.ndarray:
    """V[n, k] from a column of labels another labeler gave (empty = abstain; `separator`: multi-label)."""
    answers = []
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
            answers.append(None)
            continue
        parts = [p.strip() for p in str(value).split(separator)] if separator else [str(value).strip()]
        answers.append(_checked(spec, [p for p in parts if p] if separator else parts[0], names, i))
    return from_labels(answers, names, multi=separator is not None, against_rest=separator is not None)


def _checked(spec: SubLabelerSpec, value: Any, names: Sequence[str], row: int) -> Any:
    """A label (or list of labels) in the task's label set, matched case-insensitively; None for abstain."""
    if value is None or (isinstance(value, str) and value.strip().casefold() in ("", ABSTAIN_ANSWER)):
        return None
    by_norm = {n.casefold(): n for n in names}
    many = not isinstance(value, str)
    out = []
    for part in ([value] if not many else list(value)):
        label = by_norm.get(str(part).strip().casefold())
        if label is None:
            raise ConfigError(f"{where(spec)} gave {part!r} on row {row}, which is not a label of this task", fix=f"use one of: {', '.join(names)} (or None to abstain)")
        out.append(label)
    return out if many else out[0]


QUESTION_GUIDELINES = "Read the text, then answer the question that follows it."


def prompt_config(base: Config, spec: SubLabelerSpec, input_template: str | None = None) -> Config:
    """The sub-labeler as a config of its own: its answers as the labels, and its question after each row's
    text (`input_template`: how its rows are shown, when not as the base config shows them). A small model
    asked the question before the text (as guidelines) answers much the same for every row; after the
    text, its "yes" follows what the text is about."""
    shown = input_template or base.input_template or "{text}"
    question = spec.question.replace("{", "{{").replace("}", "}}")
    return derive_config(
        base, name=f"{base.name}:{spec.name}", task="classification", labels=list(spec.answers), guidelines=QUESTION_GUIDELINES,
        examples={"k": 0, "items": [], "file": None}, gold_column=None, input_template=f"{shown}\n\nQuestion: {question}",
    )


def model_scores(table: LabelTable, spec: SubLabelerSpec, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """A model sub-labeler's (chosen (n,) label index or -1, scores (n, k)): scores[i, l] is the model's
    probability of the answers that vote for label l (from the stored distribution; without one, the
    confidence of the chosen answer). Zero-shot on a one-label task: the label distribution itself."""
    mapping = spec.answers if spec.kind == "prompt" else {n: n for n in names}
    index = {n: i for i, n in enumerate(names)}
    chosen = np.full(len(table), ABSTAIN)
    scores = np.zeros((len(table), len(names)))
    for i, stored in enumerate(table.rows):
        if stored is None or stored.label is None or not isinstance(stored.label, str):
            continue
        target = mapping.get(str(stored.label), ABSTAIN_ANSWER)
        if target != ABSTAIN_ANSWER:
            chosen[i] = index[target]
        if stored.distribution:
            for answer, p in stored.distribution.items():
                label = mapping.get(str(answer), ABSTAIN_ANSWER)
                if label != ABSTAIN_ANSWER:
                    scores[i, index[label]] += float(p)
        elif chosen[i] != ABSTAIN:
            scores[i, chosen[i]] = 1.0 if stored.confidence is None else float(stored.confidence)
    return chosen, scores


def model_votes(table: LabelTable, spec: SubLabelerSpec, names: Sequence[str], thresholds: np.ndarray | None = None, multi: bool = False) -> np.ndarray:
    """V[n, k]: a model sub-labeler's votes. With a fixed `abstain_below`: the label its answer maps to,
    unless the confidence is under it. With `thresholds` (k,) (abstain_below: auto, fitted on seed rows):
    the label whose score clears its threshold by the most, NaN thresholds never firing. A multi-label
    zero-shot answer votes for the labels it gives and against the rest."""
    if multi and spec.kind == "zero_shot":
        values = []
        for stored in table.rows:
            ok = stored is not None and stored.label is not None and not (stored.confidence is not None and isinstance(spec.abstain_below, float) and stored.confidence < spec.abstain_below)
            values.append(list(stored.label) if ok else None)  # type: ignore[union-attr]
        return from_labels(values, names, multi=True, against_rest=True)
    chosen, scores = model_scores(table, spec, names)
    V = np.full((len(table), len(names)), ABSTAIN, dtype=int)
    if thresholds is not None:
        margin = np.where(np.isnan(thresholds)[None, :], -np.inf, scores - np.nan_to_num(thresholds, nan=0.0)[None, :])
        best = margin.argmax(axis=1)
        fires = margin[np.arange(len(table)), best] >= 0
        V[np.flatnonzero(fires), best[fires]] = 1
        return V
    for i, stored in enumerate(table.rows):
        if chosen[i] == ABSTAIN or (stored.confidence is not None and stored.confidence < float(spec.abstain_below)):  # type: ignore[union-attr]
            continue
        V[i, chosen[i]] = 1
    return V
