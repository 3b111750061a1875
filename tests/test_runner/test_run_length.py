"""Tests of mmmetaformer.runner.run_length: --epochs / --iters."""
import os

import pytest
from mmengine.config import Config

from mmmetaformer.runner import run_length

REPO = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CONFIG = os.path.join(REPO, 'configs', 'demo',
                           'retinanet_poolformer_s12_demo.py')


def test_rescale_run_length_demo_config():
    cfg = Config.fromfile(DEMO_CONFIG)
    assert cfg.train_cfg.max_epochs == 24  # what the figures below assume
    changes = run_length.rescale_run_length(cfg, epochs=2)
    assert cfg.train_cfg.max_epochs == 2
    assert cfg.train_cfg.val_interval == 2
    assert cfg.default_hooks.checkpoint.interval == 1  # 4 of 24 epochs
    warmup, cosine = cfg.param_scheduler
    assert (cosine.begin, cosine.end) == (0, 2)
    assert (warmup.begin, warmup.end) == (0, 100)  # iterations: kept
    assert changes == [
        '--epochs 2: train_cfg.max_epochs 24 -> 2',
        '--epochs 2: train_cfg.val_interval 24 -> 2',
        '--epochs 2: param_scheduler[0] (LinearLR) kept: counted in '
        'iterations (begin=0, end=100)',
        '--epochs 2: param_scheduler[1].end (CosineAnnealingLR) 24 -> 2',
        '--epochs 2: default_hooks.checkpoint.interval 4 -> 1',
    ]


def test_rescale_run_length_step_schedule():
    # mmdet's 1x schedule: 12 epochs, steps at 8 and 11.
    cfg = Config(
        dict(
            train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=12,
                           val_interval=1),
            param_scheduler=[
                dict(type='LinearLR', by_epoch=False, begin=0, end=500),
                dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
                     milestones=[8, 11])
            ],
            default_hooks=dict(checkpoint=dict(interval=4, save_begin=6))))
    run_length.rescale_run_length(cfg, epochs=24)
    assert cfg.train_cfg == dict(type='EpochBasedTrainLoop', max_epochs=24,
                                 val_interval=2)
    assert cfg.param_scheduler[1].milestones == [16, 22]
    assert cfg.param_scheduler[1].end == 24
    assert cfg.param_scheduler[0].end == 500
    assert cfg.default_hooks.checkpoint == dict(interval=8, save_begin=12)
    # Shorter: positions are rounded and stay >= 1.
    run_length.rescale_run_length(cfg, epochs=3)
    assert cfg.param_scheduler[1].milestones == [2, 3]
    assert cfg.train_cfg.val_interval == 1


def test_rescale_run_length_iteration_config():
    # mmseg's 160k schedule.
    cfg = Config(
        dict(
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=160000,
                           val_interval=16000),
            param_scheduler=[
                dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0,
                     end=160000, by_epoch=False)
            ],
            default_hooks=dict(
                checkpoint=dict(by_epoch=False, interval=16000))))
    changes = run_length.rescale_run_length(cfg, iters=1000)
    assert cfg.train_cfg.max_iters == 1000
    assert cfg.train_cfg.val_interval == 100
    assert cfg.param_scheduler[0].end == 1000
    assert cfg.default_hooks.checkpoint.interval == 100
    assert len(changes) == 4


def test_rescale_run_length_errors():
    cfg = Config(dict(train_cfg=dict(max_iters=100)))
    with pytest.raises(ValueError, match='use --iters N'):
        run_length.rescale_run_length(cfg, epochs=2)
    with pytest.raises(ValueError, match='--iters must be an integer >= 1'):
        run_length.rescale_run_length(cfg, iters=0)
    with pytest.raises(ValueError, match='exactly one'):
        run_length.rescale_run_length(cfg, epochs=1, iters=1)
    with pytest.raises(ValueError, match='neither'):
        run_length.rescale_run_length(Config(dict(train_cfg=dict())), epochs=1)
