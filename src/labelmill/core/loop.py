"""The labeling loop: rows -> prompts -> (cache | model) -> parsed labels -> store -> output file.

A run is identified by the config's fingerprint and the input's content hash, so rerunning the same
command resumes it: rows already in the store are neither re-sent nor duplicated.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelmill.backends import Backend, make_backend
from labelmill.config import Config, dump_config
from labelmill.errors import STOP_ERRORS, BackendError, ConfigError, InputDataError, RunStopped
from labelmill.events import BatchDone, EventHandler, Notice, RunFinished, RunStarted, ignore
from labelmill.io import content_hash, free_column_name, read_rows, write_rows
from labelmill.core.reasoning import (
    DIGITS,
    YES_NO,
    Call,
    answer_prompt,
    expected_digit,
    explain_prompt,
    p_true_prompt,
    p_yes,
    verbalized_prompt,
    vote,
)
from labelmill.selectors.pickers import DemoPicker
from labelmill.store.db import Annotation, Store
from labelmill.tasks import Task, make_task
from labelmill.tasks.base import RowInput
from labelmill.template import template_fields
from labelmill.types import Generation, Label, Outcome, ParseFailure, Prompt, ScoreResult

if TYPE_CHECKING:
    import pandas as pd

    from labelmill.numeric.calibration import Calibrator


VERIFY_ANSWERS = list(YES_NO)
VERIFY = Call("verify", "score", YES_NO)
VERBALIZED = Call("verbalized", "score", DIGITS)


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class RunResult:
    run_id: int
    frame: pd.DataFrame
    output_path: Path | None
    total: int
    labeled: int
    failed: int
    model_rows: int
    cached_rows: int
    wall_s: float
    columns: dict[str, str]
    cost_usd: float = 0.0
    stopped: str | None = None


_STOP_MESSAGES = {
    "budget_exhausted": "stopped at the cost cap: ${cost:.4f} spent of ${cap}; {labeled} of {total} rows labeled and saved (output: {out})",
    "server_unavailable": "stopped: the model server kept failing and the circuit breaker gave up; {labeled} of {total} rows labeled and saved (output: {out})",
}
_STOP_FIXES = {
    "budget_exhausted": "rerun the same command with a higher --max-cost to label the rest (labeled rows are not sent again)",
    "server_unavailable": "check the server (model.server.base_url), then rerun the same command to label the rest",
}


class Job:
    """A config bound to a task, its demos and a backend: builds prompts and labels batches."""

    def __init__(self, config: Config, backend: Backend | None = None):
        if config.ensemble.members:
            raise ConfigError(
                "an ensemble config labels with each member in turn; this command labels with one model",
                fix="use labelmill run (or labelmill.label) for an ensemble, or remove the ensemble section here",
            )
        self.config = config
        self.task: Task = make_task(config)
        self.picker = DemoPicker(config, self.task)
        self.demos = self.picker.static  # the same for every row, unless selection is per row (similar, mmr, ...)
        self.backend = backend or make_backend(config.model, config.base_dir)
        self.method = self._choose_method()
        self.candidates = self.task.candidates() if self.method == "score" else None
        spec = config.model
        # a task's own answer length unless the config sets one
        self.max_tokens = spec.max_tokens if "max_tokens" in spec.model_fields_set else max(spec.max_tokens, self.task.default_max_tokens)
        self.schema = self.task.schema() if self.method == "generate" else None
        self.reasoning = config.reasoning
        if (self.reasoning.p_true or self.reasoning.verbalized) and not self.backend.can_score:
            raise BackendError(
                f"reasoning.p_true and reasoning.verbalized score the model's answer to a question; {self.backend.name} cannot score",
                fix="use a backend that can score (llama_cpp), or turn off reasoning.p_true / reasoning.verbalized",
            )

    def explain_call(self, path: int) -> Call:
        """The explanation request of chain-of-thought path `path` (greedy for the first, sampled for the others)."""
        r, spec = self.reasoning, self.config.model
        return Call("explain", "generate", max_tokens=r.explanation_tokens, temperature=r.sample_temperature if path else spec.temperature, seed=spec.seed + path)

    def sample_call(self, path: int) -> Call:
        """Self-consistency answer `path` (>= 1), sampled."""
        r, spec = self.reasoning, self.config.model
        return Call("sample", "generate", max_tokens=self.max_tokens, temperature=r.sample_temperature, seed=spec.seed + path)

    def _choose_method(self) -> str:
        wanted = self.config.model.method
        scorable = self.task.candidates() is not None and self.backend.can_score
        if wanted == "score" and not scorable:
            raise BackendError(
                f"method 'score' needs a closed label set and a backend that can score; {self.config.task} on {self.backend.name} cannot",
                fix="set model.method: generate (or auto)",
            )
        if wanted == "auto":
            return "score" if scorable else "generate"
        return wanted

    # prompts -----------------------------------------------------------------------------------
    def check_columns(self, frame: pd.DataFrame) -> None:
        check_columns(self.config, self.task, frame)

    def row_input(self, row: dict[str, Any]) -> str:
        return self.task.render(row)

    def prompt(self, row_input: str) -> Prompt:
        return self.task.build_prompt(row_input, self.picker.for_row(row_input))

    def prepare_rows(self, row_inputs: list[str], store: Any = None) -> None:
        """Work a batch of rows needs before its prompts: their embeddings, for per-row demo selection."""
        self.picker.prepare(row_inputs, store)

    def cache_key(self, prompt: Prompt, call: Call | None = None) -> str:
        spec = self.config.model
        params: dict[str, Any] = {"method": self.method, **spec.params}
        if call is not None and call.kind == "verify":
            params = {"method": "score", "candidates": VERIFY_ANSWERS, **spec.params}
        elif call is not None:
            params = {**spec.params, "kind": call.kind, "method": call.method, "candidates": list(call.candidates)}
            if call.method == "generate":
                params.update(max_tokens=call.max_tokens, temperature=call.temperature, seed=call.seed)
                if call.kind == "sample" and self.task.schema() and self.backend.supports_schema:
                    params["schema"] = self.task.schema()
        elif self.method == "score":
            params["candidates"] = self.candidates
        else:
            params.update(max_tokens=self.max_tokens, temperature=spec.temperature, seed=spec.seed)
            if self.schema and self.backend.supports_schema:
                params["schema"] = self.schema
        return _sha({"backend": self.backend.identity(), "params": params, "prompt": prompt.messages()})

    # model calls ---------------------------------------------------------------------------------
    def call_model(self, prompts: Sequence[Prompt]) -> list[dict[str, Any]]:
        """One response dict per prompt (the form the cache stores)."""
        spec = self.config.model
        if self.method == "score":
            results: list[Any] = self.backend.score(prompts, self.candidates or [])
        else:
            extra = {"schema": self.schema} if self.schema else {}
            results = self.backend.generate(prompts, max_tokens=self.max_tokens, temperature=spec.temperature, seed=spec.seed, **extra)
        return [r.__dict__.copy() for r in results]

    def submit_model(self, prompts: Sequence[Prompt]) -> Callable[[], list[dict[str, Any]]]:
        """Start the model on `prompts`; the returned function waits for the responses.

        A backend that can work in the background (`submit_generate`: the server backends) starts now,
        so the runner can send the next batch while it saves this one; other backends run on the call.
        """
        submit = getattr(self.backend, "submit_generate", None)
        if self.method != "generate" or submit is None:
            return lambda: self.call_model(prompts)
        spec = self.config.model
        extra = {"schema": self.schema} if self.schema else {}
        future = submit(prompts, max_tokens=self.max_tokens, temperature=spec.temperature, seed=spec.seed, **extra)
        return lambda: [r.__dict__.copy() for r in future.result()]

    def call(self, call: Call, prompts: Sequence[Prompt]) -> list[dict[str, Any]]:
        """Answers to a request other than the row's own: checks (scored), explanations and samples (generated)."""
        if call.method == "score":
            return [r.__dict__.copy() for r in self.backend.score(prompts, list(call.candidates))]
        schema = self.task.schema() if call.kind == "sample" else None
        extra = {"schema": schema} if schema else {}
        results = self.backend.generate(prompts, max_tokens=call.max_tokens, temperature=call.temperature, seed=call.seed, **extra)
        return [r.__dict__.copy() for r in results]

    def outcome(self, response: dict[str, Any], row: RowInput | None = None, method: str | None = None) -> Outcome:
        if response.get("error"):  # the request itself failed (timeout, server error, ...): a typed failure
            return ParseFailure(response["error"], "", response.get("error_detail") or "")
        try:
            if (method or self.method) == "score":
                return self.task.from_scores(ScoreResult(**response), row)
            return self.task.parse(Generation(**response), row)
        except (ValueError, TypeError, KeyError, IndexError) as exc:  # a parser bug must not lose the run
            return ParseFailure("parser_error", str(response.get("text", ""))[:500], f"{type(exc).__name__}: {exc}")


