"""A Job: a config bound to its task, demos and backend. It builds each row's prompt, its cache key, and
calls the model; it holds no state about runs (that is the loop's and the store's)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from labelmill.backends import Backend, make_backend
from labelmill.config import Config
from labelmill.core.reasoning import DIGITS, YES_NO, Call, with_demo_reasons
from labelmill.errors import BackendError, ConfigError, InputDataError
from labelmill.selectors.pickers import DemoPicker
from labelmill.tasks import Task, make_task
from labelmill.tasks.base import RowInput
from labelmill.template import template_fields
from labelmill.types import Generation, Outcome, ParseFailure, Prompt, ScoreResult

if TYPE_CHECKING:
    import pandas as pd


VERIFY_ANSWERS = list(YES_NO)
VERIFY = Call("verify", "score", YES_NO)
VERBALIZED = Call("verbalized", "score", DIGITS)


def content_hash_of(obj: Any) -> str:
    """SHA-256 of canonical JSON: cache keys and run keys."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


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
        self._row_candidates: dict[str, tuple[str, ...]] = {}  # a prompt's system text -> the labels it lists, when a subset
        spec = config.model
        # a task's own answer length unless the config sets one
        self.max_tokens = spec.max_tokens if "max_tokens" in spec.model_fields_set else max(spec.max_tokens, self.task.default_max_tokens)
        self.schema = self.task.schema() if self.method == "generate" else None
        self.reasoning = config.reasoning
        if self.task.asks_followups and not self.backend.can_score:
            raise BackendError(
                f"the {config.task} task asks scored questions about its answers; {self.backend.name} cannot score",
                fix="use a backend that can score (llama_cpp, or a llama.cpp server)",
            )
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
        demos = self.picker.for_row(row_input)
        prompt = self.task.build_prompt(row_input, demos)
        if self.reasoning.chain_of_thought:
            prompt = with_demo_reasons(prompt, demos)
        subset = self.task.row_candidates(row_input) if self.method == "score" else None
        if subset is not None:  # the prompt lists these labels (in its system text, which follow-up prompts keep)
            self._row_candidates[prompt.system] = tuple(subset)
        return prompt

    def prepare_rows(self, row_inputs: list[str], store: Any = None) -> None:
        """Work a batch of rows needs before its prompts: their embeddings, for per-row demo selection (and the
        task's per-row label subsets)."""
        self.picker.prepare(row_inputs, store)
        self.task.prepare_rows(row_inputs, store)

    def candidates_for(self, prompt: Prompt) -> list[str]:
        """What a row's prompt is scored over: the task's labels, or the subset its prompt lists (`row_candidates`)."""
        subset = self._row_candidates.get(prompt.system)
        return list(subset) if subset is not None else list(self.candidates or [])

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
            params["candidates"] = self.candidates_for(prompt)
        else:
            params.update(max_tokens=self.max_tokens, temperature=spec.temperature, seed=spec.seed)
            if self.schema and self.backend.supports_schema:
                params["schema"] = self.schema
        return content_hash_of({"backend": self.backend.identity(), "params": params, "prompt": prompt.messages()})

    # model calls ---------------------------------------------------------------------------------
    def call_model(self, prompts: Sequence[Prompt]) -> list[dict[str, Any]]:
        """One response dict per prompt (the form the cache stores)."""
        spec = self.config.model
        if self.method == "score":
            results: list[Any] = self._score(prompts)
        else:
            extra = {"schema": self.schema} if self.schema else {}
            results = self.backend.generate(prompts, max_tokens=self.max_tokens, temperature=spec.temperature, seed=spec.seed, **extra)
        return [r.__dict__.copy() for r in results]

    def _score(self, prompts: Sequence[Prompt]) -> list[ScoreResult]:
        """Every prompt scored over its candidates, a call per distinct subset; a label outside a row's subset
        gets log-probability -inf (probability 0), so every result covers the task's whole label set."""
        if not self._row_candidates:
            return self.backend.score(prompts, self.candidates or [])
        groups: dict[tuple[str, ...], list[int]] = {}
        for n, prompt in enumerate(prompts):
            groups.setdefault(tuple(self.candidates_for(prompt)), []).append(n)
        results: list[Any] = [None] * len(prompts)
        for subset, members in groups.items():
            where = {label: i for i, label in enumerate(subset)}
            for n, result in zip(members, self.backend.score([prompts[n] for n in members], list(subset))):
                if result.error:  # a failed request has no scores to widen
                    results[n] = result
                    continue
                full = [result.logprobs[where[label]] if label in where else float("-inf") for label in self.candidates or []]
                results[n] = dataclasses.replace(result, logprobs=full)
        return results

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
