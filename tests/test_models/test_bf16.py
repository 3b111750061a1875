"""The bfloat16 path: ``torch.autocast('cpu', dtype=torch.bfloat16)`` on every
family.

* on the parity weights (real scale), at a small size: finite maps of one
  dtype, each within ``max(1e-2, FLOOR_FACTOR * floor)`` of float32
  (relative L2 error; ``floor`` is the error of the float64 network whose
  GEMM / convolution operands alone are rounded to bfloat16, the least any
  bf16-GEMM path can reach; ``tools/benchmarks/bf16_check.py`` runs the same
  check at detection size, 800x1333: a benchmark-script check, minutes on 2
  cores); the bound catches one op computed in too low a precision; the
  floor rounds the operands (not the biases) of each kind of GEMM call and
  of every GEMM the network runs (seen at the aten level), and leaves torch
  and the model as they were, also when the model raises;
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
from torch.utils._python_dispatch import TorchDispatchMode

from mmmetaformer.demo.shapes import scene_batch
from mmmetaformer.models.layers import emsa, norms
from mmmetaformer.models.layers.fastpath import autocast_dtype
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


def _input(height=96, width=160):
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, height, width, generator=generator) * 2 - 1


@pytest.mark.parametrize('variant', CHECK.DEFAULT_VARIANTS)
def test_bf16_close_to_float32_on_parity_weights(variant):
    """Also checks (one model build for both) that the floor rounds every
    GEMM / convolution the float64 network runs: see
    :class:`_GemmOperandSpy`."""
    model = CHECK.build_parity_model(variant)
    x = _input()
    errors, dtypes, finite = CHECK.bf16_errors(model, x)
    assert finite
    assert len(set(dtypes)) == 1, dtypes
    with _GemmOperandSpy() as plain:
        reference = CHECK.float64_outputs(model, x)
    with _GemmOperandSpy() as floor:
        floors = CHECK.bf16_floor(model, x, reference)
    assert next(model.parameters()).dtype == torch.float32
    _assert_floor_rounds_every_gemm(plain.calls, floor.calls)
    bounds = CHECK.error_bounds(floors)
    assert all(e <= b for e, b in zip(errors, bounds)), (errors, floors)


def test_error_bound():
    assert CHECK.error_bounds([1e-3, 0.25], factor=3.0) == [1e-2, 0.75]
    assert CHECK.error_bounds([1e-3], tolerance=0.5) == [0.5]
    assert CHECK.error_bounds([1.0]) == [CHECK.FLOOR_FACTOR]


def _round_significand(t, bits):
    """``t`` rounded to ``bits`` significant bits (bfloat16 keeps 8)."""
    mantissa, exponent = torch.frexp(t.float())
    scale = 2.0**bits
    return torch.ldexp(torch.round(mantissa * scale) / scale,
                       exponent).to(t.dtype)


def test_round_significand():
    x = torch.tensor([1.0 + 2.0**-7, 1.0 + 2.0**-9, 3.0])
    assert _round_significand(x, 8).tolist() == [1.0 + 2.0**-7, 1.0, 3.0]
    assert _round_significand(x, 6).tolist() == [1.0, 1.0, 3.0]


def test_floor_bound_catches_one_op_in_too_low_precision(monkeypatch):
    """PoolFormerV2 whose GroupNorm output is rounded to 6 significant bits
    under autocast (a quarter of bfloat16's precision, on one op) exceeds
    FLOOR_FACTOR times its floor; the genuine path is within it."""
    model = CHECK.build_parity_model('poolformerv2_s12')
    x = _input()
    errors = CHECK.bf16_errors(model, x)[0]
    floors = CHECK.bf16_floor(model, x)
    assert all(e <= b for e, b in zip(errors, CHECK.error_bounds(floors)))
    forward = norms.GroupNorm1.forward

    def coarse(self, t):
        out = forward(self, t)
        if autocast_dtype('cpu') is not None:
            out = _round_significand(out, 6)
        return out

    monkeypatch.setattr(norms.GroupNorm1, 'forward', coarse)
    assert CHECK.bf16_floor(model, x) == floors  # the floor is float64
    errors = CHECK.bf16_errors(model, x)[0]
    bounds = CHECK.error_bounds(floors)
    assert any(e > b for e, b in zip(errors, bounds)), (errors, floors)


def test_floor_restores_torch_and_the_model_on_error():
    weight = torch.randn(5, 7, dtype=torch.float64)
    x = torch.randn(3, 7, dtype=torch.float64)
    rounded = F.linear(x.bfloat16().double(), weight.bfloat16().double())
    exact = F.linear(x, weight)
    assert not torch.equal(rounded, exact)
    seen = []

    class Failing(nn.Module):

        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(weight.float())

        def forward(self, x):
            assert self.weight.dtype == torch.float64
            seen.append(F.linear(x, self.weight))
            raise RuntimeError('model failed')

    model = Failing()
    with pytest.raises(RuntimeError, match='model failed'):
        CHECK.bf16_floor(model, x, reference=[exact])
    assert torch.equal(seen[0], rounded)  # the mode was on in the model
    assert torch._C._len_torch_function_stack() == 0
    assert F.linear(x, weight).equal(exact)
    assert model.weight.dtype == torch.float32


def _r(t):
    return t.bfloat16().double()


_A, _W, _B = (torch.randn(*shape, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(i))
              for i, shape in enumerate([(3, 4), (5, 4), (5, )]))
_IMG = torch.randn(1, 5, 3, 3, dtype=torch.float64,
                   generator=torch.Generator().manual_seed(3))
#: name -> (call, the same call on operands rounded by hand); biases stay.
GEMM_CALLS = {
    'linear': (lambda r: F.linear(r(_A), r(_W), _B)),
    'linear_keywords': (lambda r: F.linear(input=r(_A), weight=r(_W),
                                           bias=_B)),
    'matmul_operator': (lambda r: r(_A) @ r(_W).t()),
    'addmm': (lambda r: torch.addmm(_B, r(_A), r(_W).t())),
    'mm_keyword': (lambda r: torch.mm(r(_A), mat2=r(_W).t())),
    'einsum': (lambda r: torch.einsum('ik,jk->ij', r(_A), r(_W))),
    'conv_transpose2d': (lambda r: F.conv_transpose2d(
        r(_IMG), r(_W[:, :2, None, None].contiguous()), _B[:2])),
    'sdpa': (lambda r: F.scaled_dot_product_attention(
        r(_A[None]), r(_W[None]), r(_W[None]))),
}


@pytest.mark.parametrize('name', sorted(GEMM_CALLS))
def test_bf16_gemm_operands_rounds_the_operands_only(name):
    call = GEMM_CALLS[name]
    with CHECK.bf16_gemm_operands():
        out = call(lambda t: t)
    assert torch.equal(out, call(_r))
    assert not torch.equal(out, call(lambda t: t))


#: aten GEMMs / convolutions -> positions of their operands.
ATEN_GEMMS = {
    'mm': (0, 1), 'bmm': (0, 1), 'mv': (0, 1), 'dot': (0, 1),
    'addmm': (1, 2), 'baddbmm': (1, 2), 'addbmm': (1, 2), 'addmv': (1, 2),
    'convolution': (0, 1), '_scaled_dot_product_flash_attention_for_cpu':
    (0, 1, 2), '_scaled_dot_product_attention_math': (0, 1, 2)
}


class _GemmOperandSpy(TorchDispatchMode):
    """Records every aten GEMM / convolution (after decomposition) and
    whether its operands are exact in bfloat16."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in ATEN_GEMMS:
            exact = all(
                torch.equal(args[i], args[i].bfloat16().to(args[i].dtype))
                for i in ATEN_GEMMS[name])
            self.calls.append((name, exact))
        else:
            assert not any(k in name for k in ('mm', 'conv', 'dot_product')
                           ), f'unlisted GEMM-like op {name}'
        return func(*args, **(kwargs or {}))


def _assert_floor_rounds_every_gemm(plain_calls, floor_calls):
    """Every GEMM / convolution of the float64 network (seen at the aten
    level, whatever Python call led to it: ``nn.Linear``, ``@``,
    ``ConvTranspose2d``, fused attention) gets bfloat16-exact operands
    under the floor; in the plain float64 run none has (the spy can
    tell)."""
    assert plain_calls and not any(exact for _, exact in plain_calls)
    assert [n for n, _ in floor_calls] == [n for n, _ in plain_calls]
    missed = sorted({name for name, exact in floor_calls if not exact})
    assert not missed, missed


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
    images, scenes = scene_batch(num, size, size)
    masks = np.zeros((num, size, size), np.float32)
    for mask, shapes in zip(masks, scenes):
        for shape in shapes:
            mask[shape.mask] = 1.0
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = x / 127.5 - 1.0
    target = F.avg_pool2d(torch.from_numpy(masks)[:, None], 4)
    return x, (target > 0.5).float()


#: ``_train`` precision -> autocast dtype (None: float32).
PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def _train(name, precision, steps=6):
    """Train backbone + a 1x1 foreground head under ``precision`` autocast
    (float16 with a ``torch.amp.GradScaler``, as AMP runs it); loss
    (evaluated in float32) before and after."""
    model = _tiny(name)
    head = nn.Conv2d(model.out_channels[0], 1, 1)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    scaler = torch.amp.GradScaler('cpu', enabled=precision == 'fp16')
    dtype = PRECISIONS[precision]
    x, target = _demo_batch()

    def loss_fn():
        logits = head(model(x)[0])
        return F.binary_cross_entropy_with_logits(logits.float(), target)

    with torch.no_grad():
        before = loss_fn().item()
    model.train()
    for _ in range(steps):
        with torch.autocast('cpu', dtype=dtype or torch.bfloat16,
                            enabled=dtype is not None):
            loss = loss_fn()
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    model.eval()
    with torch.no_grad():
        after = loss_fn().item()
    return before, after


def assert_training_progress_like_float32(name, precision):
    """``precision`` training makes at least half of float32's progress."""
    before, after_fp32 = _train(name, 'fp32')
    before_low, after_low = _train(name, precision)
    assert before_low == before  # same init, same data, evaluated in fp32
    assert after_fp32 < before
    assert before - after_low >= 0.5 * (before - after_fp32), (
        before, after_fp32, after_low)


@pytest.mark.parametrize('name', FAMILIES)
def test_bf16_training_lowers_the_loss_like_float32(name):
    assert_training_progress_like_float32(name, 'bf16')
