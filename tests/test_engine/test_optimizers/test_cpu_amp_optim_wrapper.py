"""CPUAmpOptimWrapper: mmengine's AmpOptimWrapper interface with CPU
autocast (``tools/train.py --amp`` without CUDA)."""
import pytest
import torch
import torch.nn as nn
from mmengine.optim import AmpOptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

import mmmetaformer  # noqa: F401
from mmmetaformer.engine import CPUAmpOptimWrapper


def _wrapper(**kwargs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    wrapper = OPTIM_WRAPPERS.build(
        dict(type='mmmetaformer.CPUAmpOptimWrapper', optimizer=optimizer,
             **kwargs))
    return model, wrapper


@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_steps_under_cpu_autocast(dtype):
    model, wrapper = _wrapper(dtype=dtype)
    assert isinstance(wrapper, CPUAmpOptimWrapper)
    assert isinstance(wrapper, AmpOptimWrapper)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    losses = []
    for _ in range(5):
        with wrapper.optim_context(model):
            out = model(x)
            assert out.dtype == getattr(torch, dtype)
            loss = (out.float() - y).square().mean()
        wrapper.update_params(loss)
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    scaler = wrapper.loss_scaler
    assert scaler.is_enabled() == (dtype == 'float16')
    state = wrapper.state_dict()
    assert 'loss_scaler' in state
    wrapper.load_state_dict(state)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="dtype must be one of.*'float16'"):
        _wrapper(dtype='float32')
    with pytest.raises(TypeError, match='loss_scale'):
        _wrapper(dtype='float16', loss_scale='static')


def test_fixed_loss_scale():
    _, wrapper = _wrapper(dtype='float16', loss_scale=128.0)
    assert wrapper.loss_scaler.get_scale() == 128.0
