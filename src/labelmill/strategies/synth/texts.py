"""`labelmill synth instructions | responses | rationales | critiques | preferences`: text data other than labels.

- **instructions**: self-instruct (new tasks written from a few seed tasks drawn at random, then kept only if
  they pass the rule filter and are no MinHash near-duplicate of a seed or of each other) and Evol-Instruct
  (each seed rewritten by one operation: add a constraint, deepen, concretize, add reasoning steps, or a
  new task in the same domain; an evolution that repeats its seed or fails the rules is dropped);
- **responses**: an answer to each row's instruction (and context, where the rows have one);
- **rationales**: why a row's given (gold) label is right, for a classification config's rows;
- **critiques**: what is wrong or missing in each row's response;
- **preferences**: two responses per prompt from two models or settings, judged (`judge_pairs`, both
  orders, or pointwise), as chosen / rejected pairs with the models and ratings of each.

Every request goes through the store's cache batch by batch (the key holds the model, prompt, settings and
seed), so a crashed run resumes where it stopped and a rerun asks nothing twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ConfigDict

from labelmill.config import Config, load_with_notices
from labelmill.core import ask_texts
from labelmill.core.strategy import Options
from labelmill.errors import InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.io import read_rows, write_rows
from labelmill.strategies.synth.filters import distinct_n, minhash_dedup, rule_filter
from labelmill.strategies.synth.common import FrameResult, model_config
from labelmill.types import Prompt

WRITER_SYSTEM = "You are a helpful assistant that writes data for training language models. Reply with exactly what is asked, nothing else."
ANSWER_SYSTEM = "You are a helpful, accurate assistant. Answer the user's request directly and concisely."
EVOL_OPERATIONS = {
    "constraints": "Rewrite the task so that it adds one more constraint or requirement.",
    "deepen": "Rewrite the task so that it asks about the same topic in more depth.",
    "concretize": "Rewrite the task so that it replaces general ideas with a concrete, specific case.",
    "reasoning": "Rewrite the task so that answering it needs several steps of reasoning, said explicitly.",
    "breadth": "Write a new task in the same domain as the given one, but about something rarer and different.",
}


TextsResult = FrameResult


def writer_config(model: str | dict | Config | None = None) -> Config:
    """A writer's config: the model settings (a name, a dict of model settings, or a config to take them from)."""
    return model_config(model)


generate = ask_texts  # each prompt's generated text (None where the model failed), through the core's cache


def _first_block(text: str | None) -> str | None:
    if text is None:
        return None
    first = text.strip().split("\n\n")[0].strip().strip('"“”').strip()
    for prefix in ("Task:", "New task:", "Instruction:", "Rewritten task:"):
        if first.lower().startswith(prefix.lower()):
            first = first[len(prefix):].strip()
    return " ".join(first.split()) or None


