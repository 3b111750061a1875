"""Every family off the CPU fast paths: on the ``meta`` device (no data, any
shape: what deferred initialisation and FLOP tools use) and on CPU with the
fast-path rule forced to "not measured here" (the routes a GPU takes, with
autocast on), forward + backward run stock PyTorch operators only: no
oneDNN operator, no channel projection computed as a convolution, no custom
autograd function, and no host read of a tensor
(``aten::_local_scalar_dense``, a device-to-host sync on a GPU).

The last test shows the checks can tell: with the rule as it is, CPU runs
take the fast paths and the checks report them.
"""
import contextlib

import pytest
import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from mmmetaformer.models.layers import fastpath
from mmmetaformer.registry import MODELS
from .test_backbones.test_pit import TINY as TINY_TOKEN_FAMILIES
from .test_backbones.tiny_archs import TINY_ARCHS

ARCHS = dict(TINY_ARCHS, **TINY_TOKEN_FAMILIES)
FAMILIES = sorted(ARCHS)
HOST_READS = ('_local_scalar_dense', 'item')


class StockOpsSpy(TorchDispatchMode):
    """Records what a run dispatches that is not a stock device op: an
    operator outside ``aten`` (``mkldnn::...``), a host read of a tensor,
    a convolution whose weight is a ``nn.Linear`` weight (the 1x1
    convolution route of the projections)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.linear_weights = {
            m.weight.untyped_storage().data_ptr()
            for m in model.modules() if isinstance(m, nn.Linear)
            and m.weight.device.type != 'meta'}
        self.violations = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        packet = func.overloadpacket
        if packet.__name__ in HOST_READS:
            self.violations.append(f'host read aten::{packet.__name__}')
        elif func.namespace != 'aten':
            self.violations.append(f'{func.namespace}::{packet.__name__}')
        elif (packet.__name__ == 'convolution' and args[1].device.type
              != 'meta' and args[1].untyped_storage().data_ptr()
              in self.linear_weights):
            self.violations.append('a linear weight as a convolution')
        return func(*args, **(kwargs or {}))


def custom_functions(outs):
    """Names of the custom autograd functions in the graph of ``outs``."""
    found, stack, seen = set(), [o.grad_fn for o in outs], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if isinstance(node, torch.autograd.function.BackwardCFunction):
            found.add(type(node).__name__)
        stack.extend(n for n, _ in node.next_functions)
    return found


def build(name):
    torch.manual_seed(0)
    return MODELS.build(dict(type=name, **ARCHS[name]))


def run_step(model, x, autocast_dtype=None, train=True):
    """Forward (+ backward when ``train``) under the spy; returns the
    violations, the custom autograd functions and the outputs."""
    spy = StockOpsSpy(model)
    autocast = contextlib.nullcontext()
    if autocast_dtype is not None:
        autocast = torch.autocast(x.device.type, dtype=autocast_dtype)
    with spy, torch.set_grad_enabled(train), autocast:
        outs = model(x)
    customs = custom_functions(outs) if train else set()
    if train:
        with spy:
            sum(o.float().sum() for o in outs).backward()
    return spy.violations, customs, outs


@pytest.mark.parametrize('train', [True, False], ids=['train', 'infer'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16],
                         ids=['fp32', 'fp16'])
@pytest.mark.parametrize('name', FAMILIES)
def test_meta_device_forward_backward_stock_ops(name, dtype, train):
    """ConvFormer, CAFormer and ResT used to fail here ("unknown device type
    for autocast"); SepConv's in-place StarReLU read its scale as a Python
    number (fails on ``meta``); PoolFormer's float16 gradient and
    SepConv's depthwise one were custom autograd functions on any
    device."""
    model = build(name).to(device='meta', dtype=dtype).train(train)
    x = torch.empty(2, 3, 64, 96, device='meta', dtype=dtype,
                    requires_grad=train)
    violations, customs, outs = run_step(model, x, train=train)
    assert not violations and not customs, (violations, customs)
    assert outs and all(o.device.type == 'meta' and o.dtype == dtype
                        for o in outs)
    if train:
        assert x.grad is not None and x.grad.shape == x.shape
        assert all(p.grad is not None for p in model.parameters()
                   if p.requires_grad)


def _not_measured_here(monkeypatch):
    """The rule as it is on a device where nothing was measured."""
    monkeypatch.setattr(fastpath, 'MEASURED', {
        name: (frozenset({'cuda'}), dtypes)
        for name, (_, dtypes) in fastpath.MEASURED.items()})


@pytest.mark.parametrize('precision', [None, torch.bfloat16, torch.float16],
                         ids=['fp32', 'bf16', 'fp16'])
@pytest.mark.parametrize('name', FAMILIES)
def test_off_the_measured_device_only_stock_ops(name, precision,
                                                monkeypatch):
    """CPU with the rule forced to "not measured here", autocast on or off:
    the path CUDA takes, run for real (meta has no autocast)."""
    _not_measured_here(monkeypatch)
    model = build(name)
    x = torch.randn(2, 3, 64, 96)
    for train in (True, False):
        violations, customs, outs = run_step(model.train(train), x,
                                             precision, train)
        assert not violations and not customs, (train, violations, customs)
        assert all(torch.isfinite(o.float()).all() for o in outs)


def test_the_checks_see_the_cpu_fast_paths():
    """With the rule as it is, CPU float32 training of ConvFormer takes the
    depthwise gradient function and the 1x1-convolution projections, and
    StarReLU's in-place pass reads its scale in inference; both are
    reported."""
    model = build('ConvFormer')
    x = torch.randn(1, 3, 64, 96)
    violations, customs, _ = run_step(model, x, train=True)
    assert customs == {'_DepthwiseConv2dBackward'}
    assert 'a linear weight as a convolution' in violations
    violations = run_step(model.eval(), x, train=False)[0]
    assert 'host read aten::_local_scalar_dense' in violations
