#!/usr/bin/env bash
# The second CI environment: the oldest versions this package declares
# (requirements/min.txt: Python 3.10, torch 2.1.2, numpy 1.26.4, mmengine
# 0.10.7, safetensors 0.4.5) -- mmengine and this package only, no mmcv,
# mmdet, mmseg or mmpretrain -- in <repo>/.venv-min, then the backbone and
# checkpoint tests there.
#
# Usage:  bash tools/min_env_tests.sh [pytest options...]
#
# 1. The environment (requirements/min.txt), redone only when this script or
#    requirements/min.txt changed (a stamp) or its import check fails.
#    Measured cold (new venv, empty pip cache) on this shared 2-core
#    machine: 273 s (379 s while an mmcv build ran beside it); ~2.6 GB of
#    wheels, most of it the nvidia-*-cu12 runtime wheels that torch 2.1.2's
#    PyPI build depends on. The whole script cold: 480 s.
# 2. This package, installed the way a user installs it into an existing
#    environment: `pip install .` (a non-editable install from a built
#    wheel) from a copy of the sources; it must pull nothing (its declared
#    requirements are met by the environment). Redone when the sources
#    changed (a second stamp).
# 3. The tests, against that installed copy: from a copy of tests/, so that
#    the repository root is not on sys.path.
#
# Environment: PYTHON (interpreter for a new .venv-min; default: pyenv's
# Python 3.10, else python3.10 on PATH), MMMETAFORMER_FORCE_SETUP=1 (redo 1
# and 2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
venv="$ROOT/.venv-min"
py="$venv/bin/python"
pip_flags=(--disable-pip-version-check)
if [[ "${CI:-}" == "true" ]]; then
    pip_flags+=(--progress-bar off)
fi
t0=$SECONDS
say() { printf '[min_env %4ds] %s\n' "$((SECONDS - t0))" "$*"; }
# (without the machine's "Location ... is ignored" notes about its local
# package indexes, one per package)
pip_install() {
    "$py" -m pip install "${pip_flags[@]}" "$@" 2>&1 \
        | { grep -v "^WARNING: Location '.*' is ignored" || true; }
}

# Tests that need nothing but torch, numpy, mmengine and this package.
TESTS=(
    tests/test_models/test_backbones
    tests/test_checkpoint
    tests/test_keymap.py
)
# Tests in those files that check the mmdet/mmseg integration.
DESELECT=(
    tests/test_models/test_backbones/test_rest.py::test_registered_in_downstream_registries
)
# What `pip install .` needs (setup.py packages only mmmetaformer/).
PACKAGE_SOURCES=(setup.py pyproject.toml README.md mmmetaformer)

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
force="${MMMETAFORMER_FORCE_SETUP:-0}"

# --- 1. the environment ---------------------------------------------------------
env_check="
import importlib.util
import mmengine, numpy, safetensors, torch
for absent in ('mmcv', 'mmdet', 'mmseg', 'mmpretrain'):
    assert importlib.util.find_spec(absent) is None, absent + ' is installed'
"
env_stamp_file="$venv/.min-env.stamp"
env_stamp="$(hash_of tools/min_env_tests.sh requirements/min.txt)"
if [[ "$force" != 1 && -f "$env_stamp_file" \
      && "$(cat "$env_stamp_file")" == "$env_stamp" ]] \
      && "$py" -c "$env_check" 2>/dev/null; then
    say "environment up to date: $venv"
else
    rm -f "$env_stamp_file" "$venv/.min-package.stamp"
    if [[ ! -x "$py" ]]; then
        base="${PYTHON:-}"
        if [[ -z "$base" ]]; then
            base="$(ls -d "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.10*/bin/python \
                2>/dev/null | tail -n1 || true)"
            base="${base:-$(command -v python3.10 || true)}"
        fi
        if [[ -z "$base" ]]; then
            echo "min_env_tests: no Python 3.10 found (pyenv, or python3.10 on" \
                 "PATH); set PYTHON=/path/to/python3.10" >&2
            exit 1
        fi
        say "creating $venv with $base ($("$base" --version 2>&1))"
        "$base" -m venv "$venv"
    fi
    say "installing requirements/min.txt (torch 2.1.2 pulls ~2.6 GB of CUDA runtime wheels)"
    pip_install -q -r requirements/min.txt
    "$py" -c "$env_check"
    echo "$env_stamp" > "$env_stamp_file"
    say "environment set up in $((SECONDS - t0)) s"
fi

# --- 2. this package: pip install . ---------------------------------------------
pkg_stamp_file="$venv/.min-package.stamp"
pkg_stamp="$(hash_of setup.py pyproject.toml README.md \
    $(find mmmetaformer -name '*.py' | LC_ALL=C sort))"
if [[ "$force" != 1 && -f "$pkg_stamp_file" \
      && "$(cat "$pkg_stamp_file")" == "$pkg_stamp" ]]; then
    say "mmmetaformer up to date"
else
    rm -f "$pkg_stamp_file"
    say "installing mmmetaformer: pip install ."
    src="$(mktemp -d)"
    cp -r "${PACKAGE_SOURCES[@]}" "$src/"
    find "$src" -name __pycache__ -prune -exec rm -rf {} +
    "$py" -m pip uninstall -q -y mmmetaformer 2>/dev/null || true
    pip_install "$src" | tee "$venv/install.log"
    rm -rf "$src"
    if grep -q '^Collecting' "$venv/install.log"; then
        echo "min_env_tests: 'pip install .' pulled packages (see above):" \
             "the declared requirements are not met by requirements/min.txt" >&2
        exit 1
    fi
    "$py" -m pip check
    echo "$pkg_stamp" > "$pkg_stamp_file"
fi
(cd "$venv" && "$py" -c "
import mmengine, numpy, torch, mmmetaformer
assert 'site-packages' in mmmetaformer.__file__, mmmetaformer.__file__
print('torch', torch.__version__, '| numpy', numpy.__version__,
      '| mmengine', mmengine.__version__, '| mmmetaformer',
      mmmetaformer.__version__, 'from', mmmetaformer.__file__)
")

# --- 3. the tests -----------------------------------------------------------------
run_dir="$(mktemp -d)"
trap 'rm -rf "$run_dir"' EXIT
cp -r tests "$run_dir/"
args=()
for t in "${TESTS[@]}"; do
    [[ -e "$t" ]] && args+=("$t")
done
for t in "${DESELECT[@]}"; do
    args+=(--deselect "$t")
done
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
say "pytest -q ${args[*]} $*"
status=0
(cd "$run_dir" && MMMETAFORMER_REFERENCE="$ROOT/tests/data/reference" \
    "$py" -m pytest -q -p no:cacheprovider --rootdir "$run_dir" \
    "${args[@]}" "$@") || status=$?
say "pytest exited with $status"
exit "$status"
