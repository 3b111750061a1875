"""One contract for every registered backbone (models/backbones/training.py
and base.py): layer-decay ids from the family's real stages and blocks,
what ``frozen_stages`` counts, ``imagenet_url``, the arch parser and
``with_cp`` in construction. Expected values are written here per family
(from the tiny archs' data), not read back from the implementation."""
import pytest
import torch

from mmmetaformer.models.backbones import base
from mmmetaformer.models.backbones.pit import PiT, PiTStage
from mmmetaformer.registry import MODELS
from .tiny_archs import ALL_TINY_ARCHS

FAMILIES = sorted(ALL_TINY_ARCHS)

#: Stages of every family's network (its ``stages.{i}`` modules).
NUM_STAGES = dict({name: 4 for name in ALL_TINY_ARCHS}, PiT=3, MLPMixer=1,
                  ResMLP=1)
#: What ``frozen_stages`` counts: stages, except in the single-stage MLP
#: trunks (blocks, as mmpretrain's VisionTransformer counts its layers).
FROZEN_UNIT = dict({name: 'stage' for name in ALL_TINY_ARCHS},
                   MLPMixer='block', ResMLP='block')


def build(name, **kwargs):
    torch.manual_seed(0)
    return MODELS.build(dict(type=name, **ALL_TINY_ARCHS[name], **kwargs))


def tiny_depths(name):
    """The block count of each stage, from the tiny arch dict."""
    depths = ALL_TINY_ARCHS[name]['arch']['depths']
    return [depths] if isinstance(depths, int) else list(depths)


def expected_ids(param_name, depths, block_wise):
    """The id a parameter must get: stem 0, stage i i + 1 (block-wise: block
    k over all stages k + 1, a downsampler with its stage's first block),
    anything else the last id."""
    last = (sum(depths) if block_wise else len(depths)) + 1
    parts = param_name.split('.')
    if parts[0] == 'stem':
        return 0
    if parts[0] != 'stages':
        return last
    stage = int(parts[1])
    if not block_wise:
        return stage + 1
    block = int(parts[3]) if parts[2] == 'blocks' else 0
    return sum(depths[:stage]) + block + 1


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize('method, block_wise', [('get_stage_depth', False),
                                                ('get_layer_depth', True)])
def test_layer_decay_ids_follow_the_real_structure(name, method, block_wise):
    """Stage-wise: len(stages) + 2 ids (PiT 5, MLPMixer / ResMLP 3, the
    others 6), each used; it was always 6, leaving PiT's id 4 and the MLP
    trunks' ids 2-4 empty. Layer-wise: sum(depths) + 2."""
    model = build(name)
    depths = tiny_depths(name)
    assert len(depths) == NUM_STAGES[name] == len(model.stages)
    num_ids = (sum(depths) if block_wise else NUM_STAGES[name]) + 2
    depth_of = getattr(model, method)
    seen = set()
    for param_name, _ in model.named_parameters():
        got = depth_of('backbone.' + param_name, 'backbone.')
        assert got == (expected_ids(param_name, depths, block_wise),
                       num_ids), param_name
        seen.add(got[0])
    assert seen == set(range(num_ids)), 'every id has parameters'
    assert depth_of('decode_head.conv.weight', 'backbone.') == (num_ids - 1,
                                                                num_ids)


@pytest.mark.parametrize('name', FAMILIES)
def test_frozen_stages_counts_stages_or_documented_blocks(name):
    """``frozen_stages=1`` freezes the stem and the first stage (with its
    output norm), or the stem and the first block in MLPMixer / ResMLP; the
    largest value is the number of stages (blocks)."""
    model = build(name, frozen_stages=1).train()
    unit = FROZEN_UNIT[name]
    assert model.frozen_unit == unit
    bound = NUM_STAGES[name] if unit == 'stage' else sum(tiny_depths(name))
    assert model.max_frozen_stages() == bound
    with pytest.raises(ValueError, match=rf'\[-1, {bound}\]'):
        build(name, frozen_stages=bound + 1)
    first = model.stages[0] if unit == 'stage' else model.stages[0].blocks[0]
    frozen = {id(p) for m in (model.stem, first) for p in m.parameters()}
    level_norm = getattr(model, f'norm{model.stage_levels[0]}', None) if (
        unit == 'stage') else None
    if level_norm is not None:
        frozen |= {id(p) for p in level_norm.parameters()}
    free = dict(build(name).named_parameters())  # some are fixed by design
    for param_name, param in model.named_parameters():
        assert param.requires_grad is (id(param) not in frozen and free[
            param_name].requires_grad), param_name
    assert not first.training and not model.stem.training


