"""mmmetaformer.checkpoint.allow_list: the non-tensor objects a checkpoint
from outside may hold (what mmengine's Runner and mmdet 2.x / mmseg 0.x runs
store), per torch version, and the refusal of everything else."""
import argparse
import os
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from mmmetaformer.checkpoint import (CheckpointError, allow_list,
                                     extract_state_dict, load_checkpoint_file)

TORCH = allow_list._torch_version()
needs_full_allow_list = pytest.mark.skipif(
    TORCH < (2, 6), reason='name-mapped allow-list entries need torch >= 2.6 '
    '(older versions: test_torch_without_allow_list_api)')


def _allowed():
    """torch's current allow-list, order-independent."""
    if not hasattr(torch.serialization, 'get_safe_globals'):
        return []
    return sorted(map(repr, torch.serialization.get_safe_globals()))


def runner_style_checkpoint():
    """What mmengine's Runner (mmdet 3.x / mmseg 1.x) and single-GPU
    mmdet 2.x / mmseg 0.x runs store next to the weights."""
    return {
        'meta': {
            'seed': np.int64(1234),  # mmdet 2.x / mmseg 0.x
            'epoch': 12,
            'dataset_meta': {'classes': ('a', 'b')},
            'experiment_name': 'x',
        },
        'message_hub': {
            'log_scalars': {
                'train/loss': HistoryBuffer([0.5, 0.4], [1, 1]),
            },
            'runtime_info': {
                'iter': np.int64(2),
                'lr': np.float32(0.01),
                'loss_curve': np.arange(4, dtype=np.float64),
                'dtype': np.dtype('float16'),
            },
        },
        'args': argparse.Namespace(lr=0.1),  # DeiT-style scripts
        'state_dict': {'backbone.w': torch.ones(2, 3)},
    }


def _rename_globals(path, old: bytes, new: bytes):
    """Rewrite the pickle inside a torch zip file, as if it had been written
    where ``old`` module names were ``new`` (e.g. numpy 1.x)."""
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as dst:
        for info, data in entries:
            if info.filename.endswith('data.pkl'):
                assert old in data
                data = data.replace(old, new)
            dst.writestr(info, data)


@needs_full_allow_list
def test_runner_and_mmdet2_checkpoints_are_read(tmp_path):
    """Files of the user's own mmdet 3.x / mmseg 1.x (HistoryBuffer, numpy)
    and mmdet 2.x / mmseg 0.x runs (numpy seed) load with weights_only."""
    path = str(tmp_path / 'epoch_12.pth')
    torch.save(runner_style_checkpoint(), path)
    before = _allowed()
    ckpt = load_checkpoint_file(path)
    assert ckpt['meta']['seed'] == 1234
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.mean() == 0.45
    assert ckpt['message_hub']['runtime_info']['loss_curve'].tolist() == [
        0, 1, 2, 3]
    assert ckpt['args'].lr == 0.1
    assert extract_state_dict(ckpt, 'backbone.')['w'].shape == (2, 3)
    # the allow-list is scoped to the read
    assert _allowed() == before


@needs_full_allow_list
def test_other_numpy_major_names_are_read(tmp_path):
    """numpy 1.x wrote ``numpy.core.multiarray._reconstruct``/``scalar``,
    numpy 2.x ``numpy._core...``: a file of the other major version loads."""
    path = str(tmp_path / 'np.pth')
    torch.save(runner_style_checkpoint(), path)
    names = (b'numpy._core.multiarray', b'numpy.core.multiarray')
    if int(np.__version__.split('.')[0]) < 2:
        names = names[::-1]
    _rename_globals(path, *names)
    ckpt = load_checkpoint_file(path)
    assert ckpt['meta']['seed'] == 1234
    assert ckpt['message_hub']['runtime_info']['loss_curve'].sum() == 6


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo pwned',))


class _EvilGetattr:

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__subclasses__'))


@pytest.mark.parametrize('payload', [_Evil(), _EvilGetattr()])
def test_code_in_a_checkpoint_is_refused(tmp_path, payload):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(1)}, 'x': payload}, path)
    with pytest.raises(CheckpointError,
                       match=r'Refused to read .*evil\.pth'):
        load_checkpoint_file(path)


def test_torch_without_allow_list_api(tmp_path, monkeypatch):
    """torch < 2.4 (no allow-list API): tensor-only files load; files with
    numpy / mmengine objects get one error that says why."""
    plain = str(tmp_path / 'plain.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}}, plain)
    runner = str(tmp_path / 'runner.pth')
    torch.save(runner_style_checkpoint(), runner)
    monkeypatch.setattr(allow_list, '_torch_version', lambda: (2, 1))
    monkeypatch.delattr(torch.serialization, 'safe_globals', raising=False)
    monkeypatch.delattr(torch.serialization, 'add_safe_globals',
                        raising=False)
    assert load_checkpoint_file(plain)['state_dict']['w'].sum() == 2
    with pytest.raises(CheckpointError,
                       match=r'runner\.pth .*needs torch >= 2\.6'):
        load_checkpoint_file(runner)


@pytest.mark.skipif(TORCH < (2, 4), reason='torch < 2.4 has no allow-list')
def test_torch_2_4_add_safe_globals_is_restored(tmp_path, monkeypatch):
    """torch 2.4 has add_safe_globals but no context manager: the entries
    are removed again after the read."""
    path = str(tmp_path / 'np.pth')
    torch.save({'state_dict': {'w': torch.ones(2)},
                'meta': {'seed': np.int64(3)}}, path)
    monkeypatch.setattr(allow_list, '_torch_version', lambda: (2, 4))
    monkeypatch.delattr(torch.serialization, 'safe_globals')
    before = _allowed()
    assert load_checkpoint_file(path)['meta']['seed'] == 3
    assert _allowed() == before
