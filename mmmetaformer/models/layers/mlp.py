"""Channel MLP and the activations used by the MetaFormer families.

The projections and in-place steps go through :mod:`.fastpath`, which
picks the fastest measured route for the device (the plain PyTorch op
everywhere else).
"""
from functools import partial
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .fastpath import channel_linear, square_, star_relu, star_relu_


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
        return self.square_relu_output(F.relu(x))

    def square_relu_output(self, r: torch.Tensor) -> torch.Tensor:
        """``scale * r ** 2 + bias`` for a map ``r`` that is already
        ``relu(x)`` (e.g. the output of a projection with a fused ReLU)."""
        return star_relu(r, self.scale, self.bias)

    def square_relu_output_(self, r: torch.Tensor) -> torch.Tensor:
        """:meth:`square_relu_output` for a map ``r`` that nothing else
        holds, in its memory in one pass where
        :func:`~.fastpath.star_relu_` allows (CPU, no gradient needed, not
        traced), out of place otherwise."""
        return star_relu_(r, self.scale, self.bias)


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


def _fused_name(act: nn.Module) -> Optional[str]:
    """The :func:`channel_linear` activation computing ``act``, if any."""
    if isinstance(act, nn.ReLU):
        return 'relu'
    if isinstance(act, nn.GELU):
        return {'none': 'gelu', 'tanh': 'gelu_tanh'}[act.approximate]
    return None


class Mlp(nn.Module):
    """Two-layer channel MLP on channels-last tensors: fc1 -> act -> fc2.

    The projections go through :func:`channel_linear`. With ``StarReLU`` the
    activation's scalars are applied after ``fc2``, on the ``out_dim``
    outputs instead of the ``hidden_dim`` hidden values (``fc2(s * r + b) =
    s * fc2(r) + b * fc2.weight.sum(1)``, with ``r = relu(fc1(x)) ** 2``):
    the same function and parameters, two passes fewer over the widest
    tensor. ReLU, GELU and StarReLU's ReLU are computed by ``fc1``'s
    :func:`channel_linear` (fused into the GEMM where it can be); such an
    ``act`` is not called as a module (no forward hooks on it).

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
        act = self.act
        if not isinstance(act, StarReLU):
            fused = _fused_name(act)
            hidden = channel_linear(x, self.fc1.weight, self.fc1.bias, fused)
            if fused is None:
                hidden = act(hidden)
            return channel_linear(hidden, self.fc2.weight, self.fc2.bias)
        hidden = square_(
            channel_linear(x, self.fc1.weight, self.fc1.bias, 'relu'))
        out = channel_linear(hidden, self.fc2.weight)
        shift = act.bias * self.fc2.weight.sum(1)
        if self.fc2.bias is not None:
            shift = shift + self.fc2.bias
        return torch.addcmul(
            shift.to(out.dtype), out, act.scale.to(out.dtype))
