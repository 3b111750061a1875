#!/usr/bin/env bash
# Install the speed suite's benchmark-only dependency (timm) OUTSIDE the
# virtual environment: `pip install --no-deps --target`, so nothing in .venv
# changes and pip cannot pull another torch. timm's other requirements are
# either in .venv already (pyyaml) or optional for the suite (huggingface_hub
# and safetensors: only for downloading weights, which the suite never does);
# torchvision is replaced by an import stand-in (tools/benchmarks/_stubs).
#
#   bash tools/benchmarks/setup_bench.sh
#
# Target: $MMMETAFORMER_BENCH_SITE, else $MMMETAFORMER_CACHE/bench-site
# (default ~/.cache/mmmetaformer/bench-site), where speed.py looks for it.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
PY="${PYTHON:-$REPO/.venv/bin/python}"
TIMM_VERSION="${TIMM_VERSION:-1.0.31}"
CACHE="${MMMETAFORMER_CACHE:-$HOME/.cache/mmmetaformer}"
SITE="${MMMETAFORMER_BENCH_SITE:-$CACHE/bench-site}"
"$PY" -m pip install --quiet --no-deps --upgrade --target "$SITE" "timm==$TIMM_VERSION"
"$PY" - "$SITE" <<'PYEOF'
import sys
sys.path.insert(0, 'tools/benchmarks')
import os
os.environ['MMMETAFORMER_BENCH_SITE'] = sys.argv[1]
from peers import import_timm
print(f'timm {import_timm().__version__} ready in {sys.argv[1]}')
PYEOF
