"""`labelmill doctor`: CPU features, llama.cpp build flags, a decode check, models and extras."""

from __future__ import annotations

import json
import sys

import click

from labelmill.cli.app import cli


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
