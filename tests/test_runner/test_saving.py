"""Tests of mmmetaformer.runner.saving: atomic checkpoints, output
directories checked before training."""
import os

import pytest
import torch
from mmengine.config import Config

from mmmetaformer.runner import saving


@pytest.mark.parametrize('hooks,expected', [
    (dict(checkpoint=dict(type='CheckpointHook', interval=2)),
     dict(type='mmmetaformer.AtomicCheckpointHook', interval=2)),
    (dict(logger=dict(type='LoggerHook')),
     dict(type='mmmetaformer.AtomicCheckpointHook', interval=1)),
    (dict(checkpoint=None), None),
    (dict(checkpoint=dict(type='MyHook')), dict(type='MyHook')),
])
def test_use_atomic_checkpoints(hooks, expected):
    cfg = Config(dict(default_hooks=hooks))
    changes = saving.use_atomic_checkpoints(cfg)
    assert cfg.default_hooks.checkpoint == expected
    assert bool(changes) == (expected is not None
                             and expected['type'] != 'MyHook')


def test_check_output_dirs_names_an_unwritable_directory(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    cfg = Config(dict(work_dir=str(tmp_path / 'wd'), default_hooks=dict(
        checkpoint=dict(out_dir=str(blocker / 'out')))))
    with pytest.raises(saving.OutputDirError) as info:
        saving.check_output_dirs(cfg)
    assert str(info.value).startswith(
        f'Cannot write to {blocker}/out/wd (default_hooks.checkpoint.out_dir)'
        ': ')
    assert '--cfg-options default_hooks.checkpoint.out_dir=...' in str(
        info.value)
    cfg.work_dir = str(blocker / 'wd')
    with pytest.raises(saving.OutputDirError, match=r'\(work_dir\)'):
        saving.check_output_dirs(cfg)
    if os.geteuid() != 0:  # root writes into a read-only directory
        read_only = tmp_path / 'ro'
        read_only.mkdir(mode=0o500)
        cfg = Config(dict(work_dir=str(read_only)))
        with pytest.raises(saving.OutputDirError, match='PermissionError'):
            saving.check_output_dirs(cfg)


def test_check_output_dirs_free_space(tmp_path, monkeypatch):
    cfg = Config(dict(work_dir=str(tmp_path / 'wd'),
                      default_hooks=dict(checkpoint=dict(interval=1))))
    saving.check_output_dirs(cfg, needed_bytes=1000)
    usage = saving.shutil.disk_usage(str(tmp_path))
    monkeypatch.setattr(saving.shutil, 'disk_usage',
                        lambda path: usage._replace(free=2**20))
    with pytest.raises(saving.OutputDirError) as info:
        saving.check_output_dirs(cfg, needed_bytes=3 * 2**20)
    assert str(info.value).startswith(
        f'Only 1.0 MiB free in {tmp_path / "wd"} (work_dir); one checkpoint '
        'needs about 3.0 MiB')


@pytest.mark.parametrize('optimizer', ['SGD', 'AdamW'])
def test_estimate_checkpoint_bytes_matches_a_saved_checkpoint(
        tmp_path, optimizer):
    """The estimate against the size of a checkpoint really written
    (weights + optimizer state after a step, torch.save)."""
    from mmmetaformer.models.backbones import PoolFormer
    model = PoolFormer('s12')
    kwargs = dict(momentum=0.9) if optimizer == 'SGD' else {}
    opt = getattr(torch.optim, optimizer)(model.parameters(), lr=0.1,
                                          **kwargs)
    sum(o.sum() for o in model(torch.randn(1, 3, 32, 32))).backward()
    opt.step()
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    optimizer=opt.state_dict()), path)
    estimate = saving.estimate_checkpoint_bytes(model, f'mmengine.{optimizer}')
    assert 0.95 < estimate / path.stat().st_size < 1.05
