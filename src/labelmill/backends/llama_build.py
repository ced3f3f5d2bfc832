"""`python -m labelmill.backends.llama_build`: build llama-cpp-python for this CPU, check it, fall back.

The ladder comes from `cpuflags`: the best flag set this CPU lists, then strictly more portable ones. Each
rung's wheel is built once with pip's cache off and kept in our own cache under a key of its flags, so a
wheel built for other flags is never reused. A rung is kept only when `labelmill.selfcheck` loads the
default model and decodes with it in a separate process (a SIGILL kills that process, not this one).
Stdlib only; `platformdirs` is used when it is installed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from labelmill.backends.cpuflags import FlagSet, cpu_name, fallback_chain, read_cpu_features

LLAMA_VERSION = "0.3.36"
MARKER = "labelmill-llama-build.json"  # in the environment's prefix: what the installed llama.cpp was built with
SIGILL_CODES = (-4, 132)
NO_WEIGHTS = 3  # selfcheck's exit code when the weights are missing: no build can fix that


def log(message: str) -> None:
    print(f"[install] {message}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    root = os.environ.get("LABELMILL_CACHE_DIR")
    if root:
        return Path(root)
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("labelmill"))
    except ImportError:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "labelmill"


def marker_path(prefix: str | None = None) -> Path:
    return Path(prefix or sys.prefix) / MARKER


def installed_build(prefix: str | None = None) -> dict | None:
    """What `install` recorded of the llama.cpp build in this environment, or None."""
    try:
        return json.loads(marker_path(prefix).read_text())
    except (OSError, ValueError):
        return None


def with_extra_args(chain: Sequence[FlagSet], extra: str) -> list[FlagSet]:
    """LABELMILL_CMAKE_ARGS (e.g. -DGGML_CUDA=ON) added to every rung, so it is part of each wheel's key."""
    words = tuple(extra.split())
    return [dataclasses.replace(f, cmake_args=f.cmake_args + words) for f in chain] if words else list(chain)


def settle(chain: Sequence[FlagSet], obtain: Callable[[FlagSet], bool], check: Callable[[FlagSet], tuple[bool, str]],
           say: Callable[[str], None] = log) -> FlagSet | None:
    """Walk the ladder: the first rung that installs and passes the self-check, or None."""
    for flags in chain:
        if not obtain(flags):
            say(f"the {flags.level} build did not install; trying a more portable set")
            continue
        ok, why = check(flags)
        if ok:
            return flags
        if why == describe_exit(NO_WEIGHTS):
            say("the self-check found no model weights: a more portable build cannot fix that")
            return None
        say(f"the {flags.level} build failed its self-check ({why}); trying a more portable set")
    return None


def describe_exit(code: int) -> str:
    if code in SIGILL_CODES:
        return "SIGILL: the build uses an instruction this CPU traps"
    if code == NO_WEIGHTS:
        return "the model weights are missing"
    if code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


