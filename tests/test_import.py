"""``import mmmetaformer`` registers modules and changes nothing else in the
process: numpy, mmengine's checkpoint loaders and torch's global state are
as they were before the import (checked in a fresh interpreter, because the
test process has imported the package long ago)."""
import json
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

SNAPSHOT = r'''
import json, sys
import numpy as np
import torch
import mmengine.runner.checkpoint as ckpt


def snapshot():
    return dict(
        # submodules imported by other libraries appear as attributes of
        # numpy; anything else added or replaced is a patch
        numpy={name: id(value) for name, value in vars(np).items()
               if not isinstance(value, type(np))},
        numpy_has_in1d=hasattr(np, 'in1d'),
        loaders={prefix: id(loader)
                 for prefix, loader in ckpt.CheckpointLoader._schemes.items()},
        loader_names={prefix: getattr(loader, '__qualname__', repr(loader))
                      for prefix, loader
                      in ckpt.CheckpointLoader._schemes.items()},
        torch_threads=torch.get_num_threads(),
        torch_dtype=str(torch.get_default_dtype()),
        torch_deterministic=torch.are_deterministic_algorithms_enabled(),
        torch_grad=torch.is_grad_enabled(),
        torch_safe_globals=[str(g) for g in
                            torch.serialization.get_safe_globals()],
        torch_load=id(torch.load),
        environ=sorted(__import__('os').environ.items()),
    )


before = snapshot()
import mmmetaformer  # noqa: E402
after = snapshot()
# Registering was the point of the import.
from mmmetaformer.registry import MODELS
assert 'PoolFormer' in MODELS.module_dict
json.dump(dict(before=before, after=after), sys.stdout)
'''


def test_import_changes_no_global_state():
    proc = subprocess.run(
        [sys.executable, '-c', SNAPSHOT], cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    before, after = result['before'], result['after']
    for key in before:
        assert after[key] == before[key], key
