"""The labeling loop: rows -> prompts -> (cache | model) -> parsed labels -> store -> output file.

A run is identified by the config's fingerprint and the input's content hash, so rerunning the same
command resumes it: rows already in the store are neither re-sent nor duplicated.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backends import Backend, make_backend
from .confidence import softmax_logprobs
from .config import Config, dump_config
from .errors import BackendError, InputDataError
from .events import BatchDone, EventHandler, RunFinished, RunStarted, ignore
from .io import content_hash, free_column_name, read_rows, write_rows
from .selectors import build_demos
from .store import Annotation, Store
from .tasks import Task, make_task
from .tasks.base import RowInput
from .template import template_fields
from .types import Generation, Label, Outcome, ParseFailure, Prompt, ScoreResult

if TYPE_CHECKING:
    import pandas as pd


VERIFY_ANSWERS = ["yes", "no"]


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


class Job:
    """A config bound to a task, its demos and a backend: builds prompts and labels batches."""

    def __init__(self, config: Config, backend: Backend | None = None):
        self.config = config
        self.task: Task = make_task(config)
        self.demos = build_demos(config, self.task)
        self.backend = backend or make_backend(config.model, config.base_dir)
        self.method = self._choose_method()
        self.candidates = self.task.candidates() if self.method == "score" else None
        spec = config.model
        # a task's own answer length unless the config sets one
        self.max_tokens = spec.max_tokens if "max_tokens" in spec.model_fields_set else max(spec.max_tokens, self.task.default_max_tokens)
        self.schema = self.task.schema() if self.method == "generate" else None

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
        template = set(template_fields(self.config.input_template or ""))
        missing = [f for f in self.task.required_columns() if f not in frame.columns]
        if missing:
            cols = ", ".join(map(str, frame.columns[:12]))
            where = "used by input_template" if missing[0] in template else f"needed by the {self.config.task} task"
            raise InputDataError(
                f"column {missing[0]!r} ({where}) is not in the input; its columns are: {cols}",
                fix=f"rename a column to {missing[0]!r} or change the config to name the right column",
            )

    def row_input(self, row: dict[str, Any]) -> str:
        return self.task.render(row)

    def prompt(self, row_input: str) -> Prompt:
        return self.task.build_prompt(row_input, self.demos)

    def cache_key(self, prompt: Prompt, *, verify: bool = False) -> str:
        spec = self.config.model
        params: dict[str, Any] = {"method": self.method, **spec.params}
        if verify:
            params = {"method": "score", "candidates": VERIFY_ANSWERS, **spec.params}
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

    def call_verify(self, prompts: Sequence[Prompt]) -> list[dict[str, Any]]:
        """P(yes) against P(no) for the task's yes/no checks of its own answers."""
        return [r.__dict__.copy() for r in self.backend.score(prompts, VERIFY_ANSWERS)]

    def outcome(self, response: dict[str, Any], row: RowInput | None = None) -> Outcome:
        try:
            if self.method == "score":
                return self.task.from_scores(ScoreResult(**response), row)
            return self.task.parse(Generation(**response), row)
        except (ValueError, TypeError, KeyError, IndexError) as exc:  # a parser bug must not lose the run
            return ParseFailure("parser_error", str(response.get("text", ""))[:500], f"{type(exc).__name__}: {exc}")


