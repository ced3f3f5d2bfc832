"""`labelmill synth summaries`: a generation config's instruction searched by generate -> restore -> compare
(self-supervised, as in arXiv 2306.04349), with no reference summaries.

Each candidate template (the config's instruction, instruction variants, and the best of them with one
demo) writes a summary of every search row. The model then restores the source from the summary: the
restore score is how much the summary raises the model's per-token log-probability of the source (its
first `restore_words` words, or all of it with `restore_words=None`; scored, not generated: one pass, no
sampling), over the same text restored from no summary at all. Restoring only the start favours summaries
that copy the start (a lead sentence restores the first 60 words best), so restoring the whole source is
what rewards a summary for covering it. A copied source restores perfectly, so length is held: a template whose compression
ratio (summary words / source words) on the search rows is above the initial template's (times
`length_slack`) cannot win, however well it restores. The best template on the search rows is then scored
against the initial one on the held-out rows, and each row's restore score is its confidence for routing
to review.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ConfigDict

from labelmill.config import Config, derive_config, load_with_notices
from labelmill.core import Job, Runner
from labelmill.core.job import Call
from labelmill.core.strategy import Options
from labelmill.errors import ConfigError, InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.io import read_rows, write_rows
from labelmill.store import Store
from labelmill.tasks import make_task
from labelmill.types import Prompt

VARIANTS = (
    "Summarize the text in one sentence that names its main subject and its key facts.",
    "In one sentence, say who or what the text is about and what it says about them, keeping names, places and dates.",
    "Write a headline-style summary of the text, at most 20 words, with its key names and facts.",
    # length-matched: {words} is the initial template's median summary length on the search rows, so these
    # compress at least as much as it does and compete on what the words keep
    "Summarize the text in at most {words} words. Keep its main subject and its key names, places, dates and numbers, in the order the text gives them.",
    "Rewrite the start of the text as one sentence of at most {words} words that keeps its key names and facts.",
)
RESTORE_SYSTEM = "You restore a text from its summary. Write the original text the summary was made from."
_WORD = re.compile(r"\S+")


@dataclass
class Template:
    name: str
    instruction: str
    demo: tuple[str, str] | None = None  # (source, summary) shown as one example


@dataclass
class Scored:
    template: Template
    summaries: list[str | None]
    restore: np.ndarray  # per row, nats per token gained over restoring from nothing (NaN: no summary)
    compression: np.ndarray  # per row, summary words / source words

    @property
    def figures(self) -> dict[str, Any]:
        return {"restore_score": round(float(np.nanmean(self.restore)), 4) if np.isfinite(self.restore).any() else None,
                "compression": round(float(np.nanmean(self.compression)), 4) if np.isfinite(self.compression).any() else None,
                "completion": round(float(np.mean([s is not None for s in self.summaries])), 4) if self.summaries else 0.0}


@dataclass
class SummaryResult:
    frame: pd.DataFrame
    figures: dict[str, Any] = field(default_factory=dict)
    chosen: Template | None = None
    output_path: Path | None = None


class SummariesOptions(Options):
    """synth summaries' knobs: search rows, the template variants, the one-shot candidate, the restore length and the length slack."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    search_rows: int = 40
    variants: tuple[str, ...] = VARIANTS
    one_shot: bool = True
    restore_words: int | None = None
    length_slack: float = 1.0