def check_columns(config: Config, task: Task, frame: pd.DataFrame) -> None:
    """A clear error when the input lacks a column the template or the task needs."""
    template = set(template_fields(config.input_template or ""))
    missing = [f for f in task.required_columns() if f not in frame.columns]
    if missing:
        cols = ", ".join(map(str, frame.columns[:12]))
        where = "used by input_template" if missing[0] in template else f"needed by the {config.task} task"
        raise InputDataError(
            f"column {missing[0]!r} ({where}) is not in the input; its columns are: {cols}",
            fix=f"rename a column to {missing[0]!r} or change the config to name the right column",
        )


def open_run(store: Store, config: Config, full: pd.DataFrame, n_rows: int, source: Any) -> tuple[int, set[int], list[int]]:
    """Open (or resume) the run of this config on this input: (run id, rows done, rows to label among the first n_rows).

    The run key is the config's fingerprint plus the hash of the whole input, so a run with --limit
    resumes into the full run, and a Ray run and a plain run resume each other.
    """
    input_hash = content_hash(full)
    run_id = store.open_run(
        run_key=_sha({"config": config.fingerprint(), "input": input_hash})[:24],
        task_name=config.name,
        config=dump_config(config),
        config_hash=config.fingerprint(),
        input_path=str(source) if isinstance(source, (str, Path)) else None,
        input_hash=input_hash,
        n_rows=len(full),
    )
    done = {i for i in store.done_rows(run_id) if i < n_rows}
    return run_id, done, [i for i in range(n_rows) if i not in done]


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
        started = time.perf_counter()
        config = self.job.config
        full = read_rows(source, config.dataset)
        self.job.check_columns(full)
        frame = full.head(limit) if limit is not None else full
        run_id, done, pending = open_run(self.store, config, full, len(frame), input_name or source)
        self.emit(RunStarted(run_id, len(frame), len(pending), bool(done), self.job.method, self.job.backend.model_id if pending else ""))
        records = frame.to_dict("records")
        counts: dict[str, Any] = {"model": 0, "cached": 0, "failed": 0, "cost": 0.0}
        batch_size = self.batch_size()
        backend = self.job.backend
        if hasattr(backend, "set_budget"):
            backend.set_budget(max_cost)
        elif max_cost is not None and pending:
            self.emit(Notice(f"--max-cost: {backend.name} is a local model and costs nothing; no cap applies"))
        stopped = None
        batches = [pending[i : i + batch_size] for i in range(0, len(pending), batch_size)]
        progress = len(done)
        try:
            ahead = self._start_batch(batches[0], records) if batches else None
            for n, indices in enumerate(batches):
                current = ahead
                # the next batch's requests go out before this one is saved, so the server never idles
                ahead = self._start_batch(batches[n + 1], records) if n + 1 < len(batches) and not stopped else None
                stats = self._finish_batch(run_id, indices, records, current)
                for key in counts:
                    counts[key] += stats[key]
                sent = len(indices) - len(stats["unsent"])
                progress += sent
                self.emit(BatchDone(progress, len(frame), sent, stats["model"], stats["failed"], time.perf_counter() - started, counts["cost"]))
                if stats["unsent"]:
                    stopped = stats["unsent"][0]
                if stopped and ahead is None:
                    break
        except KeyboardInterrupt:
            self.store.set_run_status(run_id, "interrupted")
            raise
        self.store.set_run_status(run_id, stopped or "done")
        result_frame, columns, failed = self.output_frame(run_id, frame)
        out_path = write_rows(result_frame, output) if output else None
        wall = time.perf_counter() - started
        labeled = int(result_frame[columns["label"]].notna().sum())
        self.emit(RunFinished(run_id, len(frame), labeled, failed, counts["model"], counts["cached"], wall, counts["cost"], stopped))
        result = RunResult(run_id, result_frame, out_path, len(frame), labeled, failed, counts["model"], counts["cached"], wall, columns, counts["cost"], stopped)
        if stopped:
            raise RunStopped(stopped, _STOP_MESSAGES[stopped].format(cost=counts["cost"], cap=max_cost, labeled=labeled, total=len(frame), out=out_path), fix=_STOP_FIXES[stopped], result=result)
        return result

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

    def _label_batch(self, run_id: int, indices: list[int], records: list[dict[str, Any]]) -> dict[str, Any]:
        return self._finish_batch(run_id, indices, records, self._start_batch(indices, records))

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

    def _finish_batch(self, run_id: int, indices: list[int], records: list[dict[str, Any]], batch: _Batch) -> dict[str, Any]:
        """Wait for the batch's answers, parse them (re-ask, vote, check), and commit the batch."""
        job = self.job
        inputs, prompts, keys = batch.inputs, batch.prompts, batch.keys
        rows = [RowInput(text, records[i]) for text, i in zip(inputs, indices)]
        responses, cached_keys, new_entries = self._receive(batch.sent)
        new_entries += batch.extra_entries
        extra_cost = batch.cost
        results = [
            (prompts[n], keys[n], responses[keys[n]], batch.explain_failures.get((0, n)) or job.outcome(responses[keys[n]], rows[n]), False)
            for n in range(len(indices))
        ]
        # one re-ask, showing the model its invalid answer and the error, where the task can use one
        reasks = {}
        if job.method == "generate":
            for n, (prompt, _, response, outcome, _) in enumerate(results):
                if isinstance(outcome, ParseFailure) and not response.get("error") and (0, n) not in batch.explain_failures:
                    follow_up = job.task.reask(prompt, Generation(**response), outcome)
                    if follow_up is not None:
                        reasks[n] = follow_up
        if reasks:
            re_keys = [job.cache_key(p) for p in reasks.values()]
            re_responses, re_cached, re_new = self._responses(list(reasks.values()), re_keys)
            cached_keys |= re_cached
            new_entries += re_new
            for (n, prompt), key in zip(reasks.items(), re_keys):
                results[n] = (prompt, key, re_responses[key], job.outcome(re_responses[key], rows[n]), True)
        explanations: list[str | None] = list(batch.explanations[0]) if batch.explanations else [None] * len(indices)
        # self-consistency: more answers per row (other chain-of-thought paths, or sampled answers), majority vote
        paths = job.reasoning.samples
        if paths > 1:
            votes: list[list[Outcome]] = [[outcome] for _, _, _, outcome, _ in results]
            for path in range(1, paths):
                if batch.explanations:
                    path_keys = batch.all_keys[path * len(indices) : (path + 1) * len(indices)]
                    for n, key in enumerate(path_keys):
                        votes[n].append(batch.explain_failures.get((path, n)) or job.outcome(responses[key], rows[n]))
                    continue
                call = job.sample_call(path)
                sample_keys = [job.cache_key(p, call) for p in prompts]
                sampled, sample_cached, sample_new = self._responses(list(prompts), sample_keys, call)
                new_entries += sample_new
                extra_cost += _fresh_cost(sample_keys, sampled, sample_cached)
                for n, key in enumerate(sample_keys):
                    votes[n].append(job.outcome(sampled[key], rows[n], method="generate"))
            for n, row_votes in enumerate(votes):
                prompt, key, response, _, reasked = results[n]
                path_explanations = [path[n] for path in batch.explanations] if batch.explanations else None
                outcome, explanations[n] = vote(row_votes, path_explanations)
                results[n] = (prompt, key, response, outcome, reasked)
        # the task's yes/no check of its own answers (QA: does the context really answer this?)
        checks = {}
        if job.backend.can_score:
            for n, (_, _, _, outcome, _) in enumerate(results):
                if isinstance(outcome, Label):
                    check = job.task.verify_prompt(rows[n], outcome)
                    if check is not None:
                        checks[n] = check
        for n, p in self._ask(checks, VERIFY, new_entries).items():
            prompt, k, response, outcome, reasked = results[n]
            results[n] = (prompt, k, response, job.task.apply_verification(outcome, p_yes(p)), reasked)
        # the model's own checks of its labels: signals only, the label and its confidence stay
        for enabled, build, call, name, read in (
            (job.reasoning.p_true, p_true_prompt, VERIFY, "p_true", p_yes),
            (job.reasoning.verbalized, verbalized_prompt, VERBALIZED, "verbalized", expected_digit),
        ):
            if not enabled:
                continue
            asks = {n: build(batch.plain[n], outcome) for n, (_, _, _, outcome, _) in enumerate(results) if isinstance(outcome, Label)}
            for n, logprobs in self._ask(asks, call, new_entries).items():
                results[n][3].signals = {**results[n][3].signals, name: read(logprobs)}
        annotations, failed, unsent, cost = [], 0, [], extra_cost
        for index, text, explanation, (prompt, key, response, outcome, reasked) in zip(indices, inputs, explanations, results):
            if key not in cached_keys:
                cost += float(response.get("cost_usd") or 0.0)
            if isinstance(outcome, ParseFailure) and outcome.kind in STOP_ERRORS:
                unsent.append(outcome.kind)  # never sent: nothing to save, a rerun sends it
                continue
            failed += isinstance(outcome, ParseFailure)
            annotations.append(self._annotation(index, text, prompt, key, key in cached_keys, response, outcome, reasked, explanation))
        self.store.save_batch(run_id, annotations, new_entries)
        model_rows = len({k for k in keys if k not in cached_keys})
        return {"model": model_rows, "cached": len(indices) - model_rows, "failed": failed, "cost": cost, "unsent": unsent}

    def _ask(self, asks: dict[int, Prompt], call: Call, new_entries: list[tuple]) -> dict[int, list[float]]:
        """Scored checks by row: the candidates' log-probabilities (rows whose request failed are left out)."""
        if not asks:
            return {}
        keys = [self.job.cache_key(p, call) for p in asks.values()]
        responses, _, new = self._responses(list(asks.values()), keys, call)
        new_entries += new
        return {n: responses[key]["logprobs"] for n, key in zip(asks, keys) if not responses[key].get("error")}

    def _annotation(
        self, index: int, text: str, prompt: Prompt, key: str, cached: bool, response: dict[str, Any], outcome: Outcome, reasked: bool = False,
        explanation: str | None = None,
    ) -> Annotation:
        job = self.job
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


