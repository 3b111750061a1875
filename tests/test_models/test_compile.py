"""``torch.compile`` captures every backbone in one graph, without breaks,
in float32 and under bfloat16 autocast (inference), and computes what the
eager model computes. Dynamo's ``explain`` with the eager backend traces
without generating code (seconds); ``tools/benchmarks/speed.py --compile``
times inductor."""
import pytest
import torch

from mmmetaformer.registry import MODELS
from .test_backbones.test_pit import TINY as TINY_TOKEN_FAMILIES
from .test_backbones.tiny_archs import TINY_ARCHS

ARCHS = dict(TINY_ARCHS, **TINY_TOKEN_FAMILIES)

dynamo = pytest.importorskip('torch._dynamo')


@pytest.mark.parametrize('precision', ['fp32', 'bf16'])
@pytest.mark.parametrize('name', sorted(ARCHS))
def test_one_graph_no_break(name, precision):
    torch.manual_seed(0)
    model = MODELS.build(dict(type=name, **ARCHS[name])).eval()
    x = torch.randn(1, 3, 64, 96)
    dynamo.reset()
    with torch.no_grad(), torch.autocast(
            'cpu', dtype=torch.bfloat16, enabled=precision == 'bf16'):
        explanation = dynamo.explain(model)(x)
        expected = model(x)
        compiled = torch.compile(model, backend='eager')(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
    # bf16: compiled code takes the plain projections, eager the fused ones
    # (other rounding, which ResT v1 amplifies most: 1.4% measured)
    tol = 5e-2 if precision == 'bf16' else 1e-6
    for got, want in zip(compiled, expected):
        assert got.dtype == want.dtype
        error = (got.float() - want.float()).norm() / want.float().norm()
        assert error < tol, error
