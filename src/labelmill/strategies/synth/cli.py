"""The `labelmill synth` group (examples, summaries, instructions, responses, rationales, critiques,
preferences, export) and `labelmill judge` (pairs, scores)."""

from __future__ import annotations

import json
from typing import Any

import click


@click.group(name="synth")
def group() -> None:
    """Synthesize data with the model: `labelmill synth examples CONFIG --out OUT` writes labeled examples per label;
    `labelmill synth summaries CONFIG ROWS` searches a generation config's template without references;
    `instructions` (self-instruct, Evol-Instruct), `responses`, `rationales`, `critiques` and `preferences` (judged pairs, DPO)."""


@group.command(name="examples")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", "output", required=True, type=click.Path(dir_okay=False), help="The examples, with why each removed one was removed.")
@click.option("--per-label", default=50, show_default=True, type=click.IntRange(1, 100000), help='Examples to write per label.')
@click.option("--model", "model_name", help="The writer model (default: the config's), e.g. qwen2.5-coder-1.5b.")
@click.option("--temperature", default=0.9, show_default=True, type=click.FloatRange(0, 2), help='Sampling temperature of the generated text.')
@click.option("--consistency", "consistency", type=click.Choice(["labeler", "student", "none"]), default="labeler", show_default=True,
              help="Who must give an example its intended label back: the config's labeler, or a student cross-fitted on the other examples.")


@click.option("--no-consistency", is_flag=True, help="Same as --consistency none.")
@click.option("--no-dedup", is_flag=True, help="Keep near-duplicates.")
@click.option("--project", default="labelmill.db", show_default=True, help='SQLite project file (cache, runs, labels).')
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def examples(config: str, output: str, per_label: int, model_name: str | None, temperature: float, consistency: str, no_consistency: bool,
             no_dedup: bool, project: str, as_json: bool) -> None:
    """Write labeled examples for each label of a classification CONFIG, from no real rows: subtopics,
    lengths and styles vary; rule, near-duplicate and consistency filters drop the bad ones."""
    from labelmill.core.strategy import progress_handler
    from labelmill.strategies.synth.examples import synth_examples

    result = synth_examples(config, per_label=per_label, project=project, output=output, generator={"name": model_name} if model_name else None,
                            temperature=temperature, consistency=None if no_consistency or consistency == "none" else consistency, dedup=not no_dedup, on_event=progress_handler(quiet=as_json))
    if as_json:
        click.echo(json.dumps({"output": str(result.output_path), **result.figures}))
        return
    f = result.figures
    click.echo(f"wrote {result.output_path}: kept {f['kept']} of {f['generated']} examples {f['kept_per_label']}; "
               f"distinct-2 {f['distinct_2']:.3f}, near-duplicates removed {f['dedup_removed_share']:.1%}")


@group.command(name="summaries")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("input", type=click.Path(dir_okay=False, exists=True))
@click.option("--out", "output", type=click.Path(dir_okay=False), help="The held-out rows with the searched and the initial summaries and their restore scores.")
@click.option("--search-rows", default=40, show_default=True, type=click.IntRange(5, 100000), help="Distinct rows the template is searched on; the rest are held out.")
@click.option("--no-one-shot", is_flag=True, help="Do not try the best instruction with one demo.")
@click.option("--project", default="labelmill.db", show_default=True, help='SQLite project file (cache, runs, labels).')
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--restore-words", type=click.IntRange(min=0), default=0, show_default=True,
              help="Restore only the first N words of each source (0: all of it; the start alone favours copying the lead).")


def summaries(config: str, input: str, output: str | None, search_rows: int, no_one_shot: bool, restore_words: int, project: str, as_json: bool) -> None:
    """Search a generation CONFIG's template by generate -> restore -> compare on INPUT, with no reference summaries."""
    from labelmill.core.strategy import progress_handler
    from labelmill.strategies.synth.summaries import synth_summaries

    result = synth_summaries(config, input, search_rows=search_rows, project=project, output=output, one_shot=not no_one_shot, restore_words=restore_words or None,
                             on_event=progress_handler(quiet=as_json))
    if as_json:
        click.echo(json.dumps({"output": str(result.output_path) if result.output_path else None, **result.figures}))
        return
    f = result.figures
    click.echo(f"chose {f['chosen_template']!r}: {f['chosen_instruction']}")
    click.echo(f"held-out rows {f['held_out_rows']}: restore score {f['restore_score_initial']} -> {f['restore_score_searched']}, "
               f"compression {f['compression_initial']} -> {f['compression_searched']}")


