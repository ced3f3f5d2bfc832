"""Requests that belong to no row (a demo to write, a rule to propose, a judge's verdict, a synthetic text):
through the same cache as labeling, batch by batch, so a rerun asks nothing twice and a crash loses at most
one batch. The seam strategies use instead of calling a backend themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ConfigDict

from labelmill.config import Config
from labelmill.core.job import Job
from labelmill.core.loop import Runner
from labelmill.core.reasoning import Call
from labelmill.core.strategy import Options
from labelmill.errors import InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.store import Store
from labelmill.types import Prompt


class TextOptions(Options):
    """How texts are asked for: the request kind, length, temperature, per-prompt seeds and batch size."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kind: str
    max_tokens: int = 256
    temperature: float = 0.0
    seeds: list[int] | None = None
    batch: int = 32


def ask_texts(
    cfg: Config, prompts: list[Prompt], options: TextOptions | dict | None = None, *, project: str | Path, backend: Any = None, on_event: EventHandler = ignore, **knobs: Any,
) -> list[str | None]:
    """Each prompt's generated text (None where the model failed or said nothing). `seeds`: a sampling seed
    per prompt (one prompt asked with two seeds is two requests); default the config's seed for all."""
    o = TextOptions.of(options, knobs)
    kind, max_tokens, temperature, seeds, batch = o.kind, o.max_tokens, o.temperature, o.seeds, o.batch
    seeds = seeds if seeds is not None else [cfg.model.seed] * len(prompts)
    job = Job(cfg, backend)
    out: list[str | None] = [None] * len(prompts)
    try:
        with Store(project) as store:
            runner = Runner(job, store)
            for s in sorted(set(seeds)):
                idx = [i for i, x in enumerate(seeds) if x == s]
                call = Call(kind, "generate", max_tokens=max_tokens, temperature=temperature, seed=s)
                for start in range(0, len(idx), batch):
                    part = idx[start : start + batch]
                    answers, new = runner.answers([prompts[i] for i in part], call)
                    store.cache_put(new)
                    for i, a in zip(part, answers):
                        text = str(a.get("text") or "").strip()
                        out[i] = None if a.get("error") or not text else text
                    if len(prompts) > batch:
                        on_event(Notice(f"{kind}: {sum(x is not None for x in out)} of {len(prompts)} written"))
    finally:
        if backend is None:
            job.backend.close()
    return out


def ask_scores(cfg: Config, prompts: list[Prompt], candidates: tuple[str, ...], *, kind: str, project: str | Path, backend: Any = None,
               batch: int = 64) -> np.ndarray:
    """(n, len(candidates)) log-probabilities of each candidate answer after each prompt (one forward pass each)."""
    job = Job(cfg, backend)
    call = Call(kind, "score", tuple(candidates))
    out = []
    try:
        with Store(project) as store:
            runner = Runner(job, store)
            for start in range(0, len(prompts), batch):
                answers, new = runner.answers(prompts[start : start + batch], call)
                store.cache_put(new)
                for a in answers:
                    if a.get("error") or not a.get("logprobs"):
                        raise InputDataError(f"the model gave no scores ({a.get('error') or 'empty'})", fix="check the model or server, then rerun (answers so far are cached)")
                    out.append(a["logprobs"])
    finally:
        if backend is None:
            job.backend.close()
    return np.array(out, dtype=float).reshape(len(prompts), len(candidates))