def test_pit_freezes_the_norm_of_the_stage_level():
    """PiT's stage 0 is output level 1: frozen_stages=1 freezes norm1, not
    norm0 (the norm of the upsampled level, a new layer)."""
    model = build('PiT', frozen_stages=1)
    assert not any(p.requires_grad for p in model.norm1.parameters())
    assert all(p.requires_grad for p in model.norm0.parameters())
    assert all(p.requires_grad for p in model.upsample.parameters())


#: One arch with an official release per family and the URL it must give.
URLS = {
    'PoolFormer': ('s12', 'https://github.com/sail-sg/poolformer/releases/'
                   'download/v1.0/poolformer_s12.pth.tar'),
    'CycleMLP': ('b2', 'https://github.com/ShoufaChen/CycleMLP/releases/'
                 'download/v0.1/CycleMLP_B2.pth'),
    'PoolFormerV2': ('s24', 'https://huggingface.co/sail/dl/resolve/main/'
                     'poolformerv2/poolformerv2_s24.pth'),
    'IdentityFormer': ('m36', 'https://huggingface.co/sail/dl/resolve/main/'
                       'identityformer/identityformer_m36.pth'),
    'RandFormer': ('s12', 'https://huggingface.co/sail/dl/resolve/main/'
                   'randformer/randformer_s12.pth'),
    'ConvFormer': ('b36', 'https://huggingface.co/sail/dl/resolve/main/'
                   'convformer/convformer_b36.pth'),
    'CAFormer': ('s18', 'https://huggingface.co/sail/dl/resolve/main/'
                 'caformer/caformer_s18.pth'),
    'PiT': ('xs', 'https://github.com/rwightman/pytorch-image-models/'
            'releases/download/v0.1-pit-weights/pit_xs_781.pth'),
    'MLPMixer': ('l16', 'https://storage.googleapis.com/mixer_models/'
                 'imagenet1k/Mixer-L_16.npz'),
    'ResMLP': ('s36', 'https://dl.fbaipublicfiles.com/deit/'
               'resmlp_36_dist.pth'),
}


@pytest.mark.parametrize('name', FAMILIES)
def test_every_family_has_imagenet_url(name):
    """PoolFormer and CycleMLP had only a module constant. ResT / ResTV2
    have no direct URL: the error says where the weights are."""
    cls = MODELS.get(name)
    assert (cls.imagenet_url.__func__ is not
            base.MetaFormerBackbone.imagenet_url.__func__)
    if name in URLS:
        arch, url = URLS[name]
        assert cls.imagenet_url(arch) == url
    else:
        with pytest.raises(ValueError, match='no direct-download.*Baidu'):
            cls.imagenet_url(sorted(cls.arch_settings)[0])
    with pytest.raises(ValueError, match='valid choices'):
        cls.imagenet_url('no_such_arch')


def test_pit_uses_the_shared_arch_parser():
    """PiT had its own parse_arch; ``resample`` was not validated."""
    assert 'parse_arch' not in vars(PiT)
    arch = dict(ALL_TINY_ARCHS['PiT']['arch'])
    assert PiT.parse_arch(dict(arch, mlp_ratios=2))['mlp_ratios'] == [2] * 3
    with pytest.raises(ValueError, match=r"arch\['resample'\] is 'yes'; it "
                       'must be True or False'):
        PiT(dict(arch, resample='yes'))
    with pytest.raises(ValueError, match=r"arch\['mlp_ratios'\] must be 3 "
                       r'values \(one per stage\)'):
        PiT(dict(arch, mlp_ratios=[4, 4]))
    with pytest.raises(ValueError, match=r"arch\['depths'\] of stage 1 is "
                       '2.0; each entry must be a positive int'):
        PiT(dict(arch, depths=[1, 2.0, 1]))


def test_pit_stage_takes_with_cp_in_construction():
    """PiT set ``stage.with_cp`` after building each stage."""
    assert PiTStage(None, [], with_cp=True).with_cp
    assert not PiTStage(None, []).with_cp
    assert all(stage.with_cp for stage in build('PiT', with_cp=True).stages)


def test_names_stay_importable_from_base():
    """base.py was split by concern; what it defined still imports."""
    for name in ('NUM_STAGES', 'ARCH_KINDS', 'FOREIGN_ARGUMENTS', 'ArchKey',
                 'MetaFormerBlock', 'MetaFormerStage', 'MetaFormerBackbone',
                 'INITIALISERS', 'cp'):
        assert hasattr(base, name), name
    assert base.cp is torch.utils.checkpoint
