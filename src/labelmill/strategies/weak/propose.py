"""`labelmill weak propose`: the model drafts sub-labelers (one yes/no question and one keyword rule per label)
from the task's guidelines and a sample of unlabeled rows. The draft is YAML for a person to edit and paste
into the config's weak section: nothing is added to any config by this command.

Each keyword rule's coverage on the given rows is measured (rules cost nothing to run); a keyword the
model proposed for more than one label is dropped from both (it cannot tell them apart), and so are the
label names themselves (small models answer with the label list).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ConfigDict

from labelmill.config import Config, ModelSpec, load_with_notices
from labelmill.strategies.weak.section import SubLabelerSpec
from labelmill.core import ask_texts, check_columns
from labelmill.core.strategy import Options
from labelmill.errors import ConfigError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.io import read_rows
from labelmill.strategies.weak.sublabelers import rule_votes
from labelmill.tasks import make_task
from labelmill.types import Prompt

SYSTEM = "You help a data team write labeling rules. Answer briefly, with exactly what is asked."
_ITEM = re.compile(r"^[\w][\w' -]{0,40}$", re.UNICODE)


@dataclass
class Draft:
    sub_labelers: list[SubLabelerSpec]
    coverage: dict[str, float]  # keyword rule -> share of the given rows it fires on
    rows: int
    proposer: str

    def yaml(self) -> str:
        """The weak section as YAML, each sub-labeler with a comment saying where it came from."""
        import yaml

        lines = [f"# Drafted by labelmill weak propose ({self.proposer}) from the guidelines and {self.rows} rows.",
                 "# Edit before use: keep what makes sense, fix the questions, remove words that mislead.", "weak:", "  sub_labelers:"]
        for spec in self.sub_labelers:
            data = spec.model_dump(mode="json", exclude_defaults=True)
            data.setdefault("kind", spec.kind)
            if spec.name in self.coverage:
                lines.append(f"    # fires on {self.coverage[spec.name]:.1%} of the {self.rows} rows")
            body = yaml.safe_dump([data], sort_keys=False, allow_unicode=True, width=1000)
            lines.extend("    " + line for line in body.splitlines())
        return "\n".join(lines) + "\n"


class ProposeOptions(Options):
    """weak propose's knobs: the rows sampled, keywords per rule, the drafting model."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    sample: int = 8
    keywords: int = 12
    proposer: dict | None = None
    coverage_rows: int = 2000


def propose(
    config: str | Path | dict | Config, data: Any, options: ProposeOptions | dict | None = None, *, project: str | Path = "labelmill.db", backend: Any = None, on_event: EventHandler = ignore, **knobs: Any,
) -> Draft:
    """Draft a question and a keyword rule per label (see the module docstring)."""
    o = ProposeOptions.of(options, knobs)
    sample, keywords, proposer, coverage_rows = o.sample, o.keywords, o.proposer, o.coverage_rows
    cfg = load_with_notices(config, on_event)
    if cfg.task not in ("classification", "relation", "multilabel"):
        raise ConfigError(f"weak propose drafts sub-labelers for classification tasks; this config is {cfg.task!r}", fix="use a classification config")
    task = make_task(cfg)
    frame = read_rows(data, cfg.dataset)
    check_columns(cfg, task, frame)
    if frame.empty:
        raise ConfigError("weak propose needs some rows to show the model", fix="give a file with rows")
    if len(frame) > coverage_rows:  # a sample across the file: files are often sorted by label
        frame = frame.sample(n=coverage_rows, random_state=cfg.model.seed).sort_index()
    texts = [task.render(r) for r in frame.to_dict("records")]
    picked = np.random.default_rng(cfg.model.seed).choice(len(texts), size=min(sample, len(texts)), replace=False)
    shown = "\n".join(f"- {' '.join(texts[i].split())[:240]}" for i in sorted(picked))
    names = cfg.label_names
    asker = cfg if not proposer else cfg.model_copy(update={"model": ModelSpec.model_validate({**cfg.model.model_dump(), **proposer})})
    context = f"Task: {cfg.guidelines.strip()}\nLabels: {', '.join(names)}\nSome rows to label:\n{shown}\n\n"
    questions = [Prompt(SYSTEM, (), context + f"Write one yes/no question about a row whose answer is yes exactly when the row's label is "
                        f"{label}. Reply with the question only.") for label in names]
    word_asks = [Prompt(SYSTEM, (), context + f"Write {keywords} words that often appear in rows about {label} and rarely in the others "
                        "(not the label names). Reply with the words, separated by commas.") for label in names]
    on_event(Notice(f"weak propose: asking {asker.model.name} for {len(names)} questions and keyword lists"))
    answers = _ask(asker, questions + word_asks, project, backend)
    asked_q, asked_w = answers[: len(names)], answers[len(names):]
    label_words = {w.casefold() for n in names for w in re.findall(r"\w+", n)} | {n.casefold() for n in names}
    proposed = {label: [w for w in _words(text, keywords) if w not in label_words] for label, text in zip(names, asked_w)}
    counts = Counter(w for words in proposed.values() for w in set(words))
    subs, coverage = [], {}
    for label, question, words in zip(names, asked_q, (proposed[n] for n in names)):
        slug = re.sub(r"\W+", "_", label.casefold()).strip("_") or "label"
        q = _question(question)
        if q:
            subs.append(SubLabelerSpec(name=f"is_{slug}", kind="prompt", question=q, answers={"yes": label, "no": "abstain"}, abstain_below="auto"))
        distinct = [w for w in words if counts[w] == 1]
        if distinct:
            rule = SubLabelerSpec(name=f"{slug}_words", kind="keywords", keywords=distinct, label=label)
            coverage[rule.name] = float((rule_votes(rule, texts, names) == 1).any(axis=1).mean())
            subs.append(rule)
    subs.append(SubLabelerSpec(name="zero_shot", kind="zero_shot"))
    return Draft(subs, coverage, len(texts), f"{asker.model.backend}:{asker.model.name}")


def _ask(cfg: Config, prompts: list[Prompt], project: str | Path, backend: Any) -> list[str]:
    """Free-text answers through the core's cache (a rerun asks nothing twice)."""
    return [t or "" for t in ask_texts(cfg, prompts, kind="weak_propose", project=project, max_tokens=120, backend=backend)]


def _question(text: str) -> str:
    """The first line of the answer that reads as a question, without numbering or quotes."""
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*\d.)]+\s*)?(?:question:\s*)?", "", line, flags=re.IGNORECASE).strip().strip("\"'`")
        if line.endswith("?") and 3 <= len(line.split()) <= 40:
            return line
    return ""


def _words(text: str, limit: int) -> list[str]:
    """The keywords of a comma- or line-separated answer: lower-cased, at most three words each, deduplicated."""
    out: list[str] = []
    for part in re.split(r"[,;\n]", text):
        word = re.sub(r"^\s*(?:[-*\d.)]+\s+)?", "", part).strip().strip("\"'`.").casefold()
        if word and _ITEM.match(word) and len(word.split()) <= 3 and word not in out:
            out.append(word)
    return out[:limit]