class InstructionsOptions(Options):
    """synth instructions' knobs: how many, by which method (self-instruct or evol), the column, the writer, seeds shown per prompt, temperature and seed."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    n: int = 50
    method: str = "self-instruct"
    column: str = "instruction"
    model: str | dict | Config | None = None
    shown: int = 3
    temperature: float = 0.9
    seed: int = 0


def synth_instructions(
    seeds: Any, options: InstructionsOptions | dict | None = None, *, project: str | Path = "labelmill.db", output: str | Path | None = None, backend: Any = None, on_event: EventHandler = ignore, **knobs: Any,
) -> TextsResult:
    """New instructions from seed tasks: `method` "self-instruct" (n new tasks, `shown` seeds in each prompt) or
    "evol" (each of the first n seeds rewritten by one Evol-Instruct operation, in turn)."""
    o = InstructionsOptions.of(options, knobs)
    n, method, column, model, shown, temperature, seed = o.n, o.method, o.column, o.model, o.shown, o.temperature, o.seed
    frame = read_rows(seeds)
    if column not in frame.columns:
        raise InputDataError(f"synth instructions: no column {column!r} in the seed rows", fix=f"name it with --column; the rows have: {', '.join(map(str, frame.columns))}")
    pool = [" ".join(str(x).split()) for x in frame[column].dropna() if str(x).strip()]
    if len(pool) < (shown if method == "self-instruct" else 1):
        raise InputDataError(f"synth instructions needs at least {shown} seed instructions; there are {len(pool)}", fix="give more seed tasks")
    cfg = writer_config(model)
    prompts, rows = _instruction_prompts(pool, o)
    on_event(Notice(f"synth instructions: {len(prompts)} with {cfg.model.name} ({method})"))
    texts = [_first_block(t) for t in generate(cfg, prompts, kind=f"synth_{method}", project=project, max_tokens=120, temperature=temperature,
                                                seeds=[seed * 100_003 + i for i in range(len(prompts))], backend=backend, on_event=on_event)]
    out = _filtered(pd.DataFrame(rows), column, texts, pool)
    out["kept"] = out["removed_by"] == ""
    kept_texts = out.loc[out["kept"], column].tolist()
    figures = {"method": method, "generated": len(out), "kept": int(out["kept"].sum()), "writer": f"{cfg.model.backend}:{cfg.model.name}",
               "removed": {str(k): int(v) for k, v in out.loc[~out["kept"], "removed_by"].value_counts().items()},
               "distinct_2": round(distinct_n(kept_texts, 2), 4)}
    out["seed_instructions"] = out["seed_instructions"].map(lambda x: " || ".join(x))
    path = write_rows(out, output) if output else None
    return TextsResult(out, figures, path)


def _instruction_prompts(pool: list[str], o: InstructionsOptions) -> tuple[list[Prompt], list[dict[str, Any]]]:
    """The writer's prompts and each new row's provenance: self-instruct shows `shown` seeds drawn at random
    and asks for a new task; evol rewrites each of the first n seeds by one operation, in turn."""
    rng = np.random.default_rng(o.seed)
    rows: list[dict[str, Any]] = []
    prompts: list[Prompt] = []
    if o.method == "self-instruct":
        for _ in range(o.n):
            picked = [pool[j] for j in rng.choice(len(pool), size=o.shown, replace=False)]
            listed = "\n".join(f"{k + 1}. {t}" for k, t in enumerate(picked))
            prompts.append(Prompt(WRITER_SYSTEM, (), f"Here are tasks a user gave an assistant:\n{listed}\n\nWrite one new task, different from these "
                                  "in topic and in kind, that a user might give an assistant. Reply with the task only."))
            rows.append({"method": "self-instruct", "seed_instructions": picked, "operation": ""})
    elif o.method == "evol":
        names = list(EVOL_OPERATIONS)
        for i in range(min(o.n, len(pool))):
            op = names[i % len(names)]
            prompts.append(Prompt(WRITER_SYSTEM, (), f"{EVOL_OPERATIONS[op]} Keep it answerable by an assistant, and reply with the new task only.\n\nTask: {pool[i]}"))
            rows.append({"method": "evol", "seed_instructions": [pool[i]], "operation": op})
    else:
        raise InputDataError(f"unknown method {o.method!r}", fix="use self-instruct or evol")
    return prompts, rows


def _filtered(out: pd.DataFrame, column: str, texts: list[str | None], pool: list[str]) -> pd.DataFrame:
    """The new instructions with `removed_by` filled: no answer, the rule filters, a repeat of its seed, a
    near-duplicate of a seed or of an earlier new one (the seeds come first, so they are the ones kept)."""
    out.insert(0, column, texts)
    out["removed_by"] = ""
    alive = [i for i, t in enumerate(texts) if t is not None]
    out.loc[[i for i in range(len(texts)) if texts[i] is None], "removed_by"] = "no answer"
    ruled = rule_filter([texts[i] for i in alive], min_words=3, max_words=150)
    for j, i in enumerate(alive):
        if j not in set(ruled.keep):
            out.loc[i, "removed_by"] = "rules"
    alive = [alive[j] for j in ruled.keep]
    same = [i for i in alive if any(texts[i].casefold() == s.casefold() for s in out.loc[i, "seed_instructions"])]
    out.loc[same, "removed_by"] = "repeats its seed"
    alive = [i for i in alive if i not in set(same)]
    # near-duplicates of a seed or of an earlier new one (the seeds come first, so they are the ones kept)
    together = pool + [texts[i] for i in alive]
    hashed = minhash_dedup(together, threshold=0.7)
    kept = set(hashed.keep)
    for j, i in enumerate(alive):
        if len(pool) + j not in kept:
            out.loc[i, "removed_by"] = "near-duplicate"
    return out


class ResponsesOptions(Options):
    """synth responses' knobs: which columns hold the instruction and its context, where the answer goes, and the writer's settings."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    column: str = "instruction"
    context: str | None = "context"
    out_column: str = "response"
    model: str | dict | Config | None = None
    temperature: float = 0.0
    seed: int = 0
    max_tokens: int = 256


