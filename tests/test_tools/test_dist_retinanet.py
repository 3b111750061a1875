"""The README's backbone snippet in mmdet's own RetinaNet config, trained on
2 CPU processes with ``tools/dist_train.sh`` (DDP, gloo), and the rule it
relies on: an output norm exists only for a returned map.

A returned map that the neck ignores (``out_indices=(0, 1, 2, 3)`` with a
RetinaNet / FCOS / ATSS FPN, ``start_level=1``) leaves its output norm
without gradient, and DDP stops ("Expected to have finished reduction in
the prior iteration ...").
"""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from mmmetaformer.registry import MODELS
from ..test_models.test_backbones.tiny_archs import TINY_ARCHS
from .test_train_tools import REPO, _env, _free_port


def readme_snippet():
    """``model`` of the first Python block under "Using the backbones in
    your own configs" in README.md."""
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    section = text.split('## Using the backbones in your own configs', 1)[1]
    code = re.search(r'```python\n(.*?)```', section, re.S).group(1)
    scope = {}
    exec(code, scope)  # dicts only
    return scope['model']


CONFIG = """
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmmetaformer'], allow_failed_imports=False)
model = {model!r}
data_root = {data_root!r}
metainfo = dict(classes=('rectangle', 'ellipse', 'triangle'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(96, 96), keep_ratio=False),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline,
                 filter_cfg=dict(filter_empty_gt=True, min_size=0)))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2,
                 val_interval=1000)
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
param_scheduler = []
optim_wrapper = dict(optimizer=dict(lr=0.001))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
    logger=dict(type='LoggerHook', interval=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
"""


@pytest.fixture(scope='module')
def demo_coco(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo')
    subprocess.run(
        [sys.executable, 'tools/generate_demo_data.py', '--out', str(out),
         '--num-train', '4', '--num-val', '1', '--datasets', 'coco',
         '--image-size', '64', '96'],
        cwd=REPO, env=_env(), check=True, capture_output=True)
    return str(out / 'coco') + '/'


def tiny(model):
    """The snippet's model with a tiny CAFormer (same stage dims layout)
    and a light head; no download."""
    backbone = dict(model['backbone'], init_cfg=None, drop_path_rate=0.0,
                    **TINY_ARCHS[model['backbone']['type']])
    dims = backbone['arch']['embed_dims']
    indices = backbone['out_indices']
    neck = dict(model['neck'], in_channels=[dims[i] for i in indices],
                out_channels=16)
    head = dict(num_classes=3, in_channels=16, feat_channels=16,
                stacked_convs=1)
    return dict(backbone=backbone, neck=neck, bbox_head=head)


def test_readme_snippet_trains_with_two_processes(tmp_path, demo_coco):
    pytest.importorskip('mmdet')
    model = tiny(readme_snippet())
    config = tmp_path / 'retinanet_readme.py'
    config.write_text(CONFIG.format(model=model, data_root=demo_coco))
    work_dir = tmp_path / 'wd'
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir',
         str(work_dir)],
        cwd=REPO, env=_env(PYTHON=sys.executable, PORT=str(_free_port())),
        capture_output=True, text=True, timeout=600)
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert 'did not receive grad' not in output, output
    assert proc.returncode == 0, output
    assert (work_dir / 'iter_2.pth').is_file()


@pytest.mark.parametrize('name', sorted(TINY_ARCHS))
def test_output_norms_only_for_returned_maps(name):
    """With ``out_indices=(1, 2, 3)`` there is no ``norm0``, and every
    trainable parameter gets a gradient from the returned maps (what DDP
    without ``find_unused_parameters`` needs)."""
    torch.manual_seed(0)
    model = MODELS.build(dict(type=name, out_indices=(1, 2, 3),
                              **TINY_ARCHS[name]))
    norms = {n for n, _ in model.named_children() if re.fullmatch(
        r'norm\d', n)}
    assert norms <= {'norm1', 'norm2', 'norm3'}, norms
    outs = model(torch.randn(2, 3, 64, 64))
    assert len(outs) == 3
    sum(o.square().mean() for o in outs).backward()
    no_grad = [n for n, p in model.named_parameters()
               if p.requires_grad and p.grad is None]
    assert no_grad == []
