#!/usr/bin/env bash
# Build the environment of the *official* dense-prediction code (mmdet 2.x,
# mmcv-full 1.x, mmseg 0.x) used by tools/references/ to regenerate the
# official pipeline references stored in tests/data/pipelines/.
#
# It lives OUTSIDE the repository and is never used by CI, tools/run_tests.sh
# or .ci/run: the stored reference files are all the tests need.
#
# Usage:  MAX_JOBS=2 bash tools/references/setup_official_env.sh
#
# Environment:
#   OFFICIAL_ENV   target virtual environment
#                  (default: ~/.cache/mmmetaformer/official-env)
#   PYTHON310      interpreter (default: pyenv's python3.10)
#   MAX_JOBS       parallel compile jobs for mmcv-full's CPU ops (default 2)
#   DETECTRON2_SRC optional: a checkout of facebookresearch/detectron2
#                  (not on PyPI; its GitHub and wheel servers may be
#                  unreachable): built with its CPU ops and installed too
#                  (~15 min on 2 busy cores; used to run wofmanaf/ResT's
#                  object_detection code)
#
# Versions (see docs/parity.md, "Whole pipelines compared with the official code"):
#   Python 3.10, torch 2.0.1, torchvision 0.15.2, numpy<2, mmcv-full 1.7.2
#   (CPU ops built from the PyPI sdist, ~17 min on 2 cores), mmdet 2.28.2,
#   mmsegmentation 0.30.0, timm 0.6.13, pycocotools, scikit-image<0.25,
#   ipython<9 (the official align_resize.py imports IPython).
# Idempotent: each step is skipped when its package is already installed.
set -euo pipefail

ENV_DIR="${OFFICIAL_ENV:-$HOME/.cache/mmmetaformer/official-env}"
PY="${PYTHON310:-}"
if [[ -z "$PY" ]]; then  # pyenv's shim fails when 3.10 is not the selected version
    PY="$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python3.10 2>/dev/null | tail -1 || true)"
fi
export MAX_JOBS="${MAX_JOBS:-2}"
t0=$SECONDS
say() { printf '[official_env %5ds] %s\n' "$((SECONDS - t0))" "$*"; }

if [[ -z "$PY" ]]; then
    echo "setup_official_env.sh: python3.10 not found; set PYTHON310" >&2
    exit 2
fi
if [[ ! -x "$ENV_DIR/bin/python" ]]; then
    say "creating $ENV_DIR with $("$PY" --version 2>&1)"
    mkdir -p "$(dirname "$ENV_DIR")"
    "$PY" -m venv "$ENV_DIR"
fi
pip_install() { "$ENV_DIR/bin/python" -m pip install --disable-pip-version-check "$@"; }
have() { "$ENV_DIR/bin/python" -m pip show "$1" >/dev/null 2>&1; }

if ! have torch; then
    say "installing torch 2.0.1"
    pip_install "setuptools<70" wheel
    pip_install torch==2.0.1 torchvision==0.15.2 "numpy<2"
fi
pip_install ninja yapf==0.40.1 addict pyyaml "opencv-python<4.11"
if ! have mmcv-full; then
    say "building mmcv-full 1.7.2 with CPU ops (MAX_JOBS=$MAX_JOBS)"
    MMCV_WITH_OPS=1 FORCE_CUDA=0 pip_install --no-build-isolation mmcv-full==1.7.2
fi
pip_install mmdet==2.28.2 mmsegmentation==0.30.0 timm==0.6.13 pycocotools \
    "scikit-image<0.25" "ipython<9"
if [[ -n "${DETECTRON2_SRC:-}" ]] && ! have detectron2; then
    say "building detectron2 from $DETECTRON2_SRC (MAX_JOBS=$MAX_JOBS)"
    FORCE_CUDA=0 pip_install --no-build-isolation "$DETECTRON2_SRC"
fi
"$ENV_DIR/bin/python" -c "import mmcv, mmcv.ops, mmdet, mmseg, timm, skimage; \
print('done:', mmcv.__version__, mmdet.__version__, mmseg.__version__)"
say "finished"