class Installer:
    """pip, our wheel cache and the self-check for one Python environment."""

    def __init__(self, python: str = sys.executable, wheels: Path | None = None):
        self.python = python
        self.wheels = wheels or cache_root() / "wheels"

    def _pip(self, *args: str, env: dict | None = None) -> bool:
        return subprocess.run([self.python, "-m", "pip", *args], env=env).returncode == 0

    def cached_wheel(self, flags: FlagSet) -> Path | None:
        found = sorted((self.wheels / flags.key(LLAMA_VERSION)).glob("llama_cpp_python-*.whl"))
        return found[0] if found else None

    def build_wheel(self, flags: FlagSet) -> Path | None:
        log(f"building llama-cpp-python {LLAMA_VERSION} for the {flags.level} set (5-15 minutes on 2 cores): {' '.join(flags.cmake_args)}")
        env = {**os.environ, "CMAKE_ARGS": " ".join(flags.cmake_args),
               "CMAKE_BUILD_PARALLEL_LEVEL": os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))}
        target = self.wheels / flags.key(LLAMA_VERSION)
        with tempfile.TemporaryDirectory(prefix="llama-wheel-") as tmp:
            started = time.monotonic()
            if not self._pip("wheel", "-q", "--no-deps", "--no-cache-dir", "--no-binary", "llama-cpp-python", "-w", tmp,
                             f"llama-cpp-python=={LLAMA_VERSION}", env=env):
                return None
            built = sorted(Path(tmp).glob("llama_cpp_python-*.whl"))
            if not built:
                return None
            target.mkdir(parents=True, exist_ok=True)
            final = target / built[0].name
            shutil.move(str(built[0]), final)
        (target / "flags.json").write_text(json.dumps({**flags.as_dict(), "version": LLAMA_VERSION}, indent=2))
        log(f"built in {time.monotonic() - started:.0f} s, kept as {final}")
        return final

    def obtain(self, flags: FlagSet) -> bool:
        wheel = self.cached_wheel(flags)
        if wheel is not None:
            log(f"reusing our wheel for the {flags.level} set: {wheel}")
        else:
            wheel = self.build_wheel(flags)
            if wheel is None:
                return False
        # the first puts exactly this wheel in place; the second adds its dependencies if any are missing
        return self._pip("install", "-q", "--force-reinstall", "--no-deps", str(wheel)) and self._pip("install", "-q", str(wheel))

    def check(self, flags: FlagSet) -> tuple[bool, str]:
        code = subprocess.run([self.python, "-m", "labelmill.selfcheck"]).returncode
        return code == 0, describe_exit(code)

    def record(self, flags: FlagSet) -> None:
        marker = {**flags.as_dict(), "key": flags.key(LLAMA_VERSION), "version": LLAMA_VERSION, "cpu": cpu_name(),
                  "installed": time.strftime("%Y-%m-%dT%H:%M:%S")}
        marker_path(self._prefix()).write_text(json.dumps(marker, indent=2))

    def _prefix(self) -> str:
        return subprocess.run([self.python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, check=True).stdout.strip()

    def current(self, chain: Sequence[FlagSet]) -> FlagSet | None:
        """The rung already installed here, if the marker names one of this ladder's."""
        marker = installed_build(self._prefix())
        if not marker or marker.get("version") != LLAMA_VERSION:
            return None
        return next((f for f in chain if f.key(LLAMA_VERSION) == marker.get("key")), None)


def ladder(start: str | None = None) -> list[FlagSet]:
    chain = with_extra_args(fallback_chain(read_cpu_features()), os.environ.get("LABELMILL_CMAKE_ARGS", ""))
    if start:
        names = [f.level for f in chain]
        if start not in names:
            raise SystemExit(f"LABELMILL_LLAMA_LEVEL={start} is not a rung this CPU can run; choose from {', '.join(names)}")
        chain = chain[names.index(start):]
    return chain


def install(installer: Installer | None = None, start: str | None = None) -> int:
    installer = installer or Installer()
    chain = ladder(start or os.environ.get("LABELMILL_LLAMA_LEVEL") or None)
    log(f"CPU: {cpu_name()}; llama.cpp builds to try, best first: {', '.join(f.level for f in chain)}")
    current = installer.current(chain)
    if current is not None:
        ok, why = installer.check(current)
        if ok:
            log(f"llama.cpp is already built for the {current.level} set and passes its self-check")
            return 0
        log(f"the installed {current.level} build fails its self-check ({why}); rebuilding")
        chain = chain[chain.index(current) + 1:] or chain[-1:]
    chosen = settle(chain, installer.obtain, installer.check)
    if chosen is None:
        log("no llama.cpp build passed its self-check; run `labelmill doctor` for details")
        return 1
    installer.record(chosen)
    log(f"settled on the {chosen.level} set: {' '.join(chosen.cmake_args)}")
    return 0


if __name__ == "__main__":
    sys.exit(install())
