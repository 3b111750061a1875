#!/usr/bin/env bash
# The demo: set up the environment, generate the synthetic shapes data, train
# RetinaNet PoolFormer-S12 on it (CPU, from scratch) and print the COCO box
# metrics of the untrained and the trained model.
#
# Usage:  bash tools/run_demo.sh [extra tools/train.py arguments]
#
# Environment: MMMETAFORMER_DEMO_ROOT (data directory, default data/demo/),
# DEMO_WORK_DIR (default work_dirs/demo_retinanet_poolformer_s12).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
config=configs/demo/retinanet_poolformer_s12_demo.py
data_root="${MMMETAFORMER_DEMO_ROOT:-data/demo/}"
work_dir="${DEMO_WORK_DIR:-work_dirs/demo_retinanet_poolformer_s12}"
py="$repo/.venv/bin/python"
t0=$SECONDS

echo "== 1/3 environment (tools/setup_env.sh)"
bash tools/setup_env.sh

echo "== 2/3 demo data in $data_root"
"$py" tools/generate_demo_data.py --out "$data_root"

echo "== 3/3 training $config (log and checkpoint in $work_dir)"
t_train=$SECONDS
"$py" tools/train.py "$config" --work-dir "$work_dir" "$@"
train_s=$((SECONDS - t_train))

"$py" - "$work_dir" "$train_s" "$((SECONDS - t0))" <<'PYEOF'
import glob
import json
import os.path as osp
import sys

work_dir, train_s, total_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
if not runs:
    sys.exit(f'no scalars.json under {work_dir}: did the training run?')
with open(runs[-1]) as f:
    records = [json.loads(line) for line in f if line.strip()]
# Validation records are those without a training loss.
vals = [r for r in records if 'loss' not in r]
if len(vals) < 2:
    sys.exit(f'expected validations before and after training in {runs[-1]}')
keys = ['bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s',
        'bbox_mAP_m', 'bbox_mAP_l']
run_dir = osp.dirname(osp.dirname(runs[-1]))
print(f'\nCOCO box metrics on the demo val set (log: {run_dir}):')
print(' ' * 22 + ''.join(f'{k[5:]:>10}' for k in keys))
for name, rec in (("untrained (epoch 0)", vals[0]),
                  (f"trained (epoch {vals[-1]['step']})", vals[-1])):
    if not any(f'coco/{k}' in rec for k in keys):
        # mmdet's CocoMetric reports nothing when no box passes the score
        # threshold: the model detects nothing, i.e. mAP 0.
        print(f'{name:>22}  no box above the score threshold (mAP 0)')
        continue
    values = [rec.get(f'coco/{k}', float('nan')) for k in keys]
    # COCO reports -1 for an area range without objects (no "large" ones).
    print(f'{name:>22}' + ''.join(
        f'{v:>10.3f}' if v >= 0 else f'{"n/a":>10}' for v in values))
print(f'\nTraining took {train_s} s; the whole demo {total_s} s.')
PYEOF
