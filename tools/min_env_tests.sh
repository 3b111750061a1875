#!/usr/bin/env bash
# The second CI environment: the oldest torch/numpy this package claims
# (requirements/min.txt: torch 2.1.2, numpy 1.26.4), mmengine and this package
# only -- no mmcv, mmdet, mmseg or mmpretrain -- in <repo>/.venv-min, then the
# backbone and checkpoint tests there.
#
# Usage:  bash tools/min_env_tests.sh [pytest options...]
#
# Idempotent like tools/setup_env.sh: a stamp (hash of this script, setup.py,
# pyproject.toml and requirements/min.txt) and a passing import
# check skip the set-up. This package is installed the way a user installs it
# into an existing environment: `pip install .` (a real, non-editable install
# from a built wheel; its declared dependencies are already satisfied, so
# nothing else is pulled), and the tests run against that installed copy.
#
# Environment: PYTHON (interpreter for a new .venv-min; default: pyenv's
# Python 3.10, else python3.10 on PATH -- the oldest Python this package
# declares), MMMETAFORMER_FORCE_SETUP=1 (ignore the stamp).
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
# (without the machine's "Location ... is ignored" notes for its local
# package indexes, one per package)
pip_install() {
    "$py" -m pip install "${pip_flags[@]}" "$@" 2>&1 \
        | { grep -v "^WARNING: Location '.*' is ignored" || true; }
}

# Tests that need nothing but torch, numpy, mmengine and this package.
TESTS=(
    tests/test_models/test_backbones
    tests/test_checkpoint.py
    tests/test_keymap.py
)
# Tests in those files that check the mmdet/mmseg integration.
DESELECT=(
    tests/test_models/test_backbones/test_rest.py::test_registered_in_downstream_registries
)

check_code="
import importlib.util, sys
import numpy, torch, mmengine, mmmetaformer
for absent in ('mmcv', 'mmdet', 'mmseg', 'mmpretrain'):
    assert importlib.util.find_spec(absent) is None, absent + ' is installed'
assert 'site-packages' in mmmetaformer.__file__, mmmetaformer.__file__
print('torch', torch.__version__, '| numpy', numpy.__version__,
      '| mmengine', mmengine.__version__, '| mmmetaformer',
      mmmetaformer.__version__, 'from', mmmetaformer.__file__)
"
stamp_file="$venv/.mmmetaformer-min-setup.stamp"
stamp="$(cat tools/min_env_tests.sh setup.py pyproject.toml \
    requirements/min.txt | sha256sum | cut -d' ' -f1)"
check() { (cd "$venv" && "$py" -c "$check_code"); }  # not from the source tree

if [[ "${MMMETAFORMER_FORCE_SETUP:-0}" != 1 && -f "$stamp_file" \
      && "$(cat "$stamp_file")" == "$stamp" ]] && check; then
    say "environment up to date: $venv"
else
    rm -f "$stamp_file"
    if [[ ! -x "$py" ]]; then
        base="${PYTHON:-}"
        if [[ -z "$base" ]]; then
            base="$(ls -d "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.10*/bin/python 2>/dev/null | tail -n1 || true)"
            base="${base:-$(command -v python3.10 || true)}"
        fi
        if [[ -z "$base" ]]; then
            echo "min_env_tests: no Python 3.10 found (pyenv or python3.10 on PATH); set PYTHON=..." >&2
            exit 1
        fi
        say "creating $venv with $base ($("$base" --version 2>&1))"
        "$base" -m venv "$venv"
    fi
    say "installing requirements/min.txt (torch 2.1.2 pulls ~2.6 GB of CUDA runtime wheels)"
    pip_install -q -r requirements/min.txt
    say "installing mmmetaformer: pip install ."
    # A fresh copy of the sources: the install must not depend on (or
    # leave) build artefacts in the working tree.
    src="$(mktemp -d)"
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [[ -f "$f" ]] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf - | tar -xf - -C "$src"
    "$py" -m pip uninstall -q -y mmmetaformer 2>/dev/null || true
    # Its declared dependencies must already be met: nothing is pulled.
    pip_install "$src" | tee "$venv/install.log"
    rm -rf "$src"
    if grep -q '^Collecting' "$venv/install.log"; then
        echo "min_env_tests: 'pip install .' pulled packages (see above)" >&2
        exit 1
    fi
    "$py" -m pip check
    check
    echo "$stamp" > "$stamp_file"
    say "set up in $((SECONDS - t0)) s"
fi

# Run the tests against the installed package, not the working tree: from a
# copy of tests/ (with --rootdir there) so that the repository root is not on
# sys.path.
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
