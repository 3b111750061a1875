"""Channel MLP and the activations used by the MetaFormer families."""
from functools import partial
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class StarReLU(nn.Module):
    """StarReLU: ``scale * relu(x) ** 2 + bias`` with learnable scalars.

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
        return self.scale * F.relu(x).square() + self.bias


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
        return self.fc2(self.act(self.fc1(x)))
