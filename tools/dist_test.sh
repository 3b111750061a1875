#!/usr/bin/env bash
# Distributed testing with torchrun (gloo on a CPU-only torch).
#
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py options...]
# Environment: see tools/torchrun.sh.
set -euo pipefail
if [[ $# -lt 3 ]]; then
    echo "usage: $0 CONFIG CHECKPOINT NUM_PROCS [tools/test.py options...]" >&2
    exit 1
fi
CONFIG=$1
CHECKPOINT=$2
NPROCS=$3
shift 3
exec bash "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh" "$NPROCS" test.py \
    "$CONFIG" "$CHECKPOINT" "$@"
