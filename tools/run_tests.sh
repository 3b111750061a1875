#!/usr/bin/env bash
# Set up (or check) the environment, then run the test suite.
#
# Usage: bash tools/run_tests.sh [pytest options...]
#   e.g. bash tools/run_tests.sh -x tests/test_compat.py
# With no test path, all of tests/ runs. Exits with pytest's exit code.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
# Torch threads are set per test where it matters; keep BLAS from
# oversubscribing shared cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
paths=()
for arg in "$@"; do
    if [[ "$arg" != -* && -e "${arg%%::*}" ]]; then
        paths+=("$arg")
    fi
done
if [[ ${#paths[@]} -eq 0 ]]; then
    set -- tests "$@"
fi
echo "[run_tests] .venv/bin/python -m pytest -q $*"
start=$SECONDS
status=0
.venv/bin/python -m pytest -q "$@" || status=$?
echo "[run_tests] pytest exited with $status after $((SECONDS - start)) s"
exit "$status"
