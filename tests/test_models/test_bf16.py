"""The bfloat16 path: ``torch.autocast('cpu', dtype=torch.bfloat16)`` on every
family.

* on the parity weights (real scale), at a small size: finite maps of one
  dtype, each within ``max(1e-2, S * 2^-9)`` of float32 (relative L2 error;
  ``S`` is the network's measured float32-vs-float64 rounding amplification,
  see ``tools/benchmarks/bf16_check.py``, which runs the same check at
  detection size, 800x1333: a benchmark-script check, minutes on 2 cores);
* ResT v1's attention normalisation runs in float32 under autocast;
* on the tiny archs: one output dtype, and a bf16 training step on demo
  scenes (``mmmetaformer.demo.shapes``) lowers the loss as float32 does.
"""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmmetaformer.demo.shapes import render_scene
from mmmetaformer.models.layers import emsa
from mmmetaformer.registry import MODELS
from .test_backbones.tiny_archs import TINY_ARCHS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FAMILIES = sorted(TINY_ARCHS)


def _load_check():
    """tools/benchmarks/bf16_check.py as a module (tools is not a package)."""
    path = osp.join(REPO, 'tools', 'benchmarks', 'bf16_check.py')
    spec = importlib.util.spec_from_file_location('bf16_check', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECK = _load_check()


@pytest.mark.parametrize('variant', CHECK.DEFAULT_VARIANTS)
def test_bf16_close_to_float32_on_parity_weights(variant):
    model = CHECK.build_parity_model(variant)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 96, 160, generator=generator) * 2 - 1
    errors, dtypes, finite = CHECK.bf16_errors(model, x)
    assert finite
    assert len(set(dtypes)) == 1, dtypes
    bounds = CHECK.error_bounds(CHECK.fp32_sensitivity(model, x))
    assert all(e <= b for e, b in zip(errors, bounds)), (errors, bounds)


def test_error_bound():
    assert CHECK.error_bounds([1.0, 5120.0]) == [1e-2, 10.0]
    assert CHECK.error_bounds([1.0], tolerance=0.5) == [0.5]


def test_rest_v1_attention_normalisation_runs_in_float32(monkeypatch):
    """bfloat16 cannot resolve the spread of near-uniform softmax maps that
    the InstanceNorm divides by: logits, softmax and norm stay float32."""
    seen = []
    original = emsa.instance_norm_attention

    def spy(attn, *args, **kwargs):
        seen.append(attn.dtype)
        return original(attn, *args, **kwargs)

    monkeypatch.setattr(emsa, 'instance_norm_attention', spy)
    torch.manual_seed(0)
    mixer = emsa.EMSA(16, num_heads=2, sr_ratio=2, head_transform=True)
    x = torch.randn(1, 8, 10, 16)
    with torch.no_grad():
        expected = mixer(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = mixer(x)
    assert seen == [torch.float32, torch.float32]
    assert out.dtype == torch.bfloat16  # the projection still autocasts
    assert ((out.float() - expected).norm() / expected.norm()) < 2e-2


def _tiny(name):
    torch.manual_seed(0)
    return MODELS.build(dict(type=name, **TINY_ARCHS[name]))


@pytest.mark.parametrize('name', FAMILIES)
def test_bf16_outputs_share_one_dtype(name):
    """ConvFormer / CAFormer used to return bfloat16 maps from stages 0-1
    and float32 maps from the stages with residual scales."""
    model = _tiny(name).eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(torch.randn(1, 3, 64, 96))
    assert len({o.dtype for o in outs}) == 1, [o.dtype for o in outs]
    assert all(torch.isfinite(o.float()).all() for o in outs)


def _demo_batch(num=4, size=64):
    """Demo scenes (shapes on textured backgrounds) and their foreground
    masks at stride 4."""
    rng = np.random.default_rng(0)
    images, masks = [], []
    for _ in range(num):
        img, shapes = render_scene(rng, size, size, max_objects=3)
        mask = np.zeros((size, size), np.float32)
        for shape in shapes:
            mask[shape.mask] = 1.0
        images.append(img)
        masks.append(mask)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    x = x / 127.5 - 1.0
    target = F.avg_pool2d(torch.from_numpy(np.stack(masks))[:, None], 4)
    return x, (target > 0.5).float()


def _train(name, precision, steps=6):
    """Train backbone + a 1x1 foreground head; loss before and after."""
    model = _tiny(name)
    head = nn.Conv2d(model.out_channels[0], 1, 1)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    x, target = _demo_batch()

    def loss_fn():
        logits = head(model(x)[0])
        return F.binary_cross_entropy_with_logits(logits.float(), target)

    with torch.no_grad():
        before = loss_fn().item()
    model.train()
    for _ in range(steps):
        with torch.autocast('cpu', dtype=torch.bfloat16,
                            enabled=precision == 'bf16'):
            loss = loss_fn()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = loss_fn().item()
    return before, after


@pytest.mark.parametrize('name', FAMILIES)
def test_bf16_training_lowers_the_loss_like_float32(name):
    before, after_fp32 = _train(name, 'fp32')
    before_bf16, after_bf16 = _train(name, 'bf16')
    assert before_bf16 == before  # same init, same data, evaluated in fp32
    assert after_fp32 < before
    # bf16 makes at least half of float32's progress
    assert before - after_bf16 >= 0.5 * (before - after_fp32), (
        before, after_fp32, after_bf16)