def synth_summaries(
    config: str | Path | dict | Config, data: Any, options: SummariesOptions | dict | None = None, *, project: str | Path = "labelmill.db", output: str | Path | None = None, backend: Any = None, on_event: EventHandler = ignore, **knobs: Any,
) -> SummaryResult:
    """Search the summary template on the first `search_rows` distinct rows, score it on the rest (see the module docstring)."""
    o = SummariesOptions.of(options, knobs)
    search_rows, variants, one_shot, restore_words, length_slack = o.search_rows, o.variants, o.one_shot, o.restore_words, o.length_slack
    cfg = load_with_notices(config, on_event)
    if cfg.task != "generation":
        raise ConfigError(f"synth summaries searches a generation config's template; this one is {cfg.task!r}", fix="use task: generation (labelmill init generation)")
    task = make_task(cfg)
    frame = read_rows(data, cfg.dataset)
    texts = [task.render(r) for r in frame.to_dict("records")]
    distinct = list(dict.fromkeys(i for i in range(len(texts)) if texts[i].strip() and texts.index(texts[i]) == i))
    if len(distinct) < search_rows + 5:
        raise InputDataError(f"synth summaries needs more than {search_rows + 5} distinct rows (search and held-out); there are {len(distinct)}",
                             fix="give more rows or a smaller --search-rows")
    rows = frame.iloc[distinct].reset_index(drop=True)
    search, held = rows.iloc[:search_rows].reset_index(drop=True), rows.iloc[search_rows:].reset_index(drop=True)
    initial = Template("initial", cfg.guidelines.strip() or "Summarize the text in one sentence.")
    with Store(project) as store:
        scored = {"initial": _score(cfg, initial, search, task, store, backend, restore_words, on_event)}
        lengths = [len(_WORD.findall(x)) for x in scored["initial"].summaries if x]
        words = max(8, int(np.median(lengths))) if lengths else 25
        for i, v in enumerate(variants):
            t = Template(f"variant {i + 1}", v.replace("{words}", str(words)))
            scored[t.name] = _score(cfg, t, search, task, store, backend, restore_words, on_event)
        if one_shot:
            best = max(scored.values(), key=lambda s: _objective(s, scored["initial"], length_slack))
            i = int(np.nanargmax(np.where(best.compression <= np.nanmean(scored["initial"].compression), best.restore, -np.inf)))
            demo = (task.render(search.iloc[i].to_dict()), best.summaries[i])
            shot = Template(f"{best.template.name} + one demo", best.template.instruction, (demo[0], str(demo[1])))
            scored[shot.name] = _score(cfg, shot, search, task, store, backend, restore_words, on_event)
        chosen = max(scored.values(), key=lambda s: _objective(s, scored["initial"], length_slack)).template
        on_event(Notice(f"synth summaries: chose {chosen.name!r}; scoring it against the initial template on {len(held)} held-out rows"))
        held_initial = _score(cfg, initial, held, task, store, backend, restore_words, on_event)
        held_chosen = held_initial if chosen.name == "initial" else _score(cfg, chosen, held, task, store, backend, restore_words, on_event)
    figures = {
        "search_rows": len(search), "held_out_rows": len(held), "chosen_template": chosen.name, "chosen_instruction": chosen.instruction,
        "search": {name: s.figures for name, s in scored.items()},
        "restore_score_initial": held_initial.figures["restore_score"], "restore_score_searched": held_chosen.figures["restore_score"],
        "compression_initial": held_initial.figures["compression"], "compression_searched": held_chosen.figures["compression"],
        "completion_searched": held_chosen.figures["completion"],
    }
    out = held.copy()
    out["summary"] = held_chosen.summaries
    out["restore_score"] = np.round(held_chosen.restore, 4)
    out["compression"] = np.round(held_chosen.compression, 4)
    out["summary_initial"] = held_initial.summaries
    out["restore_score_initial"] = np.round(held_initial.restore, 4)
    path = write_rows(out, output) if output else None
    return SummaryResult(out, figures, chosen, path)


def _objective(s: Scored, initial: Scored, length_slack: float) -> float:
    """The mean restore score, or -inf for a template that compresses less than the initial one allows."""
    restore, compression = s.figures["restore_score"], s.figures["compression"]
    if s is initial:
        return restore if restore is not None else -np.inf
    if restore is None or compression is None or compression > (initial.figures["compression"] or 0.0) * length_slack + 1e-9:
        return -np.inf
    return restore


def template_config(cfg: Config, template: Template) -> Config:
    """The generation config with the template's instruction (and its one demo)."""
    column = "text"
    if template.demo is None:
        return derive_config(cfg, guidelines=template.instruction, examples={"k": 0, "items": [], "file": None})
    from labelmill.template import template_fields

    fields = template_fields(cfg.input_template or "{text}")
    column = fields[0] if len(fields) == 1 else column
    items = [{column: template.demo[0], "__summary": template.demo[1]}]
    return derive_config(cfg, guidelines=template.instruction, input_template=f"{{{column}}}",
                         examples={"k": 1, "items": items, "file": None, "label_column": "__summary", "selection": "fixed"})


def _score(cfg: Config, template: Template, rows: pd.DataFrame, task: Any, store: Store, backend: Any, restore_words: int | None,
           on_event: EventHandler) -> Scored:
    """The template's summaries of `rows` (a run in the store) and their restore scores."""
    sub = template_config(cfg, template)
    sources = [task.render(r) for r in rows.to_dict("records")]
    shown = rows if template.demo is None else pd.DataFrame({sub.input_template.strip("{}"): sources})
    job = Job(sub, backend)
    try:
        on_event(Notice(f"synth summaries: {template.name} on {len(rows)} rows"))
        result = Runner(job, store, on_event).run(shown)
        summaries = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in result.frame[result.columns["label"]]]
        targets = [" ".join(_WORD.findall(s)[:restore_words] if restore_words else _WORD.findall(s)) for s in sources]
        restored = _restore_logprob(job, store, [s if s is not None else "" for s in summaries], targets)
        baseline = _restore_logprob(job, store, [""] * len(targets), targets)
        tokens = np.array([max(1, job.backend.count_tokens(t)) for t in targets], dtype=float)
    finally:
        if backend is None:
            job.backend.close()
    gain = (restored - baseline) / tokens
    gain[[s is None for s in summaries]] = np.nan
    compression = np.array([len(_WORD.findall(s)) / max(1, len(_WORD.findall(src))) if s is not None else np.nan for s, src in zip(summaries, sources)])
    return Scored(template, summaries, gain, compression)


def _restore_logprob(job: Job, store: Store, summaries: list[str], targets: list[str]) -> np.ndarray:
    """log P(target | a restore prompt showing the summary) per row, through the cache."""
    runner = Runner(job, store)
    out = []
    for summary, target in zip(summaries, targets):
        prompt = Prompt(RESTORE_SYSTEM, (), f"Summary: {summary or '(none)'}\n\nOriginal text:")
        answers, new = runner.answers([prompt], Call("restore", "score", (" " + target,)))
        store.cache_put(new)
        logprobs = answers[0].get("logprobs") or [float("nan")]
        out.append(float(logprobs[0]))
    return np.array(out)
