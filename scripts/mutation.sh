#!/usr/bin/env bash
# Mutation testing on the modules that carry claims (pyproject's [tool.mutmut]), fast tests only.
#   bash scripts/mutation.sh "labelmill.numeric.*"      one module or package (a few minutes to an hour)
#   bash scripts/mutation.sh --tests "tests/test_cascade_tiers.py tests/test_freeal.py" "labelmill.strategies.cascade.*"
#                                                       only these test files run (the stats pass too): minutes, not
#                                                       the 20 of the whole fast suite; a mutant no chosen test
#                                                       reaches reads "no tests"
#   bash scripts/mutation.sh                            everything in [tool.mutmut] only_mutate (hours)
# Then: .venv/bin/mutmut results (the survivors), .venv/bin/mutmut show NAME (a survivor's diff).
# mutmut runs the tests from a copy in mutants/, one folder deeper than the checkout: the example configs
# that name ../../../shared find it through a link at the checkout's root (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
tests=""
if [ "${1:-}" = "--tests" ]; then
  tests="$2"
  shift 2
fi
[ -e shared ] || ln -s ../shared shared
rm -rf mutants
if [ -n "$tests" ]; then
  # mutmut reads its test selection from pyproject.toml only: add it for this run, put the file back after
  cp pyproject.toml .pyproject.toml.mutation
  trap 'mv -f .pyproject.toml.mutation pyproject.toml' EXIT
  .venv/bin/python - "$tests" <<'PY'
import json, sys
from pathlib import Path
p = Path("pyproject.toml")
text = p.read_text()
selection = "pytest_add_cli_args_test_selection = " + json.dumps(sys.argv[1].split()) + "\n"
p.write_text(text.replace("[tool.mutmut]\n", "[tool.mutmut]\n" + selection, 1))
PY
fi
started=$(date +%s)
.venv/bin/mutmut run "$@" || true
echo "[mutation] $(( $(date +%s) - started )) s"
.venv/bin/python scripts/mutation_summary.py
