"""`labelmill export CONFIG LABELED --format FORMAT --out FILE`: labeled output in other tools' formats."""

from __future__ import annotations

import click

from labelmill.cli.app import cli
from labelmill.exports import FORMATS, export


@cli.command(name="export")
@click.argument("config")
@click.argument("labeled")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="label-studio: tasks JSON with predictions; triples: relations as JSON lines.")
@click.option("-o", "--out", "out", required=True, help="Where to write.")
def export_command(config: str, labeled: str, fmt: str, out: str) -> None:
    """Write LABELED (what `labelmill run` wrote with CONFIG) in another tool's format."""
    path = export(config, labeled, fmt, out)
    click.echo(f"wrote {path}")
