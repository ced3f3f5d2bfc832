"""`labelmill synth examples`: labeled examples per label for a classification config, from zero real rows.

AttrPrompt-style diversity: the generator first lists subtopics per label, then each example asks for one
combination of subtopic, length and style, so the examples do not all read alike. Then the filters: rules
(empty, too short or long, refusals, text about the request), MinHash and embedding near-duplicates, and
consistency: an example must get its intended label back, from the config's own labeler (`consistency=
"labeler"`) or from a student trained on the other examples (`"student"`: logistic regression on sentence
embeddings, 5-fold cross-fitted, no model calls; what works when the labeler itself is weak on the task). Every request goes through the
store's cache batch by batch, so a crashed run resumes where it stopped and a rerun asks nothing twice.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ConfigDict

from labelmill.config import Config, ModelSpec, load_with_notices
from labelmill.core import Job, Runner
from labelmill.core.job import Call
from labelmill.core.strategy import Options
from labelmill.errors import ConfigError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.io import write_rows
from labelmill.store import Store
from labelmill.strategies.synth.filters import distinct_n, embedding_dedup, embedding_spread, minhash_dedup, rule_filter
from labelmill.template import template_fields
from labelmill.types import Prompt

SYSTEM = "You write realistic example data for a text classification dataset. Reply with exactly what is asked."
LENGTHS = ("one short sentence", "two sentences", "three or four sentences")
STYLES = ("plain", "casual", "formal", "detailed")
_CHATTER = re.compile(r"^(?:(?:(?:sure|certainly|understood|okay|of course)[^\n:]{0,40}?[.!,]\s*)?here(?:'s| is)\b[^\n:]{0,60}:\s*"
                      r"|(?:sure|certainly|understood|of course)\b[^\n:]{0,60}:\s*)", re.IGNORECASE)
_PREFIX = re.compile(r"^\s*(?:(?:example|text|input|review|article|sentence)\s*\d*\s*[:.-]\s*)", re.IGNORECASE)


@dataclass
class SynthResult:
    frame: pd.DataFrame  # text column, label, subtopic, length, style, kept, removed_by
    figures: dict[str, Any]  # generated, removed per filter, kept, per label, distinct_2, embedding_spread
    output_path: Path | None = None
    texts: list[str] = field(default_factory=list)  # the kept examples


class ExamplesOptions(Options):
    """synth examples' knobs: examples per label, subtopics, the writer (generator) and its temperature, the consistency check, dedup and batch size."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    per_label: int = 50
    subtopics: int = 6
    generator: dict | None = None
    temperature: float = 0.9
    consistency: bool | str = True
    dedup: bool = True
    batch: int = 64


def synth_examples(
    config: str | Path | dict | Config, options: ExamplesOptions | dict | None = None, *, project: str | Path = "labelmill.db", output: str | Path | None = None, backend: Any = None, on_event: EventHandler = ignore, **knobs: Any,
) -> SynthResult:
    """Write `per_label` examples for each label of a classification config (see the module docstring).
    `generator`: model settings for the writer (default: the config's model); the config's own labeler
    does the consistency check."""
    o = ExamplesOptions.of(options, knobs)
    per_label, subtopics, generator, temperature, consistency, dedup, batch = o.per_label, o.subtopics, o.generator, o.temperature, o.consistency, o.dedup, o.batch
    cfg = load_with_notices(config, on_event)
    if cfg.task != "classification":
        raise ConfigError(f"synth examples writes rows for classification configs; this one is {cfg.task!r}", fix="use a classification config")
    fields = template_fields(cfg.input_template or "{text}")
    if len(fields) != 1:
        raise ConfigError(f"synth examples writes one text column; the input_template uses {len(fields)}: {', '.join(fields)}",
                          fix="use a config whose input_template shows one column, e.g. '{text}'")
    column = fields[0]
    writer = cfg if not generator else cfg.model_copy(update={"model": ModelSpec.model_validate({**cfg.model.model_dump(), **generator})})
    guidelines = cfg.guidelines.replace("{labels}", ", ".join(cfg.label_names)).strip() or f"Label each text as one of: {', '.join(cfg.label_names)}."
    job = Job(writer, backend)
    try:
        with Store(project) as store:
            runner = Runner(job, store)
            topics = _subtopics(cfg, guidelines, runner, store, subtopics)
            plan = _plan(cfg, topics, per_label)
            prompts = [Prompt(SYSTEM, (), _ask(guidelines, row)) for row in plan]
            on_event(Notice(f"synth: writing {len(prompts)} examples ({per_label} per label) with {writer.model.name}"))
            texts: list[str] = []
            call = Call("synth_example", "generate", max_tokens=120, temperature=temperature, seed=cfg.model.seed)
            for start in range(0, len(prompts), batch):  # each batch is cached before the next: a crash loses at most one
                answers, new = runner.answers(prompts[start : start + batch], call)
                store.cache_put(new)
                texts.extend(clean_example(str(a.get("text") or "")) for a in answers)
                on_event(Notice(f"synth: {len(texts)} of {len(prompts)} written"))
    finally:
        if backend is None:
            job.backend.close()
    frame = pd.DataFrame(plan)
    frame.insert(0, column, texts)
    frame["removed_by"] = ""
    figures: dict[str, Any] = {"generated": len(frame), "generator": f"{writer.model.backend}:{writer.model.name}"}
    kept_texts = _filter(_Written(cfg, frame, column, texts, figures, project, backend, on_event), o)
    path = write_rows(frame, output) if output else None
    return SynthResult(frame, figures, path, kept_texts)