class Runner:
    """Runs a Job over rows with a Store, batch by batch, committing each batch atomically."""

    def __init__(self, job: Job, store: Store, on_event: EventHandler = ignore):
        self.job = job
        self.store = store
        self.emit = on_event

    def run(self, source: Any, *, output: str | Path | None = None, limit: int | None = None, input_name: str | None = None) -> RunResult:
        started = time.perf_counter()
        config = self.job.config
        full = read_rows(source, config.dataset)
        self.job.check_columns(full)
        input_hash = content_hash(full)  # of the whole input, so a run with --limit resumes into the full run
        frame = full.head(limit) if limit is not None else full
        run_id = self.store.open_run(
            run_key=_sha({"config": config.fingerprint(), "input": input_hash})[:24],
            task_name=config.name,
            config=dump_config(config),
            config_hash=config.fingerprint(),
            input_path=input_name or (str(source) if isinstance(source, (str, Path)) else None),
            input_hash=input_hash,
            n_rows=len(full),
        )
        done = {i for i in self.store.done_rows(run_id) if i < len(frame)}
        pending = [i for i in range(len(frame)) if i not in done]
        self.emit(RunStarted(run_id, len(frame), len(pending), bool(done), self.job.method, self.job.backend.model_id if pending else ""))
        records = frame.to_dict("records")
        counts = {"model": 0, "cached": 0, "failed": 0}
        batch_size = config.model.batch_size
        try:
            for start in range(0, len(pending), batch_size):
                indices = pending[start : start + batch_size]
                stats = self._label_batch(run_id, indices, records)
                for key in counts:
                    counts[key] += stats[key]
                self.emit(BatchDone(len(done) + start + len(indices), len(frame), len(indices), stats["model"], stats["failed"], time.perf_counter() - started))
        except KeyboardInterrupt:
            self.store.set_run_status(run_id, "interrupted")
            raise
        self.store.set_run_status(run_id, "done")
        result_frame, columns, failed = self.output_frame(run_id, frame)
        out_path = write_rows(result_frame, output) if output else None
        wall = time.perf_counter() - started
        self.emit(RunFinished(run_id, len(frame), len(frame) - failed, failed, counts["model"], counts["cached"], wall))
        return RunResult(run_id, result_frame, out_path, len(frame), len(frame) - failed, failed, counts["model"], counts["cached"], wall, columns)

    def _responses(self, prompts: list[Prompt], keys: list[str], verify: bool = False) -> tuple[dict[str, Any], set[str], list[tuple]]:
        """Model answers for `prompts`: from the cache, else from the model (identical prompts go once)."""
        job = self.job
        responses = self.store.cache_get(keys)
        cached_keys = set(responses)
        to_send = {k: p for k, p in zip(keys, prompts) if k not in responses}
        new_entries = []
        if to_send:
            fresh = (job.call_verify if verify else job.call_model)(list(to_send.values()))
            identity = job.backend.identity()
            for key, response in zip(to_send, fresh):
                responses[key] = response
                new_entries.append((key, identity["backend"], identity["model"], "verify" if verify else job.method, response))
        return responses, cached_keys, new_entries

    def _label_batch(self, run_id: int, indices: list[int], records: list[dict[str, Any]]) -> dict[str, int]:
        job = self.job
        inputs = [job.row_input(records[i]) for i in indices]
        rows = [RowInput(text, records[i]) for text, i in zip(inputs, indices)]
        prompts = [job.prompt(text) for text in inputs]
        keys = [job.cache_key(p) for p in prompts]
        responses, cached_keys, new_entries = self._responses(prompts, keys)
        results = [(prompts[n], keys[n], responses[keys[n]], job.outcome(responses[keys[n]], rows[n]), False) for n in range(len(indices))]
        # one re-ask, showing the model its invalid answer and the error, where the task can use one
        reasks = {}
        if job.method == "generate":
            for n, (prompt, _, response, outcome, _) in enumerate(results):
                if isinstance(outcome, ParseFailure):
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
        # the task's yes/no check of its own answers (QA: does the context really answer this?)
        checks = {}
        if job.backend.can_score:
            for n, (_, _, _, outcome, _) in enumerate(results):
                if isinstance(outcome, Label):
                    check = job.task.verify_prompt(rows[n], outcome)
                    if check is not None:
                        checks[n] = check
        if checks:
            check_keys = [job.cache_key(p, verify=True) for p in checks.values()]
            check_responses, _, check_new = self._responses(list(checks.values()), check_keys, verify=True)
            new_entries += check_new
            for (n, _), key in zip(checks.items(), check_keys):
                logprobs = check_responses[key]["logprobs"]
                p_yes = float(softmax_logprobs(logprobs)[0])
                prompt, k, response, outcome, reasked = results[n]
                results[n] = (prompt, k, response, job.task.apply_verification(outcome, p_yes), reasked)
        annotations, failed = [], 0
        for index, text, (prompt, key, response, outcome, reasked) in zip(indices, inputs, results):
            failed += isinstance(outcome, ParseFailure)
            annotations.append(self._annotation(index, text, prompt, key, key in cached_keys, response, outcome, reasked))
        self.store.save_batch(run_id, annotations, new_entries)
        model_rows = len({k for k in keys if k not in cached_keys})
        return {"model": model_rows, "cached": len(indices) - model_rows, "failed": failed}

    def _annotation(
        self, index: int, text: str, prompt: Prompt, key: str, cached: bool, response: dict[str, Any], outcome: Outcome, reasked: bool = False
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
        )

    def output_frame(self, run_id: int, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str], int]:
        """The input columns plus label, confidence and error columns that never overwrite input columns."""
        spec = self.job.config.output
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
        extras: dict[str, list[Any]] = {}
        records = frame.to_dict("records")
        failed = 0
        task = self.job.task
        for item in self.store.annotations(run_id):
            i = item["row_index"]
            if i >= len(frame):
                continue
            if item["label"] is not None:
                labels[i] = task.output_value(Label(value=item["label"]))
                confidences[i] = item["confidence"]
                dists[i] = json.dumps(item["distribution"]) if item["distribution"] else ""
                for suffix, value in task.extra_outputs(item["label"], records[i]).items():
                    extras.setdefault(suffix, [None] * len(frame))[i] = value
            else:
                failed += 1
                errors[i] = f"{item['error']}: {item['error_detail']}" if item["error_detail"] else item["error"]
        out = frame.copy()
        out[columns["label"]] = labels
        out[columns["confidence"]] = confidences
        out[columns["error"]] = errors
        if spec.include_distribution:
            out[columns["distribution"]] = dists
        for suffix, values in extras.items():
            columns[suffix] = free_column_name(f"llm_{suffix}", list(out.columns))
            out[columns[suffix]] = values
        return out, columns, failed
