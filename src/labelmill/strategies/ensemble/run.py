"""Ensembles over prompts and models (config section `ensemble`).

Each member is the config with some sections changed (another wording of the guidelines, other demos,
another model). It labels the rows as a run of its own, so its answers are cached, resumable and keep
their provenance. The ensemble's run combines them per row:

  mean   the average of the members' label distributions (every member scored the closed label set):
         label = its top label, confidence = its top probability
  vote   the members' labels, majority wins (ties: the first member's): confidence = vote share

Either way the signal `agreement` is the share of members whose label is the ensemble's, the
distribution is kept, and the raw answer lists each member's label. A row every member failed keeps the
first member's error. The ensemble's rows are derived: every run recomputes them from the members' (a
member row labeled by a rerun changes the ensemble's), and `max_cost` caps all members together.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from labelmill.config import Config, derive_config
from labelmill.errors import ConfigError
from labelmill.core import Ending, Runner, RunOptions, RunResult, Tally, begin_run, finish_run
from labelmill.core.reasoning import vote
from labelmill.events import EventHandler, Notice, RunStarted, ignore
from labelmill.store import Annotation, Store, StoredLabel, label_table
from labelmill.tasks import make_task
from labelmill.types import Label, ParseFailure


def member_configs(config: Config) -> list[Config]:
    """The members' configs: the config without its ensemble, with each member's changes."""
    fields = set(Config.keys()) - {"ensemble"}
    base = derive_config(config, ensemble={"members": []})
    members = []
    for n, changes in enumerate(config.ensemble.members):
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise ConfigError(f"ensemble member {n + 1} changes {unknown[0]!r}, which is not a config section", fix=f"use sections of the config: {', '.join(sorted(fields))}")
        members.append(derive_config(base, **changes))
    return members


def combine(items: list[StoredLabel | None], how: str, labels: list[str]) -> tuple[Label | ParseFailure, dict[str, Any]]:
    """One row's ensemble outcome from its members' stored annotations (None: the member has no answer)."""
    outcomes: list[Label | ParseFailure] = []
    for item in items:
        if item is None or item.label is None:
            outcomes.append(ParseFailure(item.error, "", item.error_detail or "") if item else ParseFailure("missing", "", "the member has no answer for this row"))
        else:
            outcomes.append(Label(item.label, item.confidence, item.distribution))
    answers = [o.value if isinstance(o, Label) else None for o in outcomes]
    dists = [o.distribution for o in outcomes if isinstance(o, Label)]
    full = labels and len(dists) == len(outcomes) and all(d and all(n in d for n in labels) for d in dists)
    if how == "mean" or (how == "auto" and full):
        if not full:
            return ParseFailure("ensemble_incomplete", "", "combine: mean needs every member's label distribution"), {"members": answers}
        mean = np.mean([[float(d[n]) for n in labels] for d in dists], axis=0)
        winner = labels[int(np.argmax(mean))]
        agreement = sum(a == winner for a in answers) / len(answers)
        return Label(winner, float(mean.max()), {n: float(p) for n, p in zip(labels, mean)}, {"agreement": agreement, "members": float(len(answers))}), {"members": answers}
    voted, _ = vote(outcomes)
    if isinstance(voted, Label):
        voted.signals = {"agreement": voted.signals["agreement"], "members": float(len(outcomes))}
    return voted, {"members": answers}


def run_ensemble(
    config: Config, data: Any, options: RunOptions | None = None, *, store: Store, make_job: Callable[[Config], Any], on_event: EventHandler = ignore,
    close_backends: bool = True,
) -> RunResult:
    """Label with every member (each its own run), then write the ensemble's run and output (`options`: the
    run's output, limit, one cost cap for all members, and the calibrator)."""
    o = options or RunOptions()
    output, limit, max_cost, calibrator = o.output, o.limit, o.max_cost, o.calibrator
    started = time.perf_counter()
    members = member_configs(config)
    if not members:
        raise ConfigError("the ensemble has no members", fix="list members under ensemble.members, e.g. [{}, {guidelines: ...}]")
    results: list[RunResult] = []
    for n, member in enumerate(members):
        on_event(Notice(f"ensemble member {n + 1} of {len(members)}: {member.model.name}, fingerprint {member.fingerprint()}"))
        job = make_job(member)
        left = None if max_cost is None else max_cost - sum(r.cost_usd for r in results)  # one cap for all members
        try:
            results.append(Runner(job, store, on_event).run(data, limit=limit, max_cost=left))
        finally:
            if close_backends:
                job.backend.close()
    task = make_task(config)
    run = begin_run(store, config, task, data, limit=limit, started=started)
    frame, run_id = run.frame, run.run_id
    stored = [list(store.annotations(r.run_id)) for r in results]
    model_ids = sorted({a.model_id for member in stored for a in member})
    tables = [label_table(member, len(frame), config.label_names) for member in stored]
    on_event(RunStarted(run_id, len(frame), len(frame), False, "ensemble", "+".join(model_ids)))
    provenance = hashlib.sha256(json.dumps([r.run_id for r in results]).encode()).hexdigest()[:16]
    records = frame.to_dict("records")
    annotations = []
    for i in range(len(frame)):
        items = [t.get(i) for t in tables]
        outcome, raw = combine(items, config.ensemble.combine, config.label_names)
        is_label = isinstance(outcome, Label)
        annotations.append(Annotation(
            row_index=i, row_hash=hashlib.sha256(task.render(records[i]).encode()).hexdigest()[:16],
            label=outcome.value if is_label else None, error=None if is_label else outcome.kind, error_detail=None if is_label else outcome.detail,
            confidence=outcome.confidence if is_label else None, distribution=outcome.distribution if is_label else None,
            signals=outcome.signals if is_label else None, raw_answer=json.dumps(raw, ensure_ascii=False), method="ensemble", backend="ensemble",
            model_id="+".join(model_ids), model_sha256=None, prompt_hash=provenance, guidelines_hash=provenance, cache_key=f"ensemble:{provenance}",
            cached=False, source="ensemble",
        ))
    store.save_batch(run_id, annotations, [], derived=True)
    tally = Tally(model=sum(r.model_rows for r in results), cached=sum(r.cached_rows for r in results), cost=sum(r.cost_usd for r in results))
    return finish_run(store, config, task, run, tally, emit=on_event, end=Ending(output=output, calibrator=calibrator))
