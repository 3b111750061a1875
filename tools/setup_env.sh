#!/usr/bin/env bash
# Create or update the project's virtual environment in <repo>/.venv.
#
# Usage:  bash tools/setup_env.sh          (or: source tools/setup_env.sh)
#
# Idempotent. What it does, each step only when needed:
#   1. creates .venv with $PYTHON (default: python3) if it does not exist;
#   2. installs torch==$TORCH_VERSION (the CPU wheel the machine's pip config
#      provides) unless exactly that version is installed; never a bare or
#      ranged torch requirement, never torchvision;
#   3. pins the build tools (setuptools<82 still ships pkg_resources, which
#      mmcv's build and mmengine's `mmdet::` config lookup import);
#   4. installs mmcv $MMCV_VERSION *with ops*, built from the PyPI sdist
#      against the installed torch. The wheel is built once and cached in
#        ${MMMETAFORMER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmmetaformer}/
#            mmcv-<ver>-torch<torch ver>-<python tag>-<arch>/
#      so later set-ups (other clones, CI on the same machine) skip the
#      ~20 minute build. pip's own wheel cache is bypassed for this build on
#      purpose: its key ignores the torch version the C++ ops link against;
#   5. installs requirements/deps.txt and requirements/tests.txt (pinned,
#      with their dependencies) and requirements/runtime.txt (the OpenMMLab
#      packages, --no-deps: their declared deps would pull the GUI OpenCV);
#   6. installs this package editable (--no-deps --no-build-isolation);
#   7. checks that everything imports and writes a stamp (hash of this script,
#      setup.py and requirements/*.txt). With a matching stamp and a passing
#      import check, a re-run does nothing else (a few seconds).
#
# Environment: PYTHON (interpreter for a new .venv), MMMETAFORMER_CACHE,
# MAX_JOBS (parallel compile jobs for mmcv, default: number of CPUs),
# MMMETAFORMER_FORCE_SETUP=1 (ignore the stamp).
_mmmetaformer_setup() (
    set -euo pipefail

    local TORCH_VERSION=2.13.0
    local MMCV_VERSION=2.1.0
    local BUILD_TOOLS=(setuptools==80.9.0 wheel==0.48.0 ninja==1.13.2)

    local repo venv py pip_flags
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="$repo/.venv"
    py="$venv/bin/python"
    pip_flags=(--disable-pip-version-check)
    if [[ "${CI:-}" == "true" ]]; then
        pip_flags+=(--progress-bar off)
    fi
    local t0=$SECONDS
    say() { printf '[setup_env %4ds] %s\n' "$((SECONDS - t0))" "$*"; }
    pip_install() { "$py" -m pip install "${pip_flags[@]}" "$@"; }

    # --- 1. virtual environment ---------------------------------------------
    if [[ ! -x "$py" ]]; then
        local base="${PYTHON:-python3}"
        say "creating $venv with $base ($("$base" --version 2>&1))"
        "$base" -m venv "$venv"
    fi

    # The import check that defines "the environment works".
    local check_code
    check_code="
import torch, mmcv, mmcv.ops, mmengine, mmdet, mmseg, mmpretrain
import mmmetaformer
assert torch.__version__.split('+')[0] == '$TORCH_VERSION', torch.__version__
assert mmcv.__version__ == '$MMCV_VERSION', mmcv.__version__
from mmcv.ops import nms  # compiled ops present
print('torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmengine',
      mmengine.__version__, '| mmdet', mmdet.__version__, '| mmseg',
      mmseg.__version__, '| mmpretrain', mmpretrain.__version__)
"

    local stamp_file="$venv/.mmmetaformer-setup.stamp" stamp
    stamp="$(cd "$repo" && cat tools/setup_env.sh setup.py requirements/*.txt \
        | sha256sum | cut -d' ' -f1)"
    if [[ "${MMMETAFORMER_FORCE_SETUP:-0}" != 1 && -f "$stamp_file" \
          && "$(cat "$stamp_file")" == "$stamp" ]]; then
        say "stamp matches; checking imports"
        if (cd "$repo" && "$py" -c "$check_code"); then
            say "environment up to date: $venv"
            return 0
        fi
        say "import check failed; re-running the set-up steps"
    fi
    rm -f "$stamp_file"

    # --- 2. torch --------------------------------------------------------------
    local have_torch
    have_torch="$("$py" -c 'import torch; print(torch.__version__)' \
        2>/dev/null || true)"
    if [[ "${have_torch%%+*}" == "$TORCH_VERSION" ]]; then
        say "torch $have_torch already installed"
    else
        say "installing torch==$TORCH_VERSION (found: ${have_torch:-none})"
        pip_install "torch==$TORCH_VERSION"
        have_torch="$("$py" -c 'import torch; print(torch.__version__)')"
    fi

    # --- 3. build tools --------------------------------------------------------
    say "installing build tools: ${BUILD_TOOLS[*]}"
    pip_install -q "${BUILD_TOOLS[@]}"

    # --- 4. mmcv with ops --------------------------------------------------------
    if "$py" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" \
            >/dev/null 2>&1; then
        say "mmcv $MMCV_VERSION with ops already installed"
    else
        local pytag arch cache wheel_dir wheel
        pytag="$("$py" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
        arch="$(uname -m)"
        cache="${MMMETAFORMER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmmetaformer}"
        wheel_dir="$cache/mmcv-$MMCV_VERSION-torch$have_torch-$pytag-$arch"
        wheel="$(ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
        if [[ -n "$wheel" ]]; then
            say "using cached mmcv wheel $wheel"
        else
            if ! command -v "${CXX:-c++}" >/dev/null; then
                echo "setup_env: no C++ compiler (${CXX:-c++}) found; it is needed" \
                     "to build mmcv $MMCV_VERSION's ops (apt-get install g++)." >&2
                return 1
            fi
            local jobs="${MAX_JOBS:-$(nproc)}" build_dir
            mkdir -p "$wheel_dir"
            build_dir="$(mktemp -d "$wheel_dir/build.XXXXXX")"
            say "building mmcv $MMCV_VERSION with ops against torch $have_torch" \
                "(MAX_JOBS=$jobs; ~20 min on 2 cores, done once per cache)"
            local tb=$SECONDS
            MMCV_WITH_OPS=1 MAX_JOBS="$jobs" "$py" -m pip wheel "${pip_flags[@]}" \
                --no-cache-dir --no-deps --no-build-isolation --no-binary mmcv \
                "mmcv==$MMCV_VERSION" -w "$build_dir"
            wheel="$(ls "$build_dir"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
            mv "$wheel" "$wheel_dir/"
            rmdir "$build_dir" 2>/dev/null || rm -rf "$build_dir"
            wheel="$wheel_dir/$(basename "$wheel")"
            say "built $wheel in $((SECONDS - tb)) s"
        fi
        pip_install --no-deps --force-reinstall "$wheel"
    fi

    # --- 5. pinned requirements ---------------------------------------------------
    say "installing requirements/deps.txt and requirements/tests.txt (pinned)"
    pip_install -q -r "$repo/requirements/deps.txt" -r "$repo/requirements/tests.txt"
    say "installing requirements/runtime.txt (--no-deps)"
    pip_install -q --no-deps -r "$repo/requirements/runtime.txt"

    # --- 6. this package ------------------------------------------------------------
    say "installing mmmetaformer (editable)"
    pip_install -q -e "$repo" --no-deps --no-build-isolation

    # --- 7. check and stamp -------------------------------------------------------------
    say "checking imports"
    (cd "$repo" && "$py" -c "$check_code")
    echo "$stamp" > "$stamp_file"
    say "done: $venv"
)

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    _mmmetaformer_setup
    return $?
fi
_mmmetaformer_setup