def texts_options(fn: Any) -> Any:
    for option in reversed([
        click.option("--out", "output", required=True, type=click.Path(dir_okay=False), help='Output file (.csv, .jsonl, .parquet, .xlsx).'),
        click.option("--model", "model_name", default="qwen2.5-coder-0.5b", show_default=True, help="The writer model (llama_cpp), e.g. qwen2.5-coder-1.5b."),
        click.option("--project", default="labelmill.db", show_default=True, help='SQLite project file (cache, runs, labels).'),
        click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON."),
    ]):
        fn = option(fn)
    return fn


@group.command(name="instructions")
@click.argument("seeds", type=click.Path(dir_okay=False, exists=True))
@texts_options
@click.option("--method", type=click.Choice(["self-instruct", "evol"]), default="self-instruct", show_default=True, help='self-instruct: new instructions from seed ones; evol: seed instructions rewritten harder or broader.')
@click.option("-n", "n", default=50, show_default=True, type=click.IntRange(1, 100000), help="New instructions (evol: seeds evolved).")
@click.option("--column", default="instruction", show_default=True, help="The seed file's instruction column.")
@click.option("--temperature", default=0.9, show_default=True, type=click.FloatRange(0, 2), help='Sampling temperature of the generated text.')
def instructions(seeds: str, output: str, model_name: str, project: str, as_json: bool, method: str, n: int, column: str, temperature: float) -> None:
    """New instructions from SEEDS (a file of seed tasks): self-instruct or Evol-Instruct, filtered (rules, near-duplicates)."""
    from labelmill.core.strategy import progress_handler
    from labelmill.strategies.synth.texts import synth_instructions

    _show(synth_instructions(seeds, n=n, method=method, column=column, model=model_name, project=project, output=output,
                             temperature=temperature, on_event=progress_handler(quiet=as_json)), as_json)


@group.command(name="responses")
@click.argument("input", type=click.Path(dir_okay=False, exists=True))
@texts_options
@click.option("--column", default="instruction", show_default=True, help="The instruction (prompt) column.")
@click.option("--context", default="context", show_default=True, help="A context column, shown when the rows have it.")
@click.option("--temperature", default=0.0, show_default=True, type=click.FloatRange(0, 2), help='Sampling temperature of the generated text.')
def responses(input: str, output: str, model_name: str, project: str, as_json: bool, column: str, context: str, temperature: float) -> None:
    """An answer to each row's instruction."""
    from labelmill.core.strategy import progress_handler
    from labelmill.strategies.synth.texts import synth_responses

    _show(synth_responses(input, column=column, context=context, model=model_name, project=project, output=output, temperature=temperature,
                          on_event=progress_handler(quiet=as_json)), as_json)


@group.command(name="rationales")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("input", type=click.Path(dir_okay=False, exists=True))
@click.option("--out", "output", required=True, type=click.Path(dir_okay=False), help='Output file (.csv, .jsonl, .parquet, .xlsx).')
@click.option("--model", "model_name", help="The writer model (default: the config's).")
@click.option("--label-column", help="The given label's column (default: the config's gold_column).")
@click.option("--project", default="labelmill.db", show_default=True, help='SQLite project file (cache, runs, labels).')
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def rationales(config: str, input: str, output: str, model_name: str | None, label_column: str | None, project: str, as_json: bool) -> None:
    """Why each row's given label is right, for a classification CONFIG's rows."""
    from labelmill.core.strategy import progress_handler
    from labelmill.strategies.synth.texts import synth_rationales

    _show(synth_rationales(config, input, label_column=label_column, model=model_name, project=project, output=output,
                           on_event=progress_handler(quiet=as_json)), as_json)


@group.command(name="critiques")
@click.argument("input", type=click.Path(dir_okay=False, exists=True))
@texts_options
@click.option("--question", default="instruction", show_default=True, help='The question (prompt) column.')
@click.option("--answer", default="response", show_default=True, help='The answer column.')
@click.option("--context", default="context", show_default=True, help='A context column, shown when the rows have it.')
def critiques(input: str, output: str, model_name: str, project: str, as_json: bool, question: str, answer: str, context: str) -> None:
    """A short critique of each row's response: what is wrong, missing or unsupported (or "No issues.")."""
    from labelmill.core.strategy import progress_handler
    from labelmill.strategies.synth.texts import synth_critiques

    _show(synth_critiques(input, question=question, answer=answer, context=context, model=model_name, project=project, output=output,
                          on_event=progress_handler(quiet=as_json)), as_json)


