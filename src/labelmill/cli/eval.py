"""`labelmill eval CONFIG OUTPUT`: metrics with the completion rate, threshold table, ECE, report."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from labelmill import api
from labelmill.cli.app import cli, finite


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
        click.echo(json.dumps(finite(metrics)))
    else:
        _print_metrics(metrics)
