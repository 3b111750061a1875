"""The float16 path: ``torch.autocast('cpu', dtype=torch.float16)`` on every
family, checked as ``test_bf16.py`` checks bfloat16 (CUDA's ``--amp`` runs
float16; a CPU run is what CI can check).

* on the parity weights (real scale), at the bf16 tests' small size
  (96x160: 800x1333 takes minutes per family on 2 cores; it is
  ``python tools/benchmarks/bf16_check.py --dtype float16``): finite maps
  of one dtype, each within ``max(1e-2, FLOOR_FACTORS['float16'] * floor)``
  of float32, ``floor`` being the error of the float64 network whose GEMM /
  convolution operands alone are rounded to float16;
* on the tiny archs: one output dtype, and a float16 training step with a
  ``torch.amp.GradScaler`` on demo scenes lowers the loss as float32 does.
"""
import pytest
import torch
import torch.nn.functional as F

from .test_bf16 import (CHECK, FAMILIES, _input, _tiny,
                        assert_training_progress_like_float32)

FP16 = torch.float16


@pytest.mark.parametrize('variant', CHECK.DEFAULT_VARIANTS)
def test_fp16_close_to_float32_on_parity_weights(variant):
    model = CHECK.build_parity_model(variant)
    x = _input()
    errors, dtypes, finite = CHECK.bf16_errors(model, x, FP16)
    assert finite
    assert set(dtypes) == {FP16}, dtypes
    floors = CHECK.bf16_floor(model, x, dtype=FP16)
    bounds = CHECK.error_bounds(floors,
                                factor=CHECK.FLOOR_FACTORS['float16'])
    assert all(e <= b for e, b in zip(errors, bounds)), (errors, floors)


def test_fp16_floor_rounds_to_float16():
    """The float16 floor rounds GEMM operands to float16 (11 significant
    bits), not to bfloat16."""
    a = torch.tensor([[1.0 + 2.0**-10, 1.0 + 2.0**-12]], dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)
    with CHECK.bf16_gemm_operands(FP16):
        out = F.linear(a, eye)
    assert out.tolist() == [[1.0 + 2.0**-10, 1.0]]
    with CHECK.bf16_gemm_operands():
        assert F.linear(a, eye).tolist() == [[1.0, 1.0]]


@pytest.mark.parametrize('name', FAMILIES)
def test_fp16_outputs_share_one_dtype(name):
    model = _tiny(name).eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=FP16):
        outs = model(torch.randn(1, 3, 64, 96))
    assert {o.dtype for o in outs} == {FP16}, [o.dtype for o in outs]
    assert all(torch.isfinite(o.float()).all() for o in outs)


@pytest.mark.parametrize('name', FAMILIES)
def test_fp16_training_with_grad_scaler_lowers_the_loss_like_float32(name):
    assert_training_progress_like_float32(name, 'fp16')