@group.command(name="preferences")
@click.argument("input", type=click.Path(dir_okay=False, exists=True))
@texts_options
@click.option("--column", default="instruction", show_default=True, help='The instruction (prompt) column.')
@click.option("--context", default="context", show_default=True, help='A context column, shown when the rows have it.')
@click.option("--model-b", help="The second response's model (default: the first's, sampled at --temperature-b).")
@click.option("--temperature-a", default=0.0, show_default=True, type=click.FloatRange(0, 2), help='Sampling temperature of response A.')
@click.option("--temperature-b", default=0.9, show_default=True, type=click.FloatRange(0, 2), help='Sampling temperature of response B.')
@click.option("--judge-model", default="qwen2.5-coder-1.5b", show_default=True, help='The model that judges the two responses.')
@click.option("--judge-mode", type=click.Choice(["pointwise", "pairwise"]), default="pointwise", show_default=True, help='pointwise: each response scored on its own; pairwise: the judge picks the better of the two (both orders).')
@click.option("--dpo", type=click.Path(dir_okay=False), help="Also write DPO pairs (prompt / chosen / rejected) as JSONL.")
def preferences(input: str, output: str, model_name: str, project: str, as_json: bool, column: str, context: str, model_b: str | None,
                temperature_a: float, temperature_b: float, judge_model: str, judge_mode: str, dpo: str | None) -> None:
    """Two responses per prompt (two models or temperatures), judged; chosen / rejected with the models and ratings."""
    from labelmill.core.strategy import progress_handler
    from labelmill.strategies.synth.texts import synth_preferences

    _show(synth_preferences(input, column=column, context=context, model_a=model_name, model_b=model_b, temperature_a=temperature_a,
                            temperature_b=temperature_b, judge_model=judge_model, judge_mode=judge_mode, project=project, output=output,
                            dpo=dpo, on_event=progress_handler(quiet=as_json)), as_json)


@group.command(name="export")
@click.argument("input", type=click.Path(dir_okay=False, exists=True))
@click.option("--format", "fmt", type=click.Choice(["chat", "hf"]), required=True,
              help="chat: SFT JSONL ({messages: [system?, user, assistant]}); hf: a Hugging Face dataset folder with a dataset card.")


