"""mmmetaformer.compile: a backbone compiled with its inputs' height and
width marked dynamic compiles once for inputs of changing sizes (dynamo's
default compiled three times for the same sizes). Compiles are counted with
a backend that only counts and runs the captured graph (no code
generation: fast on 2 cores)."""
import pytest
import torch

from mmmetaformer.compile import (compile_backbone, compile_for_varying_sizes,
                                  mark_dynamic_sizes)
from mmmetaformer.registry import MODELS
from .test_models.test_backbones.tiny_archs import TINY_ARCHS

dynamo = pytest.importorskip('torch._dynamo')

#: Height and width both change, one at a time, then together.
SIZES = [(64, 64), (96, 64), (128, 96), (160, 128)]


class CountingBackend:
    """A ``torch.compile`` backend that counts the graphs it is given."""

    def __init__(self):
        self.compiles = 0

    def __call__(self, graph_module, example_inputs):
        self.compiles += 1
        return graph_module.forward


@pytest.fixture
def fresh_dynamo():
    dynamo.reset()
    yield
    dynamo.reset()


def test_nested_inputs_are_marked(fresh_dynamo):
    """mmengine's ``data`` of ``train_step``: a dict of lists of images.
    Dynamo's default compiles again for the same sizes."""
    default, marked = CountingBackend(), CountingBackend()

    def step(data):
        return [image.mean((-2, -1)) * 2 for image in data['inputs']]

    compiled_default = torch.compile(step, backend=default)
    compiled = compile_for_varying_sizes(step, backend=marked)
    for h, w in SIZES:
        images = [torch.rand(3, h, w), torch.rand(3, w, h)]
        compiled_default(dict(inputs=[i.clone() for i in images]))
        outs = compiled(dict(inputs=images, meta='kept'))
        for got, image in zip(outs, images):
            torch.testing.assert_close(got, image.mean((-2, -1)) * 2)
    assert default.compiles > 1  # static, then H, then W dynamic
    assert marked.compiles == 1


def test_backbone_compiles_once_for_changing_sizes(fresh_dynamo):
    """PoolFormer (tiny), training step: one graph for four sizes (dynamo's
    default made 3: measured for every family but RandFormer, see
    mmmetaformer.compile), with eager's outputs and gradients."""
    torch.manual_seed(0)
    model = MODELS.build(dict(type='PoolFormer',
                              **TINY_ARCHS['PoolFormer'])).train()
    backend = CountingBackend()
    compiled = compile_for_varying_sizes(model, backend=backend)
    for size in SIZES:
        x = torch.randn(2, 3, *size)
        outs = compiled(x)
        sum(o.sum() for o in outs).backward()
        grads = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        want = model(x)
        sum(o.sum() for o in want).backward()
        for got, expected in zip(outs, want):
            torch.testing.assert_close(got, expected)
        for got, p in zip(grads, model.parameters()):
            torch.testing.assert_close(got, p.grad)
        model.zero_grad()
    assert backend.compiles == 1


def test_mark_dynamic_sizes_leaves_other_inputs():
    boxes, image = torch.zeros(4, 4), torch.zeros(3, 8, 8)
    data = dict(boxes=boxes, image=image, name='x')
    assert mark_dynamic_sizes(data) is data
    # only tensors with >= 3 dimensions carry the marks, on H and W
    assert not getattr(boxes, '_dynamo_weak_dynamic_indices', set())
    assert getattr(image, '_dynamo_weak_dynamic_indices', set()) == {1, 2}


def test_compile_backbone_of_a_detector(fresh_dynamo):
    """The backbone inside a (DDP-style wrapped) model is compiled once for
    all sizes; the model's parameters and outputs are unchanged."""

    class Detector(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.backbone = MODELS.build(
                dict(type='PoolFormer', **TINY_ARCHS['PoolFormer']))
            self.head = torch.nn.Conv2d(32, 1, 1)

        def forward(self, x):
            return self.head(self.backbone(x)[-1])

    class Wrapper(torch.nn.Module):

        def __init__(self, module):
            super().__init__()
            self.module = module

    torch.manual_seed(0)
    detector = Detector().eval()
    keys = list(detector.state_dict())
    with torch.no_grad():
        want = [detector(torch.full((1, 3, h, w), 0.5)) for h, w in SIZES]
    backend = CountingBackend()
    assert compile_backbone(Wrapper(detector),
                            backend=backend) is detector.backbone
    with torch.no_grad():
        for (h, w), expected in zip(SIZES, want):
            got = detector(torch.full((1, 3, h, w), 0.5))
            torch.testing.assert_close(got, expected)
    assert backend.compiles == 1
    assert list(detector.state_dict()) == keys
    with pytest.raises(AttributeError, match='has no `backbone` module'):
        compile_backbone(torch.nn.Linear(2, 2))
