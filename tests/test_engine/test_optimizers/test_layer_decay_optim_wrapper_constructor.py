"""LayerDecayOptimWrapperConstructor: per-parameter lr and weight decay from
the backbone's own layer / stage ids."""
import pytest
import torch
import torch.nn as nn
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

from mmmetaformer.engine import LayerDecayOptimWrapperConstructor
from mmmetaformer.models.backbones import ResTV2

ARCH = dict(embed_dims=[8, 16, 16, 16], depths=[1, 2, 1, 1],
            num_heads=[1, 2, 2, 2])
LR, WD, RATE = 1e-3, 0.05, 0.5


class Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = ResTV2(ARCH)
        self.head = nn.Linear(16, 3)


def build(decay_type, model=None):
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type='mmmetaformer.LayerDecayOptimWrapperConstructor',
             optim_wrapper_cfg=dict(
                 type='OptimWrapper',
                 optimizer=dict(type='AdamW', lr=LR, weight_decay=WD)),
             paramwise_cfg=dict(decay_rate=RATE, decay_type=decay_type)))
    assert isinstance(constructor, LayerDecayOptimWrapperConstructor)
    model = model or Model()
    return model, constructor(model).optimizer


def settings(model, optimizer):
    """Parameter name -> (lr, weight decay) as the optimizer holds them."""
    by_id = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            by_id[id(p)] = (group['lr'], group['weight_decay'])
    return {n: by_id[id(p)] for n, p in model.named_parameters()}


def test_stage_wise():
    model, optimizer = build('stage_wise')
    got = settings(model, optimizer)
    # ids: stem 0, stage i -> i + 1, output norms and head 5 (of 6)
    expected_scale = {
        'backbone.stem.proj.0.weight': RATE**5,
        'backbone.stages.0.blocks.0.mlp.fc1.weight': RATE**4,
        'backbone.stages.1.downsample.proj.0.weight': RATE**3,
        'backbone.stages.1.blocks.1.token_mixer.q.weight': RATE**3,
        'backbone.stages.2.blocks.0.token_mixer.kv.weight': RATE**2,
        'backbone.stages.3.blocks.0.mlp.fc2.weight': RATE**1,
        'head.weight': 1.0,
    }
    for name, scale in expected_scale.items():
        assert got[name] == (pytest.approx(LR * scale), WD), name
    # no weight decay on 1-D parameters (biases, norm weights), same lr
    assert got['backbone.stem.proj.1.weight'] == (pytest.approx(LR * RATE**5),
                                                  0.0)
    assert got['backbone.norm3.weight'] == (pytest.approx(LR), 0.0)
    assert got['head.bias'] == (pytest.approx(LR), 0.0)
    assert len(got) == len(list(model.parameters()))


def test_layer_wise_uses_block_depth():
    model, optimizer = build('layer_wise')
    got = settings(model, optimizer)
    num_layers = sum(ARCH['depths']) + 2
    for name, param in model.named_parameters():
        layer_id, total = model.backbone.get_layer_depth(name, 'backbone.')
        assert total == num_layers
        assert got[name][0] == pytest.approx(
            LR * RATE**(num_layers - 1 - layer_id)), name
    # blocks 0..4 over the stages: stage 1's second block is layer 3
    assert got['backbone.stages.1.blocks.1.mlp.fc1.weight'][0] == \
        pytest.approx(LR * RATE**(num_layers - 1 - 3))


def test_frozen_parameters_are_left_out():
    model = Model()
    model.backbone = ResTV2(ARCH, frozen_stages=1)
    model, optimizer = build('stage_wise', model)
    held = {id(p) for g in optimizer.param_groups for p in g['params']}
    for name, param in model.named_parameters():
        assert (id(param) in held) == param.requires_grad, name


@pytest.mark.parametrize('paramwise_cfg, message', [
    (dict(decay_type='stage_wise'), 'decay_rate'),
    (dict(decay_rate=1.5), 'decay_rate'),
    (dict(decay_rate=0.9, decay_type='block'), 'decay_type'),
    (dict(decay_rate=0.9, num_layers=6), 'num_layers'),
])
def test_argument_errors(paramwise_cfg, message):
    with pytest.raises(ValueError, match=message):
        LayerDecayOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW', lr=LR)), paramwise_cfg)


def test_model_without_depth_method():
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    constructor = LayerDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=LR)), dict(decay_rate=0.9))
    with pytest.raises(ValueError, match='get_layer_depth'):
        constructor(model)


def test_one_step_moves_each_parameter_by_its_group_lr():
    """One AdamW step. The first Adam update of an element is
    ``lr * g / (|g| + eps)``, i.e. +-lr where the gradient is not tiny, so
    the largest change of a parameter without weight decay is the lr of its
    group: the stem moves RATE**5 times less than the head."""
    model, optimizer = build('stage_wise')
    params = dict(model.named_parameters())
    before = {n: p.detach().clone() for n, p in params.items()}
    torch.manual_seed(0)
    feats = model.backbone(torch.randn(2, 3, 32, 32))
    model.head(feats[-1].mean((2, 3))).square().sum().backward()
    optimizer.step()
    expected_scale = {  # 1-D parameters: no weight decay
        'backbone.stem.proj.1.weight': RATE**5,
        'backbone.stages.0.blocks.0.norm1.bias': RATE**4,
        'backbone.stages.1.blocks.1.mlp.fc1.bias': RATE**3,
        'backbone.stages.2.blocks.0.token_mixer.kv.bias': RATE**2,
        'backbone.stages.3.blocks.0.mlp.fc2.bias': RATE,
        'backbone.norm3.weight': 1.0,
        'head.bias': 1.0,
    }
    for name, scale in expected_scale.items():
        change = (params[name].detach() - before[name]).abs().max().item()
        assert change == pytest.approx(LR * scale, rel=1e-3), name