@click.option("--out", "output", required=True, type=click.Path(), help="The .jsonl file (chat) or the folder (hf).")
@click.option("--prompt-column", "prompt", default="instruction", show_default=True, help="chat: the user turn's column.")
@click.option("--response-column", "response", default="response", show_default=True, help="chat: the assistant turn's column.")
@click.option("--system", help="chat: a system message for every row.")
@click.option("--kept-only/--all-rows", default=True, show_default=True, help="Leave out rows a filter removed (a `kept` column false).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True), help="hf: the config that made the rows, saved beside them.")
@click.option("--description", default="", help="hf: the dataset card's description.")
def export(input: str, fmt: str, output: str, prompt: str, response: str, system: str | None, kept_only: bool, config_path: str | None,
           description: str) -> None:
    """Export synthesized rows (any `labelmill synth` output) for training: chat JSONL or a Hugging Face dataset."""
    from pathlib import Path

    from labelmill.io import read_rows
    from labelmill.strategies.synth.exports import chat_rows, write_hf_dataset, write_jsonl

    frame = read_rows(input)
    if kept_only and "kept" in frame.columns:
        frame = frame[frame["kept"].astype(str).str.lower().isin(["true", "1"])].reset_index(drop=True)
    if fmt == "chat":
        missing = [c for c in (prompt, response) if c not in frame.columns]
        if missing:
            from labelmill.errors import InputDataError

            raise InputDataError(f"synth export: no column {missing[0]!r} in the rows", fix=f"name them with --prompt/--response; the rows have: {', '.join(map(str, frame.columns))}")
        rows = chat_rows(frame, prompt=prompt, response=response, system=system)
        click.echo(f"wrote {write_jsonl(rows, output)}: {len(rows)} conversations")
        return
    config_text = Path(config_path).read_text(encoding="utf-8") if config_path else f"# made from {input}\n"
    folder = write_hf_dataset(frame, output, config_text=config_text, description=description or f"Synthesized with labelmill from {Path(input).name}.",
                              figures={"rows": len(frame)})
    click.echo(f"wrote {folder}: {len(frame)} rows, README.md (dataset card), labelmill.yaml")


@click.group(name="judge")
def judge() -> None:
    """An LLM as judge: `labelmill judge pairs ROWS` (both orders), `labelmill judge scores ROWS` (1-5 rubric)."""


def common(fn: Any) -> Any:
    for option in reversed([
        click.argument("input", type=click.Path(dir_okay=False, exists=True)),
        click.option("--out", "output", type=click.Path(dir_okay=False), help="The rows with the judge's columns."),
        click.option("--model", "model_name", default="qwen2.5-coder-0.5b", show_default=True, help="The judge model (llama_cpp), e.g. qwen2.5-coder-1.5b."),
        click.option("--question", default="question", show_default=True, help="The question (prompt) column."),
        click.option("--context", default="context", show_default=True, help="A context column, shown when the rows have it."),
        click.option("--project", default="labelmill.db", show_default=True, help='SQLite project file (cache, runs, labels).'),
        click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON."),
    ]):
        fn = option(fn)
    return fn


@judge.command(name="pairs")
@common
@click.option("--first", default="first", show_default=True, help="The first answer's column.")
@click.option("--second", default="second", show_default=True, help="The second answer's column.")
@click.option("--human", default="human", show_default=True, help="People's verdicts (first / second / tie), when the rows have them.")
@click.option("--dpo", type=click.Path(dir_okay=False), help="Also write DPO pairs (prompt / chosen / rejected, ties left out) as JSONL.")
@click.option("--first-model", default="", help="DPO: the model that wrote the first answers (or a column naming it per row).")
@click.option("--second-model", default="", help="DPO: the model that wrote the second answers (or a column naming it per row).")
@click.option("--mode", type=click.Choice(["pairwise", "pointwise"]), default="pairwise", show_default=True,
              help="pairwise: an A/B question in both orders; pointwise: P(correct) of each answer alone, the higher wins (no order to flip).")


def pairs(input: str, output: str | None, model_name: str, question: str, context: str, project: str, as_json: bool, first: str, second: str,
          human: str, dpo: str | None, first_model: str, second_model: str, mode: str) -> None:
    """Judge two answers per row, in both orders; a verdict that changes with the order is a tie."""
    from labelmill.core.strategy import progress_handler
    from labelmill.strategies.synth.exports import dpo_rows, write_jsonl
    from labelmill.strategies.synth.judge import judge_pairs

    result = judge_pairs(input, model=model_name, project=project, output=output, question=question, first=first, second=second,
                         context=context, human=human, mode=mode, on_event=progress_handler(quiet=as_json))
    if dpo:
        frame = result.frame
        models = [frame[m].astype(str).tolist() if m in frame.columns else m for m in (first_model, second_model)]
        rows = dpo_rows(frame, prompt=question, first=first, second=second, first_model=models[0], second_model=models[1])
        write_jsonl(rows, dpo)
        result.figures["dpo_rows"], result.figures["dpo_output"] = len(rows), dpo
    _show(result, as_json)


@judge.command(name="scores")
@common
@click.option("--answer", default="answer", show_default=True, help="The answer column.")
@click.option("--reference", default="reference", show_default=True, help="A reference answer column, used when the rows have it.")
@click.option("--human", default="human_score", show_default=True, help="People's 1-5 scores, when the rows have them.")
def scores(input: str, output: str | None, model_name: str, question: str, context: str, project: str, as_json: bool, answer: str, reference: str, human: str) -> None:
    """Score each answer from 1 to 5 (Prometheus-style rubric, against a reference where given)."""
    from labelmill.core.strategy import progress_handler
    from labelmill.strategies.synth.judge import judge_scores

    result = judge_scores(input, model=model_name, project=project, output=output, question=question, answer=answer, reference=reference,
                          context=context, human=human, on_event=progress_handler(quiet=as_json))
    _show(result, as_json)


def _show(result: Any, as_json: bool) -> None:
    import click

    if as_json:
        click.echo(json.dumps({"output": str(result.output_path) if result.output_path else None, **result.figures}))
        return
    click.echo(", ".join(f"{k} {v}" for k, v in result.figures.items()))
    if result.output_path:
        click.echo(f"wrote {result.output_path}")


synth_command = group
judge_command = judge
