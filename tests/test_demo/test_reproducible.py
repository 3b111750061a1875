"""The demo run is reproducible: its config fixes the random state, so two
trainings of the demo model on the same data end with the same weights
(one iteration on a tiny generated set keeps this fast)."""
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config

from mmmetaformer.demo import generate_demo_data
from mmmetaformer.launch import (build_runner,
                                 restore_runner_checkpoint_loaders)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo',
                       'retinanet_poolformer_s12_demo.py')


@pytest.fixture(scope='module')
def tiny_demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo_data')) + '/'
    generate_demo_data(root, num_train=2, num_val=1, datasets=('coco', ))
    return root


def _train_one_iteration(root, work_dir):
    """Train the demo config for one iteration (the 2 images in one batch,
    at 64 px) and return the model's weights."""
    cfg = Config.fromfile(DEMO_CONFIG)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = root + 'coco/'
    cfg.val_evaluator.ann_file = root + 'coco/annotations/instances_val.json'
    cfg.train_cfg.max_epochs = 1
    cfg.train_dataloader.batch_size = 2
    for step in cfg.train_dataloader.dataset.pipeline:
        if step.type == 'Resize':
            step.scale = (64, 64)  # speed; RandomFlip still draws
    cfg.custom_hooks = []  # no validation before training
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'demo_repro_{uuid.uuid4().hex[:12]}'
    cfg.visualizer.name = cfg.experiment_name
    runner = build_runner(cfg, DEMO_CONFIG, ['train_dataloader'], 'none')
    runner.train()
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def test_demo_training_is_reproducible(tiny_demo_root, tmp_path):
    threads = torch.get_num_threads()
    try:
        first = _train_one_iteration(tiny_demo_root, tmp_path / 'a')
        second = _train_one_iteration(tiny_demo_root, tmp_path / 'b')
    finally:
        torch.set_num_threads(threads)
        restore_runner_checkpoint_loaders()
    assert first.keys() == second.keys()
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert not different, different[:5]
