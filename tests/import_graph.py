"""The modules a fresh interpreter has after an import. (The package's
import graph and its cycles: tests/test_structure.py.)"""
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Set

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def modules_after_import(module: str) -> Set[str]:
    """The names in ``sys.modules`` of a fresh interpreter after
    ``import <module>``."""
    code = (f'import json, sys; import {module}; '
            'print(json.dumps(sorted(sys.modules)))')
    proc = subprocess.run(
        [sys.executable, '-c', code], cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))
