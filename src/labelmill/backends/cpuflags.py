"""Which llama.cpp build flags this CPU can run, read from the CPU itself, with strictly more portable fallbacks.

Stdlib only: `scripts/install.sh` runs it before labelmill's dependencies are installed.

Two traps decide the rules (both seen on this project's machines): VMs on Intel CPUs that advertise AMX
trap it, so AMX is never on; AMD EPYC CPUs with AVX-512 VNNI but no AVX-VNNI die on `{vex} vpdpbusd`, so
each instruction set is on only when the CPU lists it. `GGML_NATIVE` stays off on x86: its `-march=native`
trusts what the compiler detects, AMX included.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# GGML option -> the /proc/cpuinfo flags the CPU must list for it (all of them)
X86_OPTIONS: dict[str, tuple[str, ...]] = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_AVX": ("avx",),
    "GGML_F16C": ("f16c",),
    "GGML_FMA": ("fma",),
    "GGML_BMI2": ("bmi2",),
    "GGML_AVX2": ("avx2",),
    "GGML_AVX_VNNI": ("avx_vnni",),
    # ggml compiles GGML_AVX512 with -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw
    "GGML_AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "GGML_AVX512_VBMI": ("avx512vbmi",),
    "GGML_AVX512_VNNI": ("avx512_vnni",),
    "GGML_AVX512_BF16": ("avx512_bf16",),
}
NEVER = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")
COMMON = ("-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF")


@dataclass(frozen=True)
class Level:
    """A rung of the fallback ladder: what the CPU must have to try it, and the options it may turn on."""

    name: str
    requires: tuple[str, ...]
    allows: tuple[str, ...]


_AVX2_SET = ("GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2")
X86_LEVELS = (
    Level("avx512", ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx2", "fma"), tuple(X86_OPTIONS)),
    Level("avx2", ("avx2", "fma"), _AVX2_SET),
    Level("avx", ("avx",), ("GGML_SSE42", "GGML_AVX", "GGML_F16C")),
    Level("baseline", (), ()),  # x86-64 baseline (SSE2): runs on any x86-64 CPU
)


@dataclass(frozen=True)
class FlagSet:
    """One llama.cpp build: a name for people and the CMake arguments that make it."""

    level: str
    cmake_args: tuple[str, ...]
    enabled: tuple[str, ...] = field(default=())

    def key(self, version: str, python: str | None = None) -> str:
        """Names our cached wheel: the flags, llama-cpp-python's version, the Python and the platform."""
        python = python or f"cp{sys.version_info.major}{sys.version_info.minor}"
        blob = json.dumps([version, python, platform.system(), platform.machine(), list(self.cmake_args)])
        return f"{self.level}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    def as_dict(self) -> dict[str, object]:
        return {"level": self.level, "cmake_args": list(self.cmake_args), "enabled": list(self.enabled)}


def parse_cpuinfo(text: str) -> frozenset[str]:
    """The feature names of the first CPU in a /proc/cpuinfo text (x86 `flags`, Arm `Features`)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def parse_sysctl(text: str) -> frozenset[str]:
    """macOS `sysctl machdep.cpu.features machdep.cpu.leaf7_features` -> cpuinfo-style names."""
    rename = {"avx1.0": "avx", "sse4.2": "sse4_2", "avx512vnni": "avx512_vnni", "avx512bf16": "avx512_bf16", "avxvnni": "avx_vnni"}
    names = set()
    for line in text.splitlines():
        _, _, value = line.partition(":")
        for word in value.split():
            word = word.lower()
            names.add(rename.get(word, word))
    return frozenset(names)


def read_cpu_features(system: str | None = None) -> frozenset[str]:
    """This CPU's features, from /proc/cpuinfo on Linux or sysctl on macOS; empty where neither answers."""
    system = system or platform.system()
    try:
        if system == "Linux":
            return parse_cpuinfo(Path("/proc/cpuinfo").read_text(errors="replace"))
        if system == "Darwin":
            out = subprocess.run(["sysctl", "machdep.cpu.features", "machdep.cpu.leaf7_features"], capture_output=True, text=True, timeout=10)
            return parse_sysctl(out.stdout)
    except (OSError, subprocess.SubprocessError):
        pass
    return frozenset()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _x86_flagset(level: Level, features: frozenset[str]) -> FlagSet:
    enabled = tuple(opt for opt in level.allows if all(f in features for f in X86_OPTIONS[opt]))
    args = [*COMMON, *(f"-D{opt}={'ON' if opt in enabled else 'OFF'}" for opt in X86_OPTIONS), *(f"-D{opt}=OFF" for opt in NEVER)]
    return FlagSet(level.name, tuple(args), enabled)


def fallback_chain(features: frozenset[str], machine: str | None = None, system: str | None = None) -> list[FlagSet]:
    """The builds to try, best first; each one turns on a strict subset of the one before."""
    machine = (machine or platform.machine()).lower()
    system = system or platform.system()
    if system == "Darwin":
        # llama-cpp-python turns Metal on and, on Intel Macs, AVX/AVX2/FMA/F16C off by itself
        return [FlagSet("metal", ("-DGGML_METAL=ON", "-DLLAVA_BUILD=OFF"), ("GGML_METAL",)),
                FlagSet("cpu", ("-DGGML_METAL=OFF", "-DLLAVA_BUILD=OFF"))]
    if machine in ("x86_64", "amd64", "i686", "i386"):
        chain: list[FlagSet] = []
        for level in X86_LEVELS:
            if all(f in features for f in level.requires):
                candidate = _x86_flagset(level, features)
                if not chain or set(candidate.enabled) < set(chain[-1].enabled):
                    chain.append(candidate)
        return chain
    if machine in ("aarch64", "arm64"):
        # no trapped extensions seen on Arm: the compiler's -mcpu=native reads the real CPU; armv8-a runs anywhere
        return [FlagSet("native", ("-DGGML_NATIVE=ON", "-DLLAVA_BUILD=OFF"), ("GGML_NATIVE",)),
                FlagSet("armv8-a", ("-DGGML_NATIVE=OFF", "-DGGML_CPU_ARM_ARCH=armv8-a", "-DLLAVA_BUILD=OFF"))]
    return [FlagSet("portable", COMMON)]


def choose(features: frozenset[str] | None = None, level: str | None = None) -> FlagSet:
    """The best build for this CPU, or the named rung of its ladder."""
    chain = fallback_chain(read_cpu_features() if features is None else features)
    if level is None:
        return chain[0]
    for flags in chain:
        if flags.level == level:
            return flags
    raise ValueError(f"level {level!r} is not one this CPU can run; choose from {', '.join(f.level for f in chain)}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", help="a rung of the ladder instead of the best one")
    parser.add_argument("--json", action="store_true", help="the whole ladder as JSON")
    args = parser.parse_args(argv)
    features = read_cpu_features()
    if args.json:
        print(json.dumps({"cpu": cpu_name(), "chain": [f.as_dict() for f in fallback_chain(features)]}, indent=2))
    else:
        print(" ".join(choose(features, args.level).cmake_args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
