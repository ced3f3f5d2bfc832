"""`labelmill models`: the catalog's state, assembling a model from its installed packages into the cache,
and clear errors. Uses the real SmolLM2 weight package (installed by scripts/install.sh --test)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from labelmill.cli import cli
from labelmill.models import CATALOG, file_sha256


def test_list_path_and_pull_assemble_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELMILL_CACHE_DIR", str(tmp_path))
    runner = CliRunner()
    rows = {r["name"]: r for r in json.loads(runner.invoke(cli, ["models", "list", "--json"]).output)}
    assert set(rows) == set(CATALOG)
    assert rows["smollm2-135m"]["state"] == "installed"  # packages there, not assembled in this cache yet
    out = runner.invoke(cli, ["models", "path", "smollm2"])
    assert out.exit_code == 0, out.output
    path = tmp_path / "models" / CATALOG["smollm2-135m"].filename
    assert out.output.strip() == str(path) and file_sha256(path) == CATALOG["smollm2-135m"].sha256
    rows = {r["name"]: r for r in json.loads(runner.invoke(cli, ["models", "list", "--json"]).output)}
    assert rows["smollm2-135m"]["state"] == "verified" and rows["smollm2-135m"]["size_bytes"] == path.stat().st_size
    pulled = runner.invoke(cli, ["models", "pull", "smollm2-135m"])
    assert pulled.exit_code == 0 and "verified" in pulled.output  # already there: nothing installed again


def test_unknown_model_is_a_clear_error():
    from labelmill.cli.app import main

    import pytest

    with pytest.raises(SystemExit) as exit_info:
        main(["models", "pull", "gpt-17"])
    assert exit_info.value.code == 4
