"""`labelmill freeal CONFIG INPUT --out OUT`: FreeAL, no gold used."""

from __future__ import annotations

import json

import click

from labelmill.config import load_with_notices
from labelmill.core.entry import DEFAULT_PROJECT
from labelmill.core.strategy import progress_handler
from labelmill.types import finite


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("input", type=click.Path(dir_okay=False))
@click.option("--out", "output", required=True, type=click.Path(dir_okay=False), help="Labeled output, with the student's labels and the label-issue rank.")
@click.option("--rounds", type=click.IntRange(min=0), default=2, show_default=True, help="Relabeling rounds after the LLM's first pass.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N rows.")
@click.option("--project", default=DEFAULT_PROJECT, show_default=True, help='SQLite project file (cache, runs, labels).')
@click.option("--debias/--no-debias", default=None,
              help="Batch-calibrate the LLM's first-pass label distributions (it assumes every label about equally common). "
                   "Default: on with three labels or more, off with two.")
@click.option("--generate-demos", type=click.IntRange(min=0), default=0, show_default=True,
              help="When the config has no examples: round 0 uses N demos per label that the LLM writes itself.")
@click.option("--json", "as_json", is_flag=True, help='Print a JSON summary.')
def freeal(config: str, input: str, output: str, rounds: int, limit: int | None, project: str, debias: bool | None, generate_demos: int, as_json: bool) -> None:
    """FreeAL: the LLM labels INPUT, a student finds the clean labels, their medoids become demos, the rest is relabeled. No gold used."""
    from labelmill.strategies.freeal.run import freeal as run_freeal

    view = progress_handler(quiet=as_json)
    result = run_freeal(load_with_notices(config, view), input, rounds=rounds, project=project, output=output, limit=limit, debias=debias,
                        generate_demos=generate_demos, on_event=view)
    if as_json:
        click.echo(json.dumps({"output": str(result.output_path), **result.report()}, default=finite))
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
