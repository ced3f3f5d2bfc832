"""The command line: a thin layer over labelmill.api. Errors are one line; --debug shows the traceback."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from labelmill import api
from labelmill.errors import LabelmillError
from labelmill.events import BatchDone, Event, Notice, RunFinished, RunStarted


def _console():
    from rich.console import Console

    return Console(stderr=True)


class ProgressView:
    """Renders run events as a rich progress bar (rows/s, ETA) on stderr."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.console = _console()
        self.progress = None
        self.task_id = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice):
            self.console.print(f"[yellow]note:[/] {event.message}")
        elif isinstance(event, RunStarted) and not self.quiet:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            what = "resuming" if event.resumed else "labeling"
            self.console.print(f"{what} run {event.run_id}: {event.pending} of {event.total} rows to label ({event.method}, {event.model or 'no model needed'})")
            self.progress = Progress(
                TextColumn("[bold]labeling"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]} rows/s"),
                TextColumn("failed {task.fields[failed]}"), TextColumn("{task.fields[cost]}"), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self.progress.start()
            self.task_id = self.progress.add_task("label", total=event.total, completed=event.total - event.pending, rate="-", failed=0, cost="")
            self._start_done = event.total - event.pending
            self._failed = 0
        elif isinstance(event, BatchDone) and self.progress is not None:
            self._failed += event.failed
            rate = (event.done - self._start_done) / event.elapsed_s if event.elapsed_s > 0 else 0.0
            cost = f"${event.cost_usd:.4f}" if event.cost_usd else ""
            self.progress.update(self.task_id, completed=event.done, rate=f"{rate:.2f}", failed=self._failed, cost=cost)
        elif isinstance(event, RunFinished):
            if self.progress is not None:
                self.progress.stop()
            if not self.quiet:
                self.console.print(
                    f"done: {event.labeled}/{event.total} rows labeled, {event.failed} without a label, "
                    f"{event.model_rows} sent to the model, {event.cached_rows} from cache, {event.wall_s:.1f} s"
                    + (f", ${event.cost_usd:.4f}" if event.cost_usd else "")
                )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
def cli(debug: bool) -> None:
    """labelmill: label text datasets with LLMs, and know which labels to trust."""


