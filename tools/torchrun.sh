#!/usr/bin/env bash
# torchrun of one tool on this machine's processes (gloo on a CPU-only
# torch): what tools/dist_train.sh and tools/dist_test.sh run.
#
# Usage: bash tools/torchrun.sh NUM_PROCS TOOL [arguments of the tool...]
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1),
# PORT (29500), PYTHON (.venv/bin/python of this checkout).
set -euo pipefail
NPROCS=$1
TOOL=$2
shift 2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROCS" \
    "$ROOT/tools/$TOOL" --launcher pytorch "$@"