@dataclass
class _Written:
    """The written examples on their way through the filters (`frame` marks what each removed, `figures` counts it)."""

    cfg: Config
    frame: pd.DataFrame
    column: str
    texts: list[str]
    figures: dict[str, Any]
    project: str | Path
    backend: Any
    on_event: EventHandler


def _filter(w: _Written, o: ExamplesOptions) -> list[str]:
    """The filters in order (rules, MinHash and embedding near-duplicates, the consistency check), each
    marking the rows it removes in `removed_by` and counting them in `figures`; the kept texts."""
    cfg, frame, texts, figures, project, dedup = w.cfg, w.frame, w.texts, w.figures, w.project, o.dedup
    alive = np.arange(len(frame))
    ruled = rule_filter([texts[i] for i in alive])
    _mark(frame, alive, ruled.keep, "rules")
    figures["removed_rules"] = ruled.removed
    alive = alive[ruled.keep]
    if dedup and len(alive):
        hashed = minhash_dedup([texts[i] for i in alive], threshold=0.7)
        _mark(frame, alive, hashed.keep, "minhash_duplicate")
        alive = alive[hashed.keep]
        vectors = _embed([texts[i] for i in alive], cfg, project)
        near = embedding_dedup(vectors, threshold=0.95)
        _mark(frame, alive, near.keep, "embedding_duplicate")
        alive, vectors = alive[near.keep], vectors[near.keep]
        figures["removed_minhash"], figures["removed_embedding"] = hashed.removed_total, near.removed_total
    alive = _consistent(w, alive, o.consistency)
    frame["kept"] = frame["removed_by"] == ""
    kept_texts = [texts[i] for i in alive]
    figures.update({
        "kept": len(alive), "kept_per_label": {str(k): int(v) for k, v in frame[frame["kept"]]["label"].value_counts().items()},
        "removed_share": round(1 - len(alive) / len(frame), 4) if len(frame) else 0.0,
        "dedup_removed_share": round((figures.get("removed_minhash", 0) + figures.get("removed_embedding", 0)) / len(frame), 4) if len(frame) else 0.0,
        "distinct_2": round(distinct_n(kept_texts, 2), 4),
    })
    if dedup and len(alive) > 1:
        figures["embedding_spread"] = round(embedding_spread(_embed(kept_texts, cfg, project)), 4)
    return kept_texts


def _consistent(w: _Written, alive: np.ndarray, consistency: Any) -> np.ndarray:
    """The consistency check (`labeler`: the config's own labeler must give the intended label back;
    `student`: a cross-fitted classifier on the other examples' embeddings must): the rows that pass."""
    cfg, frame, column, texts, figures = w.cfg, w.frame, w.column, w.texts, w.figures
    project, backend, on_event = w.project, w.backend, w.on_event
    kind = {True: "labeler", False: None, None: None}.get(consistency, consistency) if not isinstance(consistency, str) else consistency
    if kind not in (None, "labeler", "student"):
        raise ConfigError(f"unknown consistency check {consistency!r}", fix="use labeler, student or none")
    if kind and len(alive):
        if kind == "labeler":
            labeled = _label(cfg, frame.iloc[alive][[column]].reset_index(drop=True), project, backend, on_event)
        else:
            labeled = _cross_fitted([texts[i] for i in alive], frame["label"].iloc[alive].tolist(), cfg, project)
        agree = [i for i, (got, want) in enumerate(zip(labeled, frame["label"].iloc[alive])) if got == want]
        figures["consistency"] = kind
        _mark(frame, alive, agree, "inconsistent")
        figures["removed_inconsistent"] = len(alive) - len(agree)
        alive = alive[agree]
    return alive