@cli.command()
@click.argument("task", default="classification")
@click.option("-o", "--out", "out", default="config.yaml", show_default=True, help="Where to write the config.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(task: str, out: str, force: bool) -> None:
    """Write a commented config for TASK (classification, multilabel) to start from."""
    text = api.init_config(task)
    path = Path(out)
    if out == "-":
        click.echo(text)
        return
    if path.exists() and not force:
        raise LabelmillError(f"{path} already exists", fix="pass --force to overwrite it, or -o another path")
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}; edit it, then: labelmill plan {path} INPUT")


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("input", type=click.Path(dir_okay=False))
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plan(config: str, input: str, limit: int | None, as_json: bool) -> None:
    """Preview the prompt and estimate tokens, time and cost, labeling nothing."""
    result = api.plan(config, input, limit=limit, on_event=ProgressView(quiet=as_json))
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    from rich.console import Console
    from rich.panel import Panel

    console = Console()
    console.print(Panel(result["prompt_preview"], title="prompt for row 1 (as the model sees it)", expand=False))
    console.print(
        f"rows: {result['rows']}   method: {result['method']}   model: {result['model']} ({result['backend']})   demos: {result['demos']}\n"
        f"tokens: shared prefix {result['prefix_tokens']} (evaluated once), row text {result['mean_row_tokens']:.1f} on average, "
        f"template suffix {result['suffix_tokens']} per row\n"
        f"tokens evaluated with prefix reuse: {result['tokens_evaluated_with_prefix_reuse']:,} (vs {result['prompt_tokens_total']:,} sent without)\n"
        f"requests per row: {', '.join(f'{k} {v}' for k, v in result['requests_per_row'].items() if v)}\n"
        f"estimated time: {result['estimated_seconds']:.0f} s   estimated cost: "
        + _cost_text(result["estimated_cost_usd"])
    )


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("seed", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out", default="calibration.json", show_default=True, help="Where to write the calibration.")
@click.option("--method", type=click.Choice(["auto", "temperature", "bias", "isotonic", "platt", "bias_platt", "fused"]), default="auto", show_default=True,
              help="fused: a logistic regression over the confidence and the reasoning signals (p_true, verbalized, agreement).")
@click.option("--target", type=click.FloatRange(0.5, 1.0, max_open=True), default=0.95, show_default=True, help="Target accuracy of auto-labeled rows.")
@click.option("--delta", type=click.FloatRange(0.001, 0.5), default=0.05, show_default=True, help="The target holds with probability 1 - delta.")
@click.option("--project", default=api.DEFAULT_PROJECT, show_default=True, help="SQLite project file (the seed rows' labels are cached there).")
@click.option("--json", "as_json", is_flag=True, help="Print the seed report as JSON.")
@click.option("--threshold-rows", type=click.Path(dir_okay=False, exists=True), help="More labeled rows (not the seed rows) to choose the threshold on: a bound needs a few hundred.")
def calibrate(config: str, seed: str, out: str, method: str, target: float, delta: float, project: str, as_json: bool, threshold_rows: str | None) -> None:
    """Label SEED (rows with gold labels), fit a calibration and a threshold with a bound, and save them."""
    view = ProgressView(quiet=as_json)
    calibrator = api.calibrate(config, seed, method=method, target=target, delta=delta, out=out, project=project, on_event=view, threshold_rows=threshold_rows)
    report = calibrator.seed_report
    if as_json:
        click.echo(json.dumps({"out": out, **report}, indent=1))
        return
    chosen = report["threshold"]
    click.echo(
        f"method: {report['method']} on {report['seed_rows']} seed rows; accuracy {report['accuracy_raw']:.3f} -> {report['accuracy_calibrated_cv']:.3f} (cross-validated)\n"
        f"ECE {report['ece_raw']:.3f} -> {report['ece_calibrated_cv']:.3f} (cross-validated)\n"
        + (
            f"threshold for {target:.0%} accuracy (holds with probability {1 - delta:.0%}): {chosen['threshold']:.3f}; "
            f"on the {report['threshold_chosen_on']} it auto-labels {chosen['seed_share']:.0%} at accuracy {chosen['seed_accuracy']:.3f} (lower bound {chosen['lower_bound']:.3f})"
            if chosen else f"no threshold reaches {target:.0%} accuracy with probability {1 - delta:.0%} on the {report['threshold_chosen_on']}: every row goes to review "
            "(--threshold-rows with a few hundred labeled rows, a lower --target or a larger --delta can find one)"
        )
        + (
            f"\nwithout the bound: threshold {report['threshold_without_bound']['threshold']:.3f} reaches {target:.0%} on the {report['threshold_chosen_on']} "
            f"({report['threshold_without_bound']['seed_share']:.0%} of them)" if report.get("threshold_without_bound") else ""
        )
        + f"\nwrote {out}; next: labelmill run {config} INPUT --out OUT --calibration {out}"
    )


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("dev", type=click.Path(dir_okay=False))
@click.option("--pool", type=click.Path(dir_okay=False, exists=True), help="Labeled rows to draw few-shot examples from (not the dev rows).")
@click.option("--budget", "budget_s", type=click.FloatRange(min=1), default=600, show_default=True, help="Seconds for the whole search.")
@click.option("--limit", type=click.IntRange(min=20), default=200, show_default=True, help="Dev rows to score each strategy on.")
@click.option("--shots", default="0,4,8", show_default=True, help="Few-shot counts to try.")
@click.option("--selectors", default="random,balanced,similar", show_default=True, help="Example selections to try.")
@click.option("--calibration", "calibrations", default="none,auto", show_default=True, help="Calibrations to try (none, auto, temperature, bias, isotonic).")
@click.option("--models", default=None, help="Models to try, comma-separated (default: the config's), e.g. qwen2.5-coder-0.5b,qwen2.5-coder-1.5b.")
@click.option("--max-cost", type=click.FloatRange(min=0), default=None, help="Cost budget in USD for paid models: the search stops when it is spent.")
@click.option("--reasoning", "reasonings", default="none", show_default=True,
              help="Reasoning to try: none, cot (explain, then answer), scK (K answers voted, e.g. sc5), cot_scK; slower ones last.")
@click.option("-o", "--out", default="tuned.yaml", show_default=True, help="Where to write the best config.")
@click.option("--project", default=api.DEFAULT_PROJECT, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def tune(
    config: str, dev: str, pool: str | None, budget_s: float, limit: int, shots: str, selectors: str, calibrations: str, models: str | None,
    max_cost: float | None, reasonings: str, out: str, project: str, as_json: bool,
) -> None:
    """Search strategies (reasoning, shots, example selection, calibration) on DEV rows within a time budget; save the best config."""
    from labelmill.strategies.tune.search import tune as run_tune

    report = run_tune(
        config, dev, pool=pool, shots=tuple(int(x) for x in shots.split(",")), selectors=tuple(selectors.split(",")),
        calibrations=tuple(calibrations.split(",")), reasonings=tuple(reasonings.split(",")),
        models=tuple(models.split(",")) if models else None, max_cost=max_cost, budget_s=budget_s, limit=limit, project=project, out=out,
        on_event=ProgressView(quiet=as_json),
    )
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"strategies on {report['dev_rows'] - report['dev_rows'] // 2} dev rows (accuracy) in {report['elapsed_s']:.0f} s of {budget_s:.0f}")
    for column in ("strategy", "accuracy", "completion", "s/row", "$/row", "status", "Pareto"):
        table.add_column(column)
    for t in report["trials"]:
        table.add_row(
            t["name"], f"{t['accuracy']:.3f}" if t["accuracy"] is not None else "-", f"{t['completion_rate']:.2f}" if t["completion_rate"] is not None else "-",
            f"{t['seconds_per_row']:.2f}" if t["seconds_per_row"] else "-", f"{t['cost_per_row']:.5f}" if t["cost_per_row"] else "-", t["status"], "*" if t["name"] in report["pareto"] else "",
        )
    Console().print(table)
    click.echo(f"best: {report['best']['name']} (accuracy {report['best']['accuracy']:.3f}); wrote {report.get('best_config')}"
               + (f" and {report['best_calibration']}" if report.get("best_calibration") else ""))


def _cost_text(cost: float | None) -> str:
    if cost == 0:
        return "free (local model)"
    if cost is None:
        return "unknown: the model is not in the price table (set model.price)"
    return f"${cost:.4f} at most (prompts plus max_tokens per answer)"


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("input", type=click.Path(dir_okay=False))
@click.option("--out", "output", required=True, type=click.Path(dir_okay=False), help="Labeled output (.csv, .jsonl, .parquet, .xlsx).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
@click.option("--project", default=api.DEFAULT_PROJECT, show_default=True, help="SQLite project file (cache, annotations, runs).")
@click.option("--encoding", help="Input text encoding (overrides dataset.encoding).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--max-cost", type=click.FloatRange(min=0), help="Stop cleanly once this many USD are spent (paid models); labels so far are saved.")
@click.option(
    "--ray", "ray_address", is_flag=False, flag_value="local", default=None,
    help="Shard rows over Ray workers, each with its own backend: --ray (a local Ray) or --ray ADDRESS (a cluster).",
)
@click.option("--ray-workers", type=click.IntRange(min=1), default=2, show_default=True, help="With --ray: how many workers.")
@click.option("--calibration", type=click.Path(dir_okay=False, exists=True), help="A file from `labelmill calibrate`: write calibrated labels and confidences, and llm_needs_review.")
@click.option("--cascade", is_flag=True, help="The LLM labels a sample, a student trained on it the rest; rows the student is unsure of go to the LLM.")
@click.option("--cascade-sample", type=click.IntRange(min=20), default=200, show_default=True, help="With --cascade: rows the LLM labels first.")
@click.option("--cascade-llm-share", type=click.FloatRange(min=0, max=1, min_open=True), default=0.2, show_default=True, help="With --cascade: the most rows the LLM labels, as a share of all rows.")
@click.option("--cascade-target", type=click.FloatRange(min=0, max=1), default=0.9, show_default=True, help="With --cascade: rows whose calibrated student confidence is below this go to the LLM.")
@click.option("--strong-model", help="With --cascade: a stronger model (e.g. qwen2.5-coder-1.5b) for rows the LLM is unsure of.")
def run(
    config: str, input: str, output: str, limit: int | None, project: str, encoding: str | None, as_json: bool, quiet: bool,
    max_cost: float | None, ray_address: str | None, ray_workers: int, calibration: str | None,
    cascade: bool, cascade_sample: int, cascade_llm_share: float, cascade_target: float, strong_model: str | None,
) -> None:
    """Label INPUT and write OUTPUT. Rerunning the same command resumes where it stopped."""
    view = ProgressView(quiet=quiet or as_json)
    cfg = api._config(config, view)
    if encoding:
        cfg.dataset.encoding = encoding
    if cascade:
        from labelmill.strategies.cascade.tiers import cascade as run_cascade

        done = run_cascade(
            cfg, input, sample=cascade_sample, llm_share=cascade_llm_share, target=cascade_target, strong=strong_model,
            project=project, output=output, limit=limit, on_event=view,
        )
        stats = done.stats
        if as_json:
            click.echo(json.dumps({"output": str(done.output_path), **asdict(stats)}))
        else:
            click.echo(
                f"cascade: {stats.rows} rows: {stats.llm_rows} by the LLM ({stats.sample_rows} sample), {stats.student_rows} by the student"
                + (f", {stats.strong_rows} relabeled by {strong_model}" if strong_model else "")
                + f"; {stats.llm_calls_saved} LLM calls saved; {stats.wall_s:.1f} s"
                + (f"; accuracy {stats.accuracy:.3f} (gold column)" if stats.accuracy is not None else "")
            )
            click.echo(f"wrote {done.output_path} (columns {', '.join(done.columns.values())}); next: labelmill eval {config} {output}")
        return
    if ray_address is not None:
        from labelmill.execute.ray import label_on_ray

        result = label_on_ray(
            cfg, input, output=output, limit=limit, project=project, address=None if ray_address == "local" else ray_address,
            workers=ray_workers, on_event=view, max_cost=max_cost,
        )
    else:
        result = api.label(cfg, input, output=output, limit=limit, project=project, on_event=view, max_cost=max_cost, calibration=calibration)
    if as_json:
        click.echo(json.dumps({
            "run_id": result.run_id, "output": str(result.output_path), "rows": result.total, "labeled": result.labeled,
            "failed": result.failed, "model_rows": result.model_rows, "cached_rows": result.cached_rows, "wall_s": result.wall_s,
            "cost_usd": result.cost_usd,
        }))
    else:
        click.echo(f"wrote {result.output_path} (columns {', '.join(result.columns.values())}); next: labelmill eval {config} {output}")


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("input", type=click.Path(dir_okay=False))
@click.option("--out", "output", required=True, type=click.Path(dir_okay=False), help="Labeled output, with the student's labels and the label-issue rank.")
@click.option("--rounds", type=click.IntRange(min=0), default=2, show_default=True, help="Relabeling rounds after the LLM's first pass.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
@click.option("--project", default=api.DEFAULT_PROJECT, show_default=True)
@click.option("--debias/--no-debias", default=None,
              help="Batch-calibrate the LLM's first-pass label distributions (it assumes every label about equally common). "
                   "Default: on with three labels or more, off with two.")
@click.option("--generate-demos", type=click.IntRange(min=0), default=0, show_default=True,
              help="When the config has no examples: round 0 uses N demos per label that the LLM writes itself.")
@click.option("--json", "as_json", is_flag=True)
def freeal(config: str, input: str, output: str, rounds: int, limit: int | None, project: str, debias: bool | None, generate_demos: int, as_json: bool) -> None:
    """FreeAL: the LLM labels INPUT, a student finds the clean labels, their medoids become demos, the rest is relabeled. No gold used."""
    from labelmill.strategies.freeal.loop import freeal as run_freeal

    view = ProgressView(quiet=as_json)
    result = run_freeal(api._config(config, view), input, rounds=rounds, project=project, output=output, limit=limit, debias=debias,
                        generate_demos=generate_demos, on_event=view)
    if as_json:
        click.echo(json.dumps({"output": str(result.output_path), **result.report()}, default=_finite))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="FreeAL rounds")
    for column in ("round", "LLM rows", "changed", "clean", "demo pool", "LLM/student agreement", "accuracy (gold)", "s"):
        table.add_column(column)
    for r in result.rounds:
        table.add_row(
            str(r.round), str(r.relabeled), str(r.changed), f"{r.clean_share:.0%}" if r.round else "-", str(r.pool_size) if r.round else "-",
            f"{r.agreement:.3f}", f"{r.accuracy:.3f}" if r.accuracy is not None else "-", f"{r.seconds:.0f}",
        )
    Console().print(table)
    click.echo(f"wrote {result.output_path} (label issues ranked in label_issue_rank: {len(result.label_issues)} suspect rows); next: labelmill eval {config} {output}")


def _print_metrics(metrics: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    from labelmill.evaluation.metrics import HEADLINE_METRICS

    parts = [f"rows {metrics['n_rows']}"]
    for key in HEADLINE_METRICS:
        value = metrics.get(key)
        if isinstance(value, dict):  # extraction: accuracy per attribute
            parts.append(f"{key.replace('_', ' ')} " + ", ".join(f"{k} {v:.3f}" for k, v in value.items()))
        elif isinstance(value, float) and not math.isnan(value):
            parts.append(f"{key.replace('_', ' ')} {value:.3f}")
    console.print("   ".join(parts))
    table = Table(title=f"threshold table (target accuracy {metrics['target']:.2f})")
    for column in ("confidence >=", "share of rows", "rows", "accuracy"):
        table.add_column(column, justify="right")
    for row in metrics["threshold_table"]:
        acc = "-" if math.isnan(row["accuracy"]) else f"{row['accuracy']:.3f}"
        table.add_row(f"{row['threshold']:.2f}", f"{row['share']:.3f}", str(row["rows"]), acc)
    console.print(table)
    if metrics["threshold_for_target"] is None:
        console.print(f"no confidence threshold reaches accuracy {metrics['target']:.2f}")
    else:
        console.print(
            f"threshold for {metrics['target']:.2f}: confidence >= {metrics['threshold_for_target']:.4f} labels "
            f"{metrics['auto_share_at_target']:.1%} of rows automatically at accuracy {metrics['auto_accuracy_at_target']:.3f}"
        )
    if metrics.get("failures"):
        console.print("rows without a label: " + ", ".join(f"{k} {v}" for k, v in metrics["failures"].items()))
    if metrics.get("report"):
        console.print(f"report: {metrics['report']}")


@cli.command(name="eval")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--target", type=click.FloatRange(0, 1), default=0.95, show_default=True, help="Target accuracy for the threshold.")
@click.option("--report", "report", type=click.Path(dir_okay=False), help="HTML report path (default: OUTPUT's name + .report.html).")
@click.option("--json", "as_json", is_flag=True, help="Print metrics as JSON.")
def eval_(config: str, output: str, target: float, report: str | None, as_json: bool) -> None:
    """Metrics of OUTPUT against the gold column, the threshold table, and report.html."""
    metrics = api.evaluate(config, output, target=target, report=report or api.default_report_path(output))
    if as_json:
        click.echo(json.dumps(_finite(metrics)))
    else:
        _print_metrics(metrics)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the diagnosis as JSON.")
@click.option("--no-check", is_flag=True, help="Skip the decode check (loading the default model).")
def doctor(as_json: bool, no_check: bool) -> None:
    """CPU features, llama.cpp's build flags, a decode check, the models and extras; exit 1 if the model cannot run."""
    from labelmill.doctor import diagnose, render

    found = diagnose(check=not no_check)
    click.echo(json.dumps(found.as_dict(), indent=2) if as_json else render(found))
    if not no_check and not found.model_runs:
        sys.exit(1)


def _finite(value: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _add_strategy_commands() -> None:
    """Commands that strategies contribute (plugins through the labelmill.strategies entry points)."""
    from labelmill.strategies.base import get_strategy, strategies

    for name in strategies.names():
        try:
            command = get_strategy(name).command()
        except (ImportError, AttributeError, LabelmillError) as exc:  # a broken plugin must not take the CLI down
            click.echo(f"note: strategy {name!r} could not be loaded ({type(exc).__name__}: {exc}); its command is missing", err=True)
            continue
        if command is not None and command.name not in cli.commands:
            cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    _add_strategy_commands()
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="labelmill", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted; rerun the same command to resume", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; everything labeled so far is saved; rerun the same command to resume", err=True)
        sys.exit(130)
    except LabelmillError as exc:
        if debug:
            raise
        click.echo(f"error: {exc.one_line()}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if debug:
            raise
        click.echo(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
