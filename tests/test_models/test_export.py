"""ONNX export of every backbone family (tiny architectures), run with
onnxruntime and compared with PyTorch.

The export is the TorchScript-based exporter (``dynamo=False``; the dynamo
exporter needs onnxscript, which is not a dependency). With dynamic H and W
one exported graph must give PyTorch's outputs at sizes other than the one it
was traced at: anything that branches in Python on the map size, or passes a
shape-dependent argument that the exporter turns into a constant, fails here
(an export error, or -- worse -- wrong numbers at the other sizes).
"""
import io
import warnings

import numpy as np
import pytest
import torch

from mmmetaformer.registry import MODELS
from .test_backbones.tiny_archs import TINY_ARCHS

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

#: Traced at the first size; the others differ in both axes, are not
#: multiples of 32 and give border windows in RandFormer's random mixing.
SIZES = [(64, 64), (96, 128), (72, 104)]
OPSET = 17


def export(model, size, dynamic):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer / deprecation chatter
        torch.onnx.export(
            model, torch.zeros(1, 3, *size), f, dynamo=False,
            opset_version=OPSET, input_names=['input'],
            dynamic_axes=({'input': {0: 'batch', 2: 'height', 3: 'width'}}
                          if dynamic else None))
    proto = onnx.load_from_string(f.getvalue())
    onnx.checker.check_model(proto)
    return ort.InferenceSession(f.getvalue(),
                                providers=['CPUExecutionProvider'])


def assert_matches(session, model, size, seed):
    x = torch.randn(1, 3, *size,
                    generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = [t.numpy() for t in model(x)]
    outputs = session.run(None, {'input': x.numpy()})
    assert len(outputs) == len(expected)
    for i, (out, ref) in enumerate(zip(outputs, expected)):
        assert out.shape == ref.shape, (size, i)
        # float32 through a different kernel library: agreement to ~1e-6 of
        # the output's scale; a wrong graph is off by O(1).
        scale = float(np.abs(ref).max())
        err = float(np.abs(out - ref).max())
        assert err <= 1e-4 * scale, (
            f'{size} output {i}: max |onnx - torch| = {err:.3g} '
            f'(scale {scale:.3g})')


@pytest.fixture(params=sorted(TINY_ARCHS))
def model(request):
    torch.manual_seed(0)
    return MODELS.build(dict(type=request.param,
                             **TINY_ARCHS[request.param])).eval()


def test_dynamic_hw_export_matches_pytorch_at_three_sizes(model):
    session = export(model, SIZES[0], dynamic=True)
    for seed, size in enumerate(SIZES):
        assert_matches(session, model, size, seed)


def test_static_export_matches_pytorch(model):
    session = export(model, SIZES[1], dynamic=False)
    assert_matches(session, model, SIZES[1], seed=7)
