"""The labeling loop: rows -> prompts -> (cache | model) -> parsed labels -> store, batch by batch.

Each batch's prompts are looked up in the cache and only the misses go to the model (identical prompts
once, the next batch sent before this one is saved); the per-row steps (re-ask, votes, checks, signals)
run on the answers, and the batch is committed with the answers behind it in one transaction.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelmill.core.job import VERBALIZED, VERIFY, Job
from labelmill.core.lifecycle import BatchStats, Ending, OpenedRun, RunResult, Tally, announce, begin_run, finish_run
from labelmill.core.output import output_frame
from labelmill.core.reasoning import Call, answer_prompt, expected_digit, explain_prompt, p_true_prompt, p_yes, verbalized_prompt, vote
from labelmill.errors import STOP_ERRORS
from labelmill.events import BatchDone, EventHandler, Notice, ignore
from labelmill.store import Annotation, Store
from labelmill.tasks.base import RowInput
from labelmill.types import Generation, Label, Outcome, ParseFailure, Prompt

if TYPE_CHECKING:
    import pandas as pd

    from labelmill.numeric.calibration import Calibrator


def _fresh_cost(keys: list[str], responses: dict[str, Any], cached: set[str]) -> float:
    """What the answers to `keys` that came from the model (not the cache) cost."""
    return sum(float(responses[k].get("cost_usd") or 0.0) for k in dict.fromkeys(keys) if k not in cached)


@dataclass
class _Sent:
    """Prompts of one batch on their way: cache hits, what went to the model, and keys another batch asks for."""

    responses: dict[str, Any]
    to_send: dict[str, Prompt]
    wait: Callable[[], list[dict[str, Any]]] | None
    borrowed: dict[str, _Sent]


@dataclass
class _Batch:
    """One batch between start and finish: its rows' prompts (plain, and as sent), keys, and what is in flight."""

    inputs: list[str]
    plain: list[Prompt]  # the rows' own prompts (checks show these)
    prompts: list[Prompt]  # what the rows' answers come from (with chain_of_thought: the answer prompts of path 0)
    explanations: list[list[str | None]]  # chain_of_thought: per path, per row (None: its request failed, see `explain_failures`)
    sent: _Sent | None
    paths: list[list[Prompt]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    all_keys: list[str] = field(default_factory=list)
    extra_entries: list[tuple] = field(default_factory=list)
    cost: float = 0.0
    explain_failures: dict[tuple[int, int], ParseFailure] = field(default_factory=dict)  # (path, row) -> why its explanation failed


@dataclass
class _RowResult:
    """One row's answer on its way through the steps: the prompt and answer it came from, and its outcome."""

    prompt: Prompt
    key: str
    response: dict[str, Any]
    outcome: Outcome
    reasked: bool = False
    explanation: str | None = None


@dataclass
class _Finished:
    """What finishing a batch has gathered: keys answered without the model, new cache entries, extra cost."""

    cached_keys: set[str]
    new_entries: list[tuple]
    cost: float



class Runner:
    """Runs a Job over rows with a Store, batch by batch, committing each batch atomically."""

    def __init__(self, job: Job, store: Store, on_event: EventHandler = ignore, calibrator: Calibrator | None = None):
        self.job = job
        self.store = store
        self.emit = on_event
        self._inflight: dict[str, _Sent] = {}  # cache key -> the started batch that asks for it
        self.calibrator: Calibrator | None = calibrator

    def run(
        self, source: Any, *, output: str | Path | None = None, limit: int | None = None, input_name: str | None = None, max_cost: float | None = None
    ) -> RunResult:
        """Label `source` (resuming its run), write `output`, and return the result; see `core.lifecycle`."""
        job = self.job
        run = begin_run(self.store, job.config, job.task, source, limit=limit, input_name=input_name)
        announce(run, self.emit, job.method, job.backend.model_id)
        self._warn_empty(run)
        self._set_budget(max_cost, bool(run.pending))
        tally, stopped = Tally(), None
        try:
            stopped = self._label_pending(run, tally)
        except KeyboardInterrupt:
            self.store.set_run_status(run.run_id, "interrupted")
            raise
        return finish_run(self.store, job.config, job.task, run, tally, emit=self.emit, end=Ending(output, stopped, max_cost, self.calibrator))

    def _warn_empty(self, run: OpenedRun) -> None:
        """Rows to label whose every input column is empty get a notice: they are labeled anyway (a model
        answers something), which a user would want to know before trusting those labels."""
        columns = [c for c in self.job.task.required_columns() if c in run.frame.columns]
        if not columns or not len(run.pending):
            return
        cells = run.frame.iloc[list(run.pending)][columns]
        blank = (cells.isna() | cells.astype(str).apply(lambda col: col.str.strip() == "")).all(axis=1)
        rows = [int(i) for i, b in zip(run.pending, blank.tolist()) if b]
        if rows:
            shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
            self.emit(Notice(f"{len(rows)} rows have empty text (rows {shown}, from 0): they are labeled anyway; check the input column"))

    def _set_budget(self, max_cost: float | None, pending: bool) -> None:
        backend = self.job.backend
        if hasattr(backend, "set_budget"):
            backend.set_budget(max_cost)
        elif max_cost is not None and pending:
            self.emit(Notice(f"--max-cost: {backend.name} is a local model and costs nothing; no cap applies"))

    def _label_pending(self, run: OpenedRun, tally: Tally) -> str | None:
        """Label the run's pending rows batch by batch; the stop kind if a batch could not be sent."""
        records, size = run.records, self.batch_size()
        batches = [run.pending[i : i + size] for i in range(0, len(run.pending), size)]
        progress, stopped = len(run.done), None
        ahead = self._start_batch(batches[0], records) if batches else None
        for n, indices in enumerate(batches):
            current = ahead
            # the next batch's requests go out before this one is saved, so the server never idles
            ahead = self._start_batch(batches[n + 1], records) if n + 1 < len(batches) and not stopped else None
            stats = self._finish_batch(run.run_id, indices, records, current)
            tally.add(stats)
            sent = len(indices) - len(stats.unsent)
            progress += sent
            self.emit(BatchDone(progress, len(run.frame), sent, stats.model, stats.failed, time.perf_counter() - run.started, tally.cost))
            if stats.unsent:
                stopped = stats.unsent[0]
            if stopped and ahead is None:
                break
        return stopped

    def batch_size(self) -> int:
        """Rows per committed batch: the config's when set, else what the backend needs to stay busy."""
        spec = self.job.config.model
        preferred = getattr(self.job.backend, "preferred_batch_size", None)
        if "batch_size" in spec.model_fields_set or not preferred:
            return spec.batch_size
        return max(spec.batch_size, preferred)

    def _responses(self, prompts: list[Prompt], keys: list[str], call: Call | None = None) -> tuple[dict[str, Any], set[str], list[tuple]]:
        """Model answers for `prompts`: from the cache, else from the model (identical prompts go once)."""
        return self._receive(self._send(prompts, keys, call), call)

    def _send(self, prompts: list[Prompt], keys: list[str], call: Call | None = None) -> _Sent:
        """Look up the cache and start the model on the rest. A prompt already in flight in another batch,
        or twice in this one, is sent once."""
        responses = self.store.cache_get(keys)
        borrowed = {k: self._inflight[k] for k in keys if k not in responses and k in self._inflight}
        to_send = {k: p for k, p in zip(keys, prompts) if k not in responses and k not in borrowed}
        wait = None
        if to_send:
            prompts_out = list(to_send.values())
            wait = (lambda: self.job.call(call, prompts_out)) if call is not None else self.job.submit_model(prompts_out)
        sent = _Sent(responses, to_send, wait, borrowed)
        for key in to_send:
            self._inflight[key] = sent
        return sent

    def _receive(self, sent: _Sent, call: Call | None = None) -> tuple[dict[str, Any], set[str], list[tuple]]:
        """Wait for what `_send` started: (responses by key, keys answered without the model, new cache entries)."""
        job = self.job
        responses = sent.responses
        answered_before = set(responses) | set(sent.borrowed)
        new_entries = []
        if sent.wait is not None:
            fresh = sent.wait()
            identity = job.backend.identity()
            for key, response in zip(sent.to_send, fresh):
                responses[key] = response
                self._inflight.pop(key, None)
                if response.get("error"):  # a failed request is not an answer: never cached
                    continue
                new_entries.append((key, identity["backend"], identity["model"], call.kind if call is not None else job.method, response))
        for key, other in sent.borrowed.items():  # batches finish in order, so `other` has its answers
            responses[key] = other.responses[key]
        return responses, answered_before, new_entries

    def label_batch(self, run_id: int, indices: list[int], records: list[dict[str, Any]] | dict[int, dict[str, Any]]) -> BatchStats:
        """Label the rows `indices` of `records` (a list, or a dict by row index) and commit them: the unit an engine hands out."""
        return self._finish_batch(run_id, indices, records, self._start_batch(indices, records))

    def answers(self, prompts: list[Prompt], call: Call) -> tuple[list[dict[str, Any]], list[tuple]]:
        """Answers to requests that belong to no row (e.g. demos the model writes): from the cache, else the
        model; returns the answers in order and the new cache entries (for `Store.cache_put`)."""
        keys = [self.job.cache_key(p, call) for p in prompts]
        responses, _, new = self._responses(prompts, keys, call)
        return [responses[k] for k in keys], new

    def _start_batch(self, indices: list[int], records: list[dict[str, Any]]) -> _Batch:
        """Build the batch's prompts and start the model on those not in the cache.

        With chain_of_thought the explanations come first (one per path), and the prompts sent are the
        answer prompts that show them: path 0's are the rows' own prompts, the other paths' follow them.
        """
        job = self.job
        inputs = [job.row_input(records[i]) for i in indices]
        job.prepare_rows(inputs, self.store)
        plain = [job.prompt(text) for text in inputs]
        batch = _Batch(inputs, plain, plain, [], None)
        if job.reasoning.chain_of_thought:
            asks = [explain_prompt(p) for p in plain]
            for path in range(job.reasoning.samples):
                call = job.explain_call(path)
                keys = [job.cache_key(p, call) for p in asks]
                responses, cached, new = self._responses(asks, keys, call)
                batch.extra_entries += new
                batch.cost += _fresh_cost(keys, responses, cached)
                batch.explanations.append([None if responses[k].get("error") else str(responses[k].get("text") or "") for k in keys])
                for n, k in enumerate(keys):
                    if responses[k].get("error"):  # a timeout, a server error: the row fails like its request (a rerun resends it)
                        batch.explain_failures[path, n] = job.outcome(responses[k])
            batch.paths = [[answer_prompt(p, e or "") for p, e in zip(plain, path)] for path in batch.explanations]
            batch.prompts = batch.paths[0]
        everything = [p for path in batch.paths for p in path] if batch.paths else batch.prompts
        batch.all_keys = [job.cache_key(p) for p in everything]
        batch.keys = batch.all_keys[: len(inputs)]
        batch.sent = self._send(everything, batch.all_keys)
        return batch

    def _finish_batch(self, run_id: int, indices: list[int], records: Any, batch: _Batch) -> BatchStats:
        """Wait for the batch's answers, run the per-row steps (re-ask, vote, check, signals), commit the batch."""
        job = self.job
        rows = [RowInput(text, records[i]) for text, i in zip(batch.inputs, indices)]
        responses, cached_keys, new_entries = self._receive(batch.sent)
        done = _Finished(cached_keys, new_entries + batch.extra_entries, batch.cost)
        explanations = list(batch.explanations[0]) if batch.explanations else [None] * len(indices)
        results = [
            _RowResult(batch.prompts[n], key, responses[key], batch.explain_failures.get((0, n)) or job.outcome(responses[key], rows[n]), explanation=explanations[n])
            for n, key in enumerate(batch.keys)
        ]
        for step in (self._reask_step, self._vote_step, self._verify_step, self._followup_step, self._signal_step):
            step(batch, rows, results, responses, done)
        return self._commit(run_id, indices, batch, results, done)

    def _reask_step(self, batch: _Batch, rows: list[RowInput], results: list[_RowResult], responses: dict[str, Any], done: _Finished) -> None:
        """One re-ask of an invalid generated answer, showing the model its answer and the error, where the task has one."""
        job = self.job
        if job.method != "generate":
            return
        reasks = {}
        for n, r in enumerate(results):
            if isinstance(r.outcome, ParseFailure) and not r.response.get("error") and (0, n) not in batch.explain_failures:
                follow_up = job.task.reask(r.prompt, Generation(**r.response), r.outcome)
                if follow_up is not None:
                    reasks[n] = follow_up
        if not reasks:
            return
        keys = [job.cache_key(p) for p in reasks.values()]
        answers, cached, new = self._responses(list(reasks.values()), keys)
        done.cached_keys |= cached
        done.new_entries += new
        for (n, prompt), key in zip(reasks.items(), keys):
            results[n] = _RowResult(prompt, key, answers[key], job.outcome(answers[key], rows[n]), True, results[n].explanation)

    def _vote_step(self, batch: _Batch, rows: list[RowInput], results: list[_RowResult], responses: dict[str, Any], done: _Finished) -> None:
        """Self-consistency: more answers per row (other chain-of-thought paths, or sampled answers), majority vote."""
        job, paths, width = self.job, self.job.reasoning.samples, len(rows)
        if paths <= 1:
            return
        votes: list[list[Outcome]] = [[r.outcome] for r in results]
        for path in range(1, paths):
            if batch.explanations:
                for n, key in enumerate(batch.all_keys[path * width : (path + 1) * width]):
                    votes[n].append(batch.explain_failures.get((path, n)) or job.outcome(responses[key], rows[n]))
                continue
            call = job.sample_call(path)
            keys = [job.cache_key(p, call) for p in batch.prompts]
            sampled, cached, new = self._responses(list(batch.prompts), keys, call)
            done.new_entries += new
            done.cost += _fresh_cost(keys, sampled, cached)
            for n, key in enumerate(keys):
                votes[n].append(job.outcome(sampled[key], rows[n], method="generate"))
        for n, row_votes in enumerate(votes):
            path_explanations = [path[n] for path in batch.explanations] if batch.explanations else None
            results[n].outcome, explanation = vote(row_votes, path_explanations)
            results[n].explanation = explanation

    def _verify_step(self, batch: _Batch, rows: list[RowInput], results: list[_RowResult], responses: dict[str, Any], done: _Finished) -> None:
        """The task's yes/no check of its own answers (QA: does the context really answer this?)."""
        job = self.job
        if not job.backend.can_score:
            return
        checks = {}
        for n, r in enumerate(results):
            if isinstance(r.outcome, Label):
                check = job.task.verify_prompt(rows[n], r.outcome)
                if check is not None:
                    checks[n] = check
        for n, logprobs in self._ask(checks, VERIFY, done.new_entries).items():
            results[n].outcome = job.task.apply_verification(results[n].outcome, p_yes(logprobs))

    def _followup_step(self, batch: _Batch, rows: list[RowInput], results: list[_RowResult], responses: dict[str, Any], done: _Finished) -> None:
        """The task's scored follow-up questions about its answers (relations: the pairs of found entities),
        asked together over the batch, one request per answer set. A failed request fails its row."""
        job = self.job
        asks: dict[tuple[str, ...], list[tuple[int, int, Prompt]]] = {}
        counts: dict[int, int] = {}
        for n, r in enumerate(results):
            if isinstance(r.outcome, Label):
                questions = job.task.followups(rows[n], r.outcome)
                counts[n] = len(questions)
                for i, (prompt, candidates) in enumerate(questions):
                    asks.setdefault(tuple(candidates), []).append((n, i, prompt))
        if not counts:
            return
        answers: dict[tuple[int, int], list[float]] = {}
        failed: dict[int, Outcome] = {}
        for candidates, items in asks.items():
            call = Call("followup", "score", candidates)
            prompts = [p for _, _, p in items]
            keys = [job.cache_key(p, call) for p in prompts]
            got, cached, new = self._responses(prompts, keys, call)
            done.new_entries += new
            done.cost += _fresh_cost(keys, got, cached)
            for (n, i, _), key in zip(items, keys):
                if got[key].get("error"):
                    failed.setdefault(n, job.outcome(got[key]))
                else:
                    answers[n, i] = got[key]["logprobs"]
        for n, count in counts.items():
            if n in failed:  # a timeout, a server error: the row fails like its request (a rerun asks again)
                results[n].outcome = failed[n]
            else:
                results[n].outcome = job.task.apply_followups(rows[n], results[n].outcome, [answers[n, i] for i in range(count)])

    def _signal_step(self, batch: _Batch, rows: list[RowInput], results: list[_RowResult], responses: dict[str, Any], done: _Finished) -> None:
        """The model's own checks of its labels (P(True), verbalized): signals only, the label and its confidence stay."""
        job = self.job
        for enabled, build, call, name, read in (
            (job.reasoning.p_true, p_true_prompt, VERIFY, "p_true", p_yes),
            (job.reasoning.verbalized, verbalized_prompt, VERBALIZED, "verbalized", expected_digit),
        ):
            if not enabled:
                continue
            asks = {n: build(batch.plain[n], r.outcome) for n, r in enumerate(results) if isinstance(r.outcome, Label)}
            for n, logprobs in self._ask(asks, call, done.new_entries).items():
                results[n].outcome.signals = {**results[n].outcome.signals, name: read(logprobs)}

    def _commit(self, run_id: int, indices: list[int], batch: _Batch, results: list[_RowResult], done: _Finished) -> BatchStats:
        """Save the batch's annotations with the answers behind them; rows that were never sent are left for a rerun."""
        annotations, failed, unsent, cost = [], 0, [], done.cost
        for index, text, r in zip(indices, batch.inputs, results):
            if r.key not in done.cached_keys:
                cost += float(r.response.get("cost_usd") or 0.0)
            if isinstance(r.outcome, ParseFailure) and r.outcome.kind in STOP_ERRORS:
                unsent.append(r.outcome.kind)  # never sent: nothing to save, a rerun sends it
                continue
            failed += isinstance(r.outcome, ParseFailure)
            annotations.append(self._annotation(index, text, r, r.key in done.cached_keys))
        self.store.save_batch(run_id, annotations, done.new_entries)
        model_rows = len({k for k in batch.keys if k not in done.cached_keys})
        return BatchStats(model_rows, len(indices) - model_rows, failed, cost, unsent)

    def _ask(self, asks: dict[int, Prompt], call: Call, new_entries: list[tuple]) -> dict[int, list[float]]:
        """Scored checks by row: the candidates' log-probabilities (rows whose request failed are left out)."""
        if not asks:
            return {}
        keys = [self.job.cache_key(p, call) for p in asks.values()]
        responses, _, new = self._responses(list(asks.values()), keys, call)
        new_entries += new
        return {n: responses[key]["logprobs"] for n, key in zip(asks, keys) if not responses[key].get("error")}

    def _annotation(self, index: int, text: str, r: _RowResult, cached: bool) -> Annotation:
        """The stored annotation of one row's answer, with its provenance."""
        job, prompt, key, response, outcome = self.job, r.prompt, r.key, r.response, r.outcome
        reasked, explanation = r.reasked, r.explanation
        identity = job.backend.identity()
        is_label = isinstance(outcome, Label)
        signals = dict(outcome.signals or {}) if is_label else {}
        if reasked:
            signals["reasked"] = 1.0
        raw = response.get("text") if job.method == "generate" else (outcome.value if is_label else None)
        return Annotation(
            row_index=index,
            row_hash=hashlib.sha256(text.encode()).hexdigest()[:16],
            label=outcome.value if is_label else None,
            error=None if is_label else outcome.kind,
            error_detail=None if is_label else outcome.detail,
            confidence=outcome.confidence if is_label else None,
            distribution=outcome.distribution if is_label else None,
            signals=signals or None,
            raw_answer=raw,
            method=job.method,
            backend=identity["backend"],
            model_id=identity["model"],
            model_sha256=identity["sha256"],
            prompt_hash=prompt.hash(),
            guidelines_hash=hashlib.sha256(prompt.system.encode()).hexdigest()[:16],
            cache_key=key,
            cached=cached,
            prompt_tokens=response.get("prompt_tokens"),
            completion_tokens=response.get("completion_tokens"),
            latency_s=response.get("latency_s"),
            explanation=explanation,
        )

    def output_frame(self, run_id: int, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str], int]:
        return output_frame(self.store, run_id, frame, self.job.config, self.job.task, self.calibrator)
