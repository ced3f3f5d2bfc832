"""`labelmill eval CONFIG OUTPUT`: metrics with the completion rate, threshold table, ECE, report."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from labelmill import api
from labelmill.cli.app import cli, command_config, finite
from labelmill.events import ignore


def _print_summary(metrics: dict[str, Any], config: str, output: str) -> None:
    """No gold: label counts, the confidence spread, the least confident rows, warnings, the next step."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"no gold labels ({metrics['why_no_gold']}): what the labels alone say")
    console.print(f"rows {metrics['n_rows']}   labeled {metrics['completion_rate']:.1%}")
    if metrics.get("label_counts"):
        total = max(1, sum(metrics["label_counts"].values()))
        console.print("labels: " + ", ".join(f"{k} {v} ({v / total:.0%})" for k, v in metrics["label_counts"].items()))
    spread = metrics.get("confidence")
    if spread:
        console.print(f"confidence: median {spread['median']:.2f}, 10th percentile {spread['p10']:.2f}; "
                      f"{spread['share_below_0.7']:.0%} of rows below 0.7, {spread['share_below_0.9']:.0%} below 0.9")
    table = Table(title="least confident rows (review these first)")
    for column in ("row", "label", "confidence", "text"):
        table.add_column(column, overflow="fold")
    for row in metrics["least_confident"]:
        table.add_row(str(row["row"]), str(row["label"]), "-" if row["confidence"] is None else f"{row['confidence']:.2f}", row["text"])
    console.print(table)
    for warning in metrics["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    console.print(f"next: labelmill review {config} {output}   (or add gold labels: gold_column, then labelmill calibrate)", highlight=False)


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
    if metrics.get("autolabel"):
        theirs = {k: v for k, v in metrics["autolabel"].items() if k != "task_type"}
        shown = [f"{k.replace('_', ' ')} {v:.3f}" if isinstance(v, float) else f"{k.replace('_', ' ')} {v}" for k, v in theirs.items()]
        console.print(f"Autolabel's metrics ({metrics['autolabel']['task_type']}, as Autolabel 0.0.16 computes them): " + "   ".join(shown),
                      highlight=False, soft_wrap=True)
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
            f"{metrics['auto_share_at_target']:.1%} of rows automatically at accuracy {metrics['auto_accuracy_at_target']:.3f} on these rows"
        )
        if metrics.get("threshold_with_bound") is None:
            console.print(f"  not certified: these rows cannot show accuracy {metrics['target']:.2f} with a 95% bound "
                          "(labelmill calibrate on more labeled rows can)")
        else:
            console.print(f"  with a 95% bound (Clopper-Pearson, as calibrate): confidence >= {metrics['threshold_with_bound']:.4f}, "
                          f"{metrics['share_with_bound']:.1%} of rows, accuracy at least {metrics['lower_bound_at_threshold']:.3f}")
    for warning in metrics.get("warnings") or []:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
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
@click.option("--encoding", help="The output file's text encoding (overrides dataset.encoding).")
def eval_(config: str, output: str, target: float, report: str | None, as_json: bool, encoding: str | None) -> None:
    """Metrics of OUTPUT against the gold column, the threshold table, and report.html; with no gold
    column, the label counts, the confidence spread, the least confident rows and warnings."""
    cfg = command_config(config, ignore, encoding=encoding)
    metrics = api.evaluate(cfg, output, target=target, report=report or api.default_report_path(output))
    if as_json:
        click.echo(json.dumps(finite(metrics)))
    elif metrics.get("gold") is False:
        _print_summary(metrics, config, output)
    else:
        _print_metrics(metrics)
