"""`labelmill init TASK`: a commented starting config."""

from __future__ import annotations

from pathlib import Path

import click

from labelmill import api
from labelmill.cli.app import cli
from labelmill.errors import LabelmillError
from labelmill.registry import tasks as task_registry


@cli.command()
@click.argument("task", default="classification", type=click.Choice(task_registry.names()))
@click.option("-o", "--out", "out", default="config.yaml", show_default=True, help="Where to write the config.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(task: str, out: str, force: bool) -> None:
    """Write a commented config for TASK (a task type, as the usage line lists them) to start from."""
    text = api.init_config(task)
    path = Path(out)
    if out == "-":
        click.echo(text)
        return
    if path.exists() and not force:
        raise LabelmillError(f"{path} already exists", fix="pass --force to overwrite it, or -o another path")
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}; edit it, then: labelmill plan {path} INPUT")