def output_frame(
    store: Store, run_id: int, frame: pd.DataFrame, config: Config, task: Task, calibrator: Calibrator | None = None
) -> tuple[pd.DataFrame, dict[str, str], int]:
    """The input columns plus label, confidence and error columns that never overwrite input columns.

    With a `calibrator` (from `labelmill calibrate`), label and confidence are the calibrated ones; the
    raw ones (as stored) are kept in `llm_label_raw`/`llm_confidence_raw`, and `llm_needs_review` marks
    rows below the calibrated threshold for the target accuracy (and rows without a label).
    """
    spec = config.output
    taken = list(frame.columns)
    columns = {}
    for role, wanted in (("label", spec.label_column), ("confidence", spec.confidence_column), ("error", spec.error_column)):
        columns[role] = free_column_name(wanted, taken)
        taken.append(columns[role])
    if spec.include_distribution:
        columns["distribution"] = free_column_name("llm_distribution", taken)
    labels: list[Any] = [None] * len(frame)
    confidences: list[float | None] = [None] * len(frame)
    errors = [""] * len(frame)
    dists: list[str] = [""] * len(frame)
    row_signals: list[dict | None] = [None] * len(frame)
    explanations: list[str | None] = [None] * len(frame)
    extras: dict[str, list[Any]] = {}
    records = frame.to_dict("records")
    failed = 0
    seen = set()
    for item in store.annotations(run_id):
        seen.add(item["row_index"])
        i = item["row_index"]
        if i >= len(frame):
            continue
        if item["label"] is not None:
            labels[i] = task.output_value(Label(value=item["label"]))
            confidences[i] = item["confidence"]
            dists[i] = json.dumps(item["distribution"]) if item["distribution"] else ""
            explanations[i] = item.get("explanation")
            row_signals[i] = item["signals"]
            for suffix, value in task.extra_outputs(item["label"], records[i]).items():
                extras.setdefault(suffix, [None] * len(frame))[i] = value
        else:
            failed += 1
            errors[i] = f"{item['error']}: {item['error_detail']}" if item["error_detail"] else item["error"]
    for i in range(len(frame)):
        if i not in seen:  # the run stopped before this row (cost cap, server down): a rerun labels it
            errors[i] = "pending: not labeled yet; rerun to label it"
    out = frame.copy()
    if calibrator is not None:
        raw_labels, raw_conf = list(labels), list(confidences)
        labels, confidences = calibrate_rows(calibrator, labels, confidences, [json.loads(d) if d else None for d in dists], row_signals)
        for role, values in (("label_raw", raw_labels), ("confidence_raw", raw_conf)):
            columns[role] = free_column_name(f"llm_{role}", list(out.columns) + list(columns.values()))
            out[columns[role]] = values
        threshold = calibrator.threshold
        review = [lab is None or c is None or threshold is None or c < threshold for lab, c in zip(labels, confidences)]
        columns["needs_review"] = free_column_name("llm_needs_review", list(out.columns) + list(columns.values()))
        out[columns["needs_review"]] = review
    out[columns["label"]] = labels
    out[columns["confidence"]] = confidences
    out[columns["error"]] = errors
    if spec.include_distribution:
        out[columns["distribution"]] = dists
    if config.reasoning.chain_of_thought or any(e is not None for e in explanations):
        columns["explanation"] = free_column_name("llm_explanation", list(out.columns))
        out[columns["explanation"]] = explanations
    for suffix, values in extras.items():
        columns[suffix] = free_column_name(f"llm_{suffix}", list(out.columns))
        out[columns[suffix]] = values
    return out, columns, failed


def calibrate_rows(
    calibrator: Calibrator, labels: list[Any], confidences: list[float | None], dists: list[dict | None], signals: list[dict | None] | None = None
) -> tuple[list[Any], list[float | None]]:
    """Calibrated (label, confidence) per row: from the label distribution where there is one, else from the confidence."""
    import numpy as np

    names = calibrator.labels
    out_labels, out_conf = list(labels), list(confidences)
    for i, (label, conf, dist) in enumerate(zip(labels, confidences, dists)):
        if label is None:
            continue
        if calibrator.method == "fused":
            if conf is not None:
                out_conf[i] = float(calibrator.apply(None, np.array([conf]), [signals[i] if signals else None])[1][0])
        elif dist and calibrator.method not in ("isotonic", "platt") and all(n in dist for n in names):
            predicted, calibrated = calibrator.apply(np.array([[float(dist[n]) for n in names]]), np.array([conf if conf is not None else np.nan]))
            out_labels[i], out_conf[i] = names[int(predicted[0])], float(calibrated[0])
        elif conf is not None:
            out_conf[i] = float(calibrator.confidence(np.array([conf]))[0])
    return out_labels, out_conf