def clean_example(text: str) -> str:
    """The example itself: its first paragraph, without chatter before it ("Sure! Here is one:"), a leading
    'Example 3:' or surrounding quotes."""
    text = _CHATTER.sub("", text.strip())
    first = text.strip().split("\n\n")[0].strip()
    first = _PREFIX.sub("", first).strip().strip('"“”').strip()
    return " ".join(first.split())


def _subtopics(cfg: Config, guidelines: str, runner: Runner, store: Store, count: int) -> dict[str, list[str]]:
    """Per label, subtopics the generator lists (AttrPrompt); the label itself where it lists none."""
    prompts = [Prompt(SYSTEM, (), f"Task: {guidelines}\n\nList {count} different subtopics that texts labeled \"{spec.name}\""
                      + (f" ({spec.description})" if spec.description else "") + " can be about. Reply with a comma-separated list only.")
               for spec in cfg.labels]
    answers, new = runner.answers(prompts, Call("synth_subtopics", "generate", max_tokens=80, temperature=0.0, seed=cfg.model.seed))
    store.cache_put(new)
    out = {}
    for spec, answer in zip(cfg.labels, answers):
        items = [re.sub(r"^\s*(?:[-*\d.)]+\s*)", "", p).strip().strip("\"'.") for p in re.split(r"[,;\n]", str(answer.get("text") or ""))]
        others = {o.name.casefold() for o in cfg.labels}  # a subtopic that is a label's name asks for that label's texts
        items = [i for i in dict.fromkeys(items) if 2 <= len(i) <= 60 and i.casefold() not in others]
        out[spec.name] = items[:count] or [spec.name]
    return out


def _plan(cfg: Config, topics: dict[str, list[str]], per_label: int) -> list[dict[str, Any]]:
    """One row per example to write: label, subtopic, length, style, in label round-robin order."""
    rng = np.random.default_rng(cfg.model.seed)
    rows = []
    grids = {label: list(itertools.product(topics[label], LENGTHS, STYLES)) for label in topics}
    for label in grids:
        rng.shuffle(grids[label])
    for i in range(per_label):
        for spec in cfg.labels:
            topic, length, style = grids[spec.name][i % len(grids[spec.name])]
            rows.append({"label": spec.name, "description": spec.description or "", "subtopic": topic, "length": length, "style": style, "number": i + 1})
    return rows


def _ask(guidelines: str, row: dict[str, Any]) -> str:
    what = f"\"{row['label']}\"" + (f" ({row['description']})" if row["description"] else "")
    return (f"Task: {guidelines}\n\nWrite example {row['number']}: a realistic input whose label is {what}, about {row['subtopic']}, "
            f"{row['length']} long, in a {row['style']} style. Reply with the input text only.")


def _mark(frame: pd.DataFrame, alive: np.ndarray, keep: list[int], reason: str) -> None:
    gone = np.setdiff1d(np.arange(len(alive)), np.asarray(keep, dtype=int))
    frame.loc[alive[gone], "removed_by"] = reason


def _embed(texts: list[str], cfg: Config, project: str | Path) -> np.ndarray:
    from labelmill.selectors.embeddings import embed

    with Store(project) as store:
        return embed(texts, cfg.examples.embedding_model, store)


def _cross_fitted(texts: list[str], labels: list[str], cfg: Config, project: str | Path, folds: int = 5, seed: int = 0) -> list[str | None]:
    """Each example's label from a logistic regression fitted on the other folds' examples (sentence
    embeddings of the config's embedding model); None where a label has too few examples to fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels, dtype=object)
    counts = pd.Series(y).value_counts()
    if len(counts) < 2 or counts.min() < folds:
        return list(y)  # too few to cross-fit: keep everything rather than guess
    X = _embed(texts, cfg, project)
    out = np.empty(len(y), dtype=object)
    for train, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        model = LogisticRegression(max_iter=2000).fit(X[train], y[train])
        out[held] = model.predict(X[held])
    return out.tolist()


def _label(cfg: Config, rows: pd.DataFrame, project: str | Path, backend: Any, on_event: EventHandler) -> list[Any]:
    """The config's own labeler on the examples (a run of its own in the store)."""
    job = Job(cfg, backend)
    try:
        with Store(project) as store:
            result = Runner(job, store, on_event).run(rows)
    finally:
        if backend is None:
            job.backend.close()
    return result.frame[result.columns["label"]].tolist()