def synth_responses(
    rows: Any, options: ResponsesOptions | dict | None = None, *, project: str | Path = "labelmill.db", output: str | Path | None = None, backend: Any = None, on_event: EventHandler = ignore, **knobs: Any,
) -> TextsResult:
    """An answer to each row's `column` (with its `context`, where the rows have that column)."""
    o = ResponsesOptions.of(options, knobs)
    column, context, out_column, model, temperature, seed, max_tokens = o.column, o.context, o.out_column, o.model, o.temperature, o.seed, o.max_tokens
    frame = read_rows(rows)
    if column not in frame.columns:
        raise InputDataError(f"synth responses: no column {column!r} in the rows", fix=f"name it with --column; the rows have: {', '.join(map(str, frame.columns))}")
    cfg = writer_config(model)
    with_ctx = context is not None and context in frame.columns
    prompts = [Prompt(ANSWER_SYSTEM, (), (f"Context: {_text(r.get(context))}\n\n" if with_ctx else "") + _text(r[column])) for r in frame.to_dict("records")]
    texts = generate(cfg, prompts, kind="synth_response", project=project, max_tokens=max_tokens, temperature=temperature,
                     seeds=[seed] * len(prompts), backend=backend, on_event=on_event)
    out = frame.copy()
    out[out_column] = texts
    out[f"{out_column}_model"] = f"{cfg.model.backend}:{cfg.model.name}"
    figures = {"rows": len(out), "answered": int(sum(t is not None for t in texts)), "model": f"{cfg.model.backend}:{cfg.model.name}",
               "distinct_2": round(distinct_n([t for t in texts if t], 2), 4)}
    path = write_rows(out, output) if output else None
    return TextsResult(out, figures, path)


def synth_rationales(
    config: str | Path | dict | Config, rows: Any, *, label_column: str | None = None, model: str | dict | Config | None = None,
    project: str | Path = "labelmill.db", output: str | Path | None = None, backend: Any = None, on_event: EventHandler = ignore,
) -> TextsResult:
    """Why each row's given label is right (the config's guidelines and labels; the row's gold label)."""
    cfg = load_with_notices(config, on_event)
    from labelmill.tasks import make_task

    task = make_task(cfg)
    frame = read_rows(rows, cfg.dataset)
    gold = label_column or cfg.gold_column or "label"
    if gold not in frame.columns:
        raise InputDataError(f"synth rationales explains a given label; the rows have no column {gold!r}", fix="name the label column with --label-column")
    writer = writer_config(model) if model is not None else cfg
    guidelines = cfg.guidelines.strip()
    prompts = [Prompt(WRITER_SYSTEM, (), f"Task: {guidelines}\n\nText: {task.render(r)}\n\nThe correct label is \"{_text(r[gold])}\". "
                      "In one or two sentences, explain which words or facts in the text make it this label. Reply with the explanation only.")
               for r in frame.to_dict("records")]
    texts = generate(writer, prompts, kind="synth_rationale", project=project, max_tokens=96, backend=backend, on_event=on_event)
    out = frame.copy()
    out["rationale"] = [_first_block(t) for t in texts]
    figures = {"rows": len(out), "written": int(out["rationale"].notna().sum()), "model": f"{writer.model.backend}:{writer.model.name}"}
    path = write_rows(out, output) if output else None
    return TextsResult(out, figures, path)


