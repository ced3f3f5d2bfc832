"""`labelmill tune CONFIG DEV`: search prompts and strategies on dev rows."""

from __future__ import annotations

import json

import click

from labelmill.core.entry import DEFAULT_PROJECT
from labelmill.core.strategy import max_time_option, progress_handler


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("dev", type=click.Path(dir_okay=False))
@click.option("--pool", type=click.Path(dir_okay=False, exists=True), help="Labeled rows to draw few-shot examples from (not the dev rows).")
@max_time_option(default=600, help="Time for the whole search: seconds, or 10m, 1h.")
@click.option("--limit", type=click.IntRange(min=20), default=200, show_default=True, help="Dev rows to score each strategy on.")
@click.option("--shots", default="0,4,8", show_default=True, help="Few-shot counts to try.")
@click.option("--selectors", default="random,balanced,similar", show_default=True, help="Example selections to try.")
@click.option("--calibrations", "calibrations", default="none,auto", show_default=True, help="Calibrations to try (none, auto, temperature, bias, isotonic).")
@click.option("--models", default=None, help="Models to try, comma-separated (default: the config's), e.g. qwen2.5-coder-0.5b,qwen2.5-coder-1.5b.")
@click.option("--max-cost", type=click.FloatRange(min=0), default=None, help="Cost budget in USD for paid models: the search stops when it is spent.")
@click.option("--reasoning", "reasonings", default="none", show_default=True,
              help="Reasoning to try: none, cot (explain, then answer), scK (K answers voted, e.g. sc5), cot_scK; slower ones last.")
@click.option("--guideline", "guideline_rev", default=None,
              help="Start from a guideline version in the project store (HEAD, HEAD~1, an id: what labelmill refine wrote) instead of the config's guidelines.")
@click.option("--max-calls", type=click.IntRange(min=1), default=None, help="Stop trying strategies once this many labeling calls went to the model.")
@click.option("-o", "--out", default="tuned.yaml", show_default=True, help="Where to write the best config.")
@click.option("--project", default=DEFAULT_PROJECT, show_default=True, help='SQLite project file (cache, runs, labels).')
@click.option("--json", "as_json", is_flag=True, help='Print a JSON summary.')
def tune(
    config: str, dev: str, pool: str | None, max_time_s: float, limit: int, shots: str, selectors: str, calibrations: str, models: str | None,
    max_cost: float | None, reasonings: str, guideline_rev: str | None, max_calls: int | None, out: str, project: str, as_json: bool,
) -> None:
    """Search strategies (reasoning, shots, example selection, calibration) on DEV rows within a time budget; save the best config."""
    from labelmill.strategies.tune.run import tune as run_tune

    guideline = None
    if guideline_rev:
        from labelmill.config import LISTS_LABELS, load_config
        from labelmill.guideline import Guideline
        from labelmill.store import Store
        from labelmill.strategies.refine.versions import GuidelineVersions

        cfg = load_config(config)
        with Store(project) as store:
            guideline = Guideline.parse(GuidelineVersions(store, cfg.name or cfg.task).get(guideline_rev).content).prompt_text(cfg.task in LISTS_LABELS)

    report = run_tune(
        config, dev, pool=pool, shots=tuple(int(x) for x in shots.split(",")), selectors=tuple(selectors.split(",")),
        calibrations=tuple(calibrations.split(",")), reasonings=tuple(reasonings.split(",")),
        models=tuple(models.split(",")) if models else None, max_cost=max_cost, budget_s=max_time_s, limit=limit, project=project, out=out,
        guideline=guideline, max_calls=max_calls, on_event=progress_handler(quiet=as_json),
    )
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"strategies on {report['dev_rows'] - report['dev_rows'] // 2} dev rows (accuracy) in {report['elapsed_s']:.0f} s of {max_time_s:.0f}")
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
