"""Channel MLP and the activations used by the MetaFormer families.

Also the two helpers the channel mixing layers share for speed:
:func:`channel_linear` (the channel projection of channels-last tokens,
through oneDNN's convolution on CPU float32) and :func:`grad_needed` (whether
an intermediate tensor may be overwritten in place).
"""
from functools import partial
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        if device_type == 'cpu':
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled()


def autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """The dtype autocast computes ``conv2d`` / ``linear`` in on
    ``device_type``, or None when autocast is off there."""
    if not _autocast_on(device_type):
        return None
    try:
        return torch.get_autocast_dtype(device_type)
    except AttributeError:  # torch < 2.4
        if device_type == 'cpu':
            return torch.get_autocast_cpu_dtype()
        return torch.get_autocast_gpu_dtype()


def channel_linear(x: torch.Tensor, weight: torch.Tensor,
                   bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``F.linear`` over the last (channel) dimension of tokens.

    A contiguous float32 CPU map (B, H, W, C) outside autocast is an NCHW
    tensor in ``channels_last`` memory once permuted: there it is computed as
    a 1x1 convolution (``weight`` viewed as (out, in, 1, 1), no copy), which
    PyTorch runs through oneDNN, as timm runs these layers; the output
    permutes back to a contiguous (B, H, W, out) map. Everything else
    (float64, bfloat16 / autocast, GPU, 3-D tokens) is ``F.linear``. Both
    compute the same products (float32 results differ only by summation
    order).

    Args:
        x (Tensor): Tokens (..., C).
        weight (Tensor): (out, C), a ``nn.Linear`` weight.
        bias (Tensor, optional): (out, ).

    Returns:
        Tensor: (..., out).
    """
    if (x.dim() == 4 and x.dtype == torch.float32 and x.device.type == 'cpu'
            and x.is_contiguous() and not _autocast_on('cpu')):
        return F.conv2d(x.permute(0, 3, 1, 2), weight[:, :, None, None],
                        bias).permute(0, 2, 3, 1)
    return F.linear(x, weight, bias)


def grad_needed(x: torch.Tensor) -> bool:
    """Whether autograd may need ``x``: if not (inference, ``no_grad``), an
    intermediate tensor that nothing else holds can be updated in place."""
    return torch.is_grad_enabled() and x.requires_grad


class StarReLU(nn.Module):
    """StarReLU: ``scale * relu(x) ** 2 + bias`` with learnable scalars.

    The scalars are applied in the input's dtype (under bfloat16 autocast the
    map stays bfloat16 instead of being promoted to float32 by the float32
    parameters).

    Args:
        scale_value (float): Initial scale. Defaults to 1.0.
        bias_value (float): Initial bias. Defaults to 0.0.
    """

    def __init__(self, scale_value: float = 1.0,
                 bias_value: float = 0.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1, ), float(scale_value)))
        self.bias = nn.Parameter(torch.full((1, ), float(bias_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu = F.relu(x)
        return torch.addcmul(
            self.bias.to(x.dtype), relu * relu, self.scale.to(x.dtype))

    def forward_(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` computed in ``x``'s memory (``x`` is overwritten
        and returned): for an intermediate map nothing else holds, when no
        gradient is needed (see :func:`grad_needed`)."""
        x = F.relu_(x)
        x.mul_(x)
        return x.mul_(self.scale.to(x.dtype)).add_(self.bias.to(x.dtype))


# 'GELUTanh': the tanh approximation, JAX's default (official MLP-Mixer).
ACTIVATIONS = {'GELU': nn.GELU, 'StarReLU': StarReLU, 'ReLU': nn.ReLU,
               'GELUTanh': partial(nn.GELU, approximate='tanh')}


def build_activation(name: str) -> nn.Module:
    """Build an activation by name (``'GELU'``, ``'GELUTanh'``,
    ``'StarReLU'``, ``'ReLU'``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f'Unknown activation {name!r}; valid choices are '
                         f'{sorted(ACTIVATIONS)}.')
    return ACTIVATIONS[name]()


class Mlp(nn.Module):
    """Two-layer channel MLP on channels-last tensors: fc1 -> act -> fc2.

    The projections go through :func:`channel_linear`. With ``StarReLU`` the
    activation's scalars are applied after ``fc2``, on the ``out_dim``
    outputs instead of the ``hidden_dim`` hidden values (``fc2(s * r + b) =
    s * fc2(r) + b * fc2.weight.sum(1)``, with ``r = relu(fc1(x)) ** 2``):
    the same function and parameters, two passes fewer over the widest
    tensor. ``act`` is then not called as a module (no forward hooks on it).

    Args:
        dim (int): Input and output channels.
        hidden_dim (int): Hidden channels.
        act (str): Activation name, see :func:`build_activation`.
        bias (bool): Whether the linear layers have biases.
        out_dim (int, optional): Output channels. Defaults to ``dim``.
    """

    def __init__(self, dim: int, hidden_dim: int, act: str = 'GELU',
                 bias: bool = True, out_dim: Optional[int] = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.act = build_activation(act)
        self.fc2 = nn.Linear(hidden_dim, out_dim or dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = channel_linear(x, self.fc1.weight, self.fc1.bias)
        if not isinstance(self.act, StarReLU):
            return channel_linear(
                self.act(hidden), self.fc2.weight, self.fc2.bias)
        if grad_needed(hidden):
            hidden = F.relu(hidden)
            hidden = hidden * hidden
        else:  # the fresh fc1 output is overwritten in place
            hidden = F.relu_(hidden)
            hidden.mul_(hidden)
        out = channel_linear(hidden, self.fc2.weight)
        shift = self.act.bias * self.fc2.weight.sum(1)
        if self.fc2.bias is not None:
            shift = shift + self.fc2.bias
        return torch.addcmul(
            shift.to(out.dtype), out, self.act.scale.to(out.dtype))
