#!/usr/bin/env bash
# Mutation testing on the modules that carry claims (pyproject's [tool.mutmut]), fast tests only.
#   bash scripts/mutation.sh "labelmill.numeric.*"      one module or package (a few minutes to an hour)
#   bash scripts/mutation.sh                            everything in [tool.mutmut] only_mutate (hours)
# Then: .venv/bin/mutmut results (the survivors), .venv/bin/mutmut show NAME (a survivor's diff).
# mutmut runs the tests from a copy in mutants/, one folder deeper than the checkout: the example configs
# that name ../../../shared find it through a link at the checkout's root (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -e shared ] || ln -s ../shared shared
rm -rf mutants
started=$(date +%s)
.venv/bin/mutmut run "$@" || true
echo "[mutation] $(( $(date +%s) - started )) s"
.venv/bin/python scripts/mutation_summary.py
