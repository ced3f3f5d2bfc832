"""The llama.cpp install: flags chosen from recorded CPUs, the fallback ladder, our wheel cache, doctor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labelmill.backends import cpuflags, llama_build
from labelmill.backends.cpuflags import FlagSet, fallback_chain, parse_cpuinfo, parse_sysctl

_COMMON = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx "
           "pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 ")
# /proc/cpuinfo flag lines as these CPUs report them in a VM
SAPPHIRE_RAPIDS = _COMMON + (
    "fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm "
    "3dnowprefetch cpuid_fault invpcid_single ssbd ibrs ibpb stibp ibrs_enhanced fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms "
    "invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec "
    "xgetbv1 xsaves avx_vnni avx512_bf16 wbnoinvd arat avx512vbmi umip pku ospke waitpkg avx512_vbmi2 gfni vaes vpclmulqdq "
    "avx512_vnni avx512_bitalg tme avx512_vpopcntdq rdpid cldemote movdiri movdir64b md_clear serialize amx_bf16 avx512_fp16 "
    "amx_tile amx_int8 flush_l1d arch_capabilities")
ZEN4 = _COMMON + (
    "fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy "
    "cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext perfctr_core invpcid_single ssbd ibrs ibpb stibp vmmcall "
    "fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb "
    "avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx512_bf16 clzero xsaveerptr wbnoinvd arat avx512vbmi "
    "umip pku ospke avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm")
HASWELL = _COMMON + (
    "fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm "
    "cpuid_fault invpcid_single pti fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid xsaveopt arat")
WESTMERE = _COMMON + "cx16 sse4_1 sse4_2 x2apic popcnt aes hypervisor lahf_lm pti arat"


def cpuinfo(flags: str) -> str:
    return f"processor\t: 0\nvendor_id\t: X\nmodel name\t: X\nflags\t\t: {flags}\nbugs\t\t: spectre_v1\n\nprocessor\t: 1\nflags\t\t: {flags}\n"


def on(flags: FlagSet) -> set[str]:
    return {a[2:-3] for a in flags.cmake_args if a.endswith("=ON")}


def test_sapphire_rapids_gets_avx512_and_avx_vnni_but_never_amx():
    chain = fallback_chain(parse_cpuinfo(cpuinfo(SAPPHIRE_RAPIDS)), "x86_64", "Linux")
    best = chain[0]
    assert best.level == "avx512"
    assert on(best) == {"GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2", "GGML_AVX_VNNI",
                        "GGML_AVX512", "GGML_AVX512_VBMI", "GGML_AVX512_VNNI", "GGML_AVX512_BF16"}
    for amx in ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"):
        assert f"-D{amx}=OFF" in best.cmake_args
    assert "-DGGML_NATIVE=OFF" in best.cmake_args
    assert [f.level for f in chain] == ["avx512", "avx2", "avx", "baseline"]


def test_zen4_gets_avx512_vnni_but_not_avx_vnni():
    best = fallback_chain(parse_cpuinfo(cpuinfo(ZEN4)), "x86_64", "Linux")[0]
    assert best.level == "avx512"
    assert "-DGGML_AVX_VNNI=OFF" in best.cmake_args  # the `{vex} vpdpbusd` SIGILL
    assert {"GGML_AVX512", "GGML_AVX512_VNNI", "GGML_AVX512_VBMI", "GGML_AVX512_BF16", "GGML_FMA", "GGML_F16C"} <= on(best)


def test_avx2_only_cpu_gets_no_avx512():
    chain = fallback_chain(parse_cpuinfo(cpuinfo(HASWELL)), "x86_64", "Linux")
    assert [f.level for f in chain] == ["avx2", "avx", "baseline"]
    assert on(chain[0]) == {"GGML_SSE42", "GGML_AVX", "GGML_F16C", "GGML_FMA", "GGML_BMI2", "GGML_AVX2"}


def test_cpu_without_avx_gets_the_x86_64_baseline():
    chain = fallback_chain(parse_cpuinfo(cpuinfo(WESTMERE)), "x86_64", "Linux")
    assert [f.level for f in chain] == ["baseline"]
    assert on(chain[0]) == {"LLAVA_BUILD"} - {"LLAVA_BUILD"}  # nothing on


@pytest.mark.parametrize("flags", [SAPPHIRE_RAPIDS, ZEN4, HASWELL, WESTMERE])
def test_each_rung_turns_on_a_strict_subset_of_the_one_before(flags):
    chain = fallback_chain(parse_cpuinfo(cpuinfo(flags)), "x86_64", "Linux")
    for better, more_portable in zip(chain, chain[1:]):
        assert on(more_portable) < on(better)
    features = parse_cpuinfo(cpuinfo(flags))
    for rung in chain:  # nothing the CPU does not list
        for option in on(rung):
            assert all(f in features for f in cpuflags.X86_OPTIONS[option])


def test_wheel_keys_differ_per_flag_set_and_version():
    chain = fallback_chain(parse_cpuinfo(cpuinfo(ZEN4)), "x86_64", "Linux")
    keys = {f.key("0.3.36") for f in chain}
    assert len(keys) == len(chain)
    assert chain[0].key("0.3.36") != chain[0].key("0.3.37")
    assert chain[0].key("0.3.36") == chain[0].key("0.3.36")


def test_other_platforms_have_documented_defaults():
    mac = fallback_chain(parse_sysctl("machdep.cpu.features: FPU SSE4.2 AVX1.0\n"), "arm64", "Darwin")
    assert "-DGGML_METAL=ON" in mac[0].cmake_args and "-DGGML_METAL=OFF" in mac[-1].cmake_args
    arm = fallback_chain(parse_cpuinfo("Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp\n"), "aarch64", "Linux")
    assert arm[0].level == "native" and "-DGGML_CPU_ARM_ARCH=armv8-a" in arm[-1].cmake_args
    assert parse_sysctl("machdep.cpu.leaf7_features: AVX2 BMI2 AVX512F AVX512VNNI\n") >= {"avx2", "bmi2", "avx512f", "avx512_vnni"}


class RecordingInstaller(llama_build.Installer):
    """Installs nothing; the self-check is a real child process that dies with SIGILL the first time."""

    def __init__(self, tmp_path: Path):
        super().__init__(python=sys.executable, wheels=tmp_path / "wheels")
        self.tmp = tmp_path
        self.obtained: list[FlagSet] = []
        self.checks = 0

    def obtain(self, flags: FlagSet) -> bool:
        self.obtained.append(flags)
        return True

    def check(self, flags: FlagSet) -> tuple[bool, str]:
        self.checks += 1
        script = "import os, signal; os.kill(os.getpid(), signal.SIGILL)" if self.checks == 1 else "pass"
        code = subprocess.run([self.python, "-c", script]).returncode
        return code == 0, llama_build.describe_exit(code)

    def _prefix(self) -> str:
        return str(self.tmp)


def test_a_failed_self_check_falls_back_to_a_more_portable_set(tmp_path, monkeypatch):
    monkeypatch.setattr(llama_build, "read_cpu_features", lambda: parse_cpuinfo(cpuinfo(SAPPHIRE_RAPIDS)))
    monkeypatch.setattr(llama_build, "fallback_chain", lambda features: fallback_chain(features, "x86_64", "Linux"))
    installer = RecordingInstaller(tmp_path)
    assert llama_build.install(installer) == 0
    first, second = installer.obtained
    assert (first.level, second.level) == ("avx512", "avx2")
    assert on(second) < on(first)
    recorded = json.loads((tmp_path / llama_build.MARKER).read_text())
    assert recorded["level"] == "avx2" and recorded["key"] == second.key(llama_build.LLAMA_VERSION)
    # a second install finds the recorded rung, checks it, and builds nothing
    again = RecordingInstaller(tmp_path)
    again.checks = 1
    assert llama_build.install(again) == 0
    assert again.obtained == [] and again.checks == 2


def test_missing_weights_stop_the_ladder_instead_of_rebuilding():
    chain = fallback_chain(parse_cpuinfo(cpuinfo(HASWELL)), "x86_64", "Linux")
    built = []
    said = []
    chosen = llama_build.settle(chain, lambda f: built.append(f) or True,
                                lambda f: (False, llama_build.describe_exit(llama_build.NO_WEIGHTS)), said.append)
    assert chosen is None and len(built) == 1 and "weights" in said[0]


def test_cached_wheel_is_found_only_under_its_own_flags(tmp_path):
    chain = fallback_chain(parse_cpuinfo(cpuinfo(ZEN4)), "x86_64", "Linux")
    installer = llama_build.Installer(wheels=tmp_path)
    folder = tmp_path / chain[1].key(llama_build.LLAMA_VERSION)
    folder.mkdir()
    (folder / "llama_cpp_python-0.3.36-cp311-cp311-linux_x86_64.whl").write_bytes(b"")
    assert installer.cached_wheel(chain[0]) is None
    assert installer.cached_wheel(chain[1]) == folder / "llama_cpp_python-0.3.36-cp311-cp311-linux_x86_64.whl"


def test_doctor_reports_a_decode_check_that_dies_with_sigill():
    from labelmill.doctor import diagnose, render

    found = diagnose(check_command=[sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"])
    if found.installed_llama_cpp_python is None:
        pytest.fail("llama-cpp-python is not installed: the install script must have put it there")
    assert not found.model_runs
    assert "SIGILL" in found.decode.detail
    assert any("LABELMILL_LLAMA_LEVEL" in fix for fix in found.fixes)
    text = render(found)
    assert "decode check  FAILED" in text and "to fix" in text


def _python_that(tmp_path: Path, body: str) -> str:
    """An executable standing in for the environment's python: it records its arguments, then runs `body`."""
    script = tmp_path / "python"
    script.write_text(f"#!{sys.executable}\nimport os, signal, sys\nopen({str(tmp_path / 'args')!r}, 'w').write(' '.join(sys.argv[1:]))\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_installer_check_runs_the_self_check_and_reads_its_exit(tmp_path):
    flags = fallback_chain(parse_cpuinfo(cpuinfo(HASWELL)), "x86_64", "Linux")[0]
    dies = llama_build.Installer(python=_python_that(tmp_path, "os.kill(os.getpid(), signal.SIGILL)"), wheels=tmp_path)
    assert dies.check(flags) == (False, "SIGILL: the build uses an instruction this CPU traps")
    assert (tmp_path / "args").read_text() == "-m labelmill.selfcheck"
    no_weights = llama_build.Installer(python=_python_that(tmp_path, f"sys.exit({llama_build.NO_WEIGHTS})"), wheels=tmp_path)
    assert no_weights.check(flags) == (False, "the model weights are missing")
    passes = llama_build.Installer(python=_python_that(tmp_path, "sys.exit(0)"), wheels=tmp_path)
    assert passes.check(flags)[0] is True


@pytest.mark.model
def test_installer_check_decodes_with_the_installed_build():
    """The real self-check, on this environment's build and the default model's weights."""
    flags = llama_build.ladder()[0]
    ok, why = llama_build.Installer().check(flags)
    assert ok, why
