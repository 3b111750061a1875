"""Run a piece of a test in a fresh interpreter, so that a crash of the
process (a segmentation fault in a PyTorch kernel, an abort) fails that test
with the signal's name and the Python stack at the crash, instead of killing
the whole test session.

Usage, in a test::

    run_guarded('tests.test_models.test_backbones.training_matrix:train',
                'PoolFormer')

The target is ``module:function``, imported from the directory that holds
the ``tests`` package (the repository root, or the copy the minimal
environment runs from); the arguments must be JSON-serialisable. The child
runs with ``faulthandler`` on and one torch thread.
"""
import json
import signal
import subprocess
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]

_CHILD = '''
import importlib, json, sys
import torch
torch.set_num_threads(1)
module, function = sys.argv[1].split(":")
getattr(importlib.import_module(module), function)(*json.loads(sys.argv[2]))
'''


class CrashGuardError(AssertionError):
    """The guarded call crashed the interpreter or raised."""


def run_guarded(target: str, *args, timeout: float = 900) -> str:
    """Call ``target(*args)`` in a new interpreter and return its stdout.

    Raises:
        CrashGuardError: the child was killed by a signal (named, with the
            last lines of its output: what it was doing and faulthandler's
            stack) or exited non-zero (its traceback).
    """
    proc = subprocess.run(
        [sys.executable, '-X', 'faulthandler', '-c', _CHILD, target,
         json.dumps(args)],
        cwd=_ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode == 0:
        return proc.stdout
    call = f'{target}(*{args!r})'
    tail = '\n'.join((proc.stdout + proc.stderr).splitlines()[-40:])
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f'signal {-proc.returncode}'
        raise CrashGuardError(
            f'{call} crashed the interpreter ({name}); last output:\n{tail}')
    raise CrashGuardError(
        f'{call} failed (exit code {proc.returncode}):\n{tail}')
