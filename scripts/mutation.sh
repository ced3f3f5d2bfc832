#!/usr/bin/env bash
# Mutation testing on the modules that carry claims (pyproject's [tool.mutmut]), fast tests only.
#   bash scripts/mutation.sh "labelmill.numeric.*"      one module or package (a few minutes to an hour)
#   bash scripts/mutation.sh --tests "tests/test_cascade_tiers.py tests/test_freeal.py" "labelmill.strategies.cascade.*"
#                                                       only these test files run (the stats pass too): minutes, not
#                                                       the 20 of the whole fast suite; a mutant no chosen test
#                                                       reaches reads "no tests"
#   bash scripts/mutation.sh --tests "tests/test_cascade_tiers.py" --timeout-constant 20 "labelmill.strategies.cascade.*"
#                                                       tests that load a model in each fresh worker: N seconds more
#                                                       before a mutant counts as a timeout (mutmut's default 1)
#   LABELMILL_TEST_ENCODER=hash bash scripts/mutation.sh ...
#                                                       tests that embed use a hashed bag of words instead of the
#                                                       sentence encoder (tests/conftest.py): no model load per mutant
#   bash scripts/mutation.sh                            everything in [tool.mutmut] only_mutate (hours)
# Then: .venv/bin/mutmut results (the survivors), .venv/bin/mutmut show NAME (a survivor's diff).
# mutmut runs the tests from a copy in mutants/, one folder deeper than the checkout: the example configs
# that name ../../../shared find it through a link at the checkout's root (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
tests=""
constant=""
while [ "${1:-}" = "--tests" ] || [ "${1:-}" = "--timeout-constant" ]; do
  if [ "$1" = "--tests" ]; then tests="$2"; else constant="$2"; fi
  shift 2
done
[ -e shared ] || ln -s ../shared shared
rm -rf mutants
if [ -n "$tests$constant" ]; then
  # mutmut reads its settings from pyproject.toml only: add them for this run, put the file back after
  cp pyproject.toml .pyproject.toml.mutation
  trap 'mv -f .pyproject.toml.mutation pyproject.toml' EXIT
  .venv/bin/python - "$tests" "$constant" <<'PY'
import json, sys
from pathlib import Path
p = Path("pyproject.toml")
text = p.read_text()
tests, constant = sys.argv[1], sys.argv[2]
added = ("pytest_add_cli_args_test_selection = " + json.dumps(tests.split()) + "\n" if tests else "")
added += f"timeout_constant = {float(constant)}\n" if constant else ""
p.write_text(text.replace("[tool.mutmut]\n", "[tool.mutmut]\n" + added, 1))
PY
fi
started=$(date +%s)
# mutmut forks a worker per mutant from a process that has run the tests: an OpenMP pool made before the fork
# (scikit-learn's k-means) deadlocks in the child, and every such mutant ends as a timeout. One thread each.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
.venv/bin/mutmut run "$@" || true
echo "[mutation] $(( $(date +%s) - started )) s"
.venv/bin/python scripts/mutation_summary.py
