"""Learnable per-channel scaling (layer scale and residual scale)."""
import torch
import torch.nn as nn


class Scale(nn.Module):
    """Multiply channels-last input by a learnable vector of shape (C,).

    Used as *layer scale* (on a residual branch, PoolFormer v1) and as
    *residual scale* (on the shortcut, MetaFormer baselines).

    Args:
        dim (int): Number of channels.
        init_value (float): Initial value of every element.
    """

    def __init__(self, dim: int, init_value: float = 1.0) -> None:
        super().__init__()
        self.init_value = init_value
        self.scale = nn.Parameter(torch.full((dim, ), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in the input's dtype: under bfloat16 autocast a float32 scale
        # would promote the map (and the rest of the network) to float32
        return x * self.scale.to(x.dtype)

    def extra_repr(self) -> str:
        return f'{self.scale.numel()}, init_value={self.init_value}'
