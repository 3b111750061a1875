#!/usr/bin/env bash
# Distributed training with torchrun (gloo on a CPU-only torch).
#
# Usage: bash tools/dist_train.sh CONFIG NUM_PROCS [train.py options...]
# Environment: see tools/torchrun.sh.
set -euo pipefail
if [[ $# -lt 2 ]]; then
    echo "usage: $0 CONFIG NUM_PROCS [tools/train.py options...]" >&2
    exit 1
fi
CONFIG=$1
NPROCS=$2
shift 2
exec bash "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh" "$NPROCS" train.py \
    "$CONFIG" "$@"