class CritiquesOptions(Options):
    """synth critiques' knobs: the question, answer and context columns, and the critic."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    question: str = "instruction"
    answer: str = "response"
    context: str | None = "context"
    model: str | dict | Config | None = None


def synth_critiques(
    rows: Any, options: CritiquesOptions | dict | None = None, *, project: str | Path = "labelmill.db", output: str | Path | None = None, backend: Any = None, on_event: EventHandler = ignore, **knobs: Any,
) -> TextsResult:
    """A short critique of each row's `answer` to its `question`: what is wrong or missing, or "No issues."."""
    o = CritiquesOptions.of(options, knobs)
    question, answer, context, model = o.question, o.answer, o.context, o.model
    frame = read_rows(rows)
    missing = [c for c in (question, answer) if c not in frame.columns]
    if missing:
        raise InputDataError(f"synth critiques: no column {missing[0]!r} in the rows", fix=f"name the columns with --question/--answer; the rows have: {', '.join(map(str, frame.columns))}")
    cfg = writer_config(model)
    with_ctx = context is not None and context in frame.columns
    prompts = [Prompt(WRITER_SYSTEM, (), (f"Context: {_text(r.get(context))}\n\n" if with_ctx else "") + f"Request: {_text(r[question])}\n\nResponse: {_text(r[answer])}\n\n"
                      "Critique the response in at most three sentences: what is wrong, missing or unsupported. If it is fully right, reply \"No issues.\"")
               for r in frame.to_dict("records")]
    texts = generate(cfg, prompts, kind="synth_critique", project=project, max_tokens=128, backend=backend, on_event=on_event)
    out = frame.copy()
    out["critique"] = texts
    out["critique_says_ok"] = [bool(t) and t.strip().lower().startswith("no issues") for t in texts]
    figures = {"rows": len(out), "written": int(sum(t is not None for t in texts)), "no_issues_share": round(float(out["critique_says_ok"].mean()), 4) if len(out) else 0.0,
               "model": f"{cfg.model.backend}:{cfg.model.name}"}
    path = write_rows(out, output) if output else None
    return TextsResult(out, figures, path)


class PreferencesOptions(Options):
    """synth preferences' knobs: the columns, the two writers and their temperatures, the judge and its mode, and where the DPO pairs go."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    column: str = "instruction"
    context: str | None = "context"
    model_a: str | dict | Config | None = None
    model_b: str | dict | Config | None = None
    temperature_a: float = 0.0
    temperature_b: float = 0.9
    judge_model: str | dict | Config | None = None
    judge_mode: str = "pointwise"
    dpo: str | Path | None = None


def synth_preferences(
    rows: Any, options: PreferencesOptions | dict | None = None, *, project: str | Path = "labelmill.db", output: str | Path | None = None, backends: dict[str, Any] | None = None, on_event: EventHandler = ignore, **knobs: Any,
) -> TextsResult:
    """Two responses per prompt (model / temperature A and B), judged; chosen / rejected with both models and ratings.
    `dpo`: also write the DPO JSONL (prompt, chosen, rejected; ties left out)."""
    o = PreferencesOptions.of(options, knobs)
    column, context, model_a, model_b, temperature_a, temperature_b, judge_model, judge_mode, dpo = o.column, o.context, o.model_a, o.model_b, o.temperature_a, o.temperature_b, o.judge_model, o.judge_mode, o.dpo
    from labelmill.strategies.synth.exports import dpo_rows, write_jsonl
    from labelmill.strategies.synth.judge import judge_pairs

    b = backends or {}
    first = synth_responses(rows, column=column, context=context, out_column="first", model=model_a, project=project, temperature=temperature_a,
                            backend=b.get("a"), on_event=on_event).frame
    second = synth_responses(rows, column=column, context=context, out_column="second", model=model_b if model_b is not None else model_a,
                             project=project, temperature=temperature_b, seed=1, backend=b.get("b"), on_event=on_event).frame
    frame = first.copy()
    frame["second"], frame["second_model"] = second["second"], second["second_model"]
    frame["first_model"] = frame["first_model"] + f" (T={temperature_a})"
    frame["second_model"] = frame["second_model"] + f" (T={temperature_b})"
    answered = frame["first"].notna() & frame["second"].notna()
    judged = judge_pairs(frame[answered].reset_index(drop=True), model=judge_model, project=project, question=column, context=context, human=None,
                         mode=judge_mode, backend=b.get("judge"), on_event=on_event)
    out = judged.frame
    figures = {"prompts": len(frame), "pairs": len(out), **{f"judge_{k}": v for k, v in judged.figures.items()},
               "first_wins": int((out["judge_verdict"] == "first").sum()), "second_wins": int((out["judge_verdict"] == "second").sum()),
               "ties": int((out["judge_verdict"] == "tie").sum())}
    if dpo:
        pairs = dpo_rows(out, prompt=column, first="first", second="second", first_model=out["first_model"].tolist(), second_model=out["second_model"].tolist())
        write_jsonl(pairs, dpo)
        figures["dpo_rows"], figures["dpo_output"] = len(pairs), str(dpo)
    path = write_rows(out, output) if output else None
    return TextsResult(out, figures, path)


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else " ".join(str(value).split())
