"""A tiny model, data set and hook for Runner-level tests (checkpoints,
resume, distributed training) that need no downloaded data and train in
well under a second per iteration on one CPU thread.

Registered in mmengine's root registries as ``ToyRunnerNet``,
``ToyRunnerDataset``, ``ToyRankReportHook``, ``ToySaveBarrierHook`` and
``ToyLrRecordHook``;
:func:`build_toy_runner` builds a Runner of them.
"""
import json
import os
import os.path as osp
import time
import uuid

import torch
import torch.nn as nn
from mmengine.dist import get_dist_info
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import Hook
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.registry import DATASETS, HOOKS, MODELS
from torch.utils.data import Dataset


@DATASETS.register_module(force=True)
class ToyRunnerDataset(Dataset):
    """Deterministic 3x8x8 images whose target is their mean value.

    Args:
        num_samples (int): Length.
    """

    def __init__(self, num_samples: int = 16):
        self.num_samples = num_samples

    def __len__(self):
        return self.num_samples

    def __getitem__(self, index):
        gen = torch.Generator().manual_seed(index)
        image = torch.rand(3, 8, 8, generator=gen)
        return dict(inputs=image, target=image.mean().reshape(1), index=index)


@MODELS.register_module(force=True)
class ToyRunnerNet(BaseModel):
    """conv3x3 - norm - ReLU - global pool - linear, with an MSE loss.

    Args:
        norm_cfg (dict): Norm layer config (mmcv ``build_norm_layer``), so
            that SyncBN handling can be tested.
        channels (int): Width of the conv (a config change for resume
            tests).
    """

    def __init__(self, norm_cfg: dict = dict(type='BN'), channels: int = 8):
        super().__init__()
        from mmcv.cnn import build_norm_layer
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.norm = build_norm_layer(norm_cfg, channels)[1]
        self.fc = nn.Linear(channels, 1)

    def forward(self, inputs, target=None, index=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        x = torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3))
        out = self.fc(x)
        if mode == 'loss':
            y = torch.stack(target) if isinstance(target, list) else target
            return dict(loss=((out - y)**2).mean())
        return out


@HOOKS.register_module(force=True)
class ToyRankReportHook(Hook):
    """Write ``rank<r>.json`` into the work dir after training: the sample
    indices this rank trained on, a checksum of its parameters, and the
    types of the wrapper and the norm layer."""

    def before_train(self, runner):
        self.seen = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.seen += [int(i) for i in data_batch['index']]

    def after_train(self, runner):
        rank, world_size = get_dist_info()
        model = runner.model
        inner = model.module if is_model_wrapper(model) else model
        checksum = sum(
            float(p.detach().double().sum()) for p in inner.parameters())
        report = dict(
            rank=rank,
            world_size=world_size,
            seen=self.seen,
            checksum=checksum,
            wrapper=type(model).__name__,
            norm=type(inner.norm).__name__,
            iters=runner.iter)
        with open(osp.join(runner.work_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(report, f)


@HOOKS.register_module(force=True)
class ToySaveBarrierHook(Hook):
    """Test-only: stop the process in the middle of writing a checkpoint, so
    that a test can kill it at that exact moment.

    Active only when the environment variable ``TOY_SAVE_BARRIER`` names a
    file. The ``block_at``-th checkpoint file written through mmengine's
    local file back-end gets half of its bytes (flushed to disk), then that
    file is created as the signal and the process sleeps until it is killed.

    Args:
        block_at (int): Which checkpoint write (1-based) to stop in.
    """

    def __init__(self, block_at: int = 2):
        self.block_at = block_at

    def before_train(self, runner):
        signal_file = os.environ.get('TOY_SAVE_BARRIER')
        if not signal_file:
            return
        original = LocalBackend.put
        writes = [0]
        block_at = self.block_at

        def put(backend, obj, filepath):
            if str(filepath).endswith(('.pth', '.pth.tmp')):
                writes[0] += 1
                if writes[0] == block_at:
                    with open(filepath, 'wb') as f:
                        f.write(obj[:len(obj) // 2])
                        f.flush()
                        os.fsync(f.fileno())
                    with open(signal_file, 'w') as f:
                        f.write(str(filepath))
                    while True:  # until SIGKILL
                        time.sleep(1)
            return original(backend, obj, filepath)

        LocalBackend.put = put


@HOOKS.register_module(force=True)
class ToyLrRecordHook(Hook):
    """Append ``[epoch, iter, lr]`` of every training iteration (the lr the
    iteration uses) to ``lr.jsonl`` in the work dir, one line per run, so
    that a resumed run adds its own line."""

    def before_train(self, runner):
        self.rows = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        lr = runner.optim_wrapper.get_lr()['lr'][0]
        self.rows.append([runner.epoch, runner.iter, lr])

    def after_train(self, runner):
        with open(osp.join(runner.work_dir, 'lr.jsonl'), 'a') as f:
            f.write(json.dumps(self.rows) + '\n')


def build_toy_runner(work_dir, max_iters: int, checkpoint: dict, **kwargs):
    """An iteration-based Runner of :class:`ToyRunnerNet` on 8 samples
    (batch 2, SGD, seed 0, no validation).

    Args:
        work_dir: The work dir.
        max_iters (int): Iterations to train.
        checkpoint (dict): The ``default_hooks.checkpoint`` config.
        **kwargs: More ``Runner`` arguments (``resume``, ``load_from``...).

    Returns:
        mmengine.runner.Runner: The Runner (not yet trained).
    """
    from mmengine.runner import Runner
    return Runner(
        model=ToyRunnerNet(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyRunnerDataset(8),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters,
                       val_interval=1000),
        default_hooks=dict(checkpoint=checkpoint),
        randomness=dict(seed=0),
        experiment_name=f'toy_{uuid.uuid4().hex[:12]}',
        **kwargs)
