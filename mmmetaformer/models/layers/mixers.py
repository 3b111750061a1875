"""Token mixers that several families share.

A token mixer maps a channels-last tensor (B, H, W, C) to one of the same
shape. Family-specific mixers live next to their family.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Pooling(nn.Module):
    """PoolFormer's mixer: ``avgpool3x3(x) - x`` (borders average the valid
    neighbours only, i.e. ``count_include_pad=False``).

    Args:
        pool_size (int): Pooling window. Defaults to 3.
    """

    def __init__(self, pool_size: int = 3) -> None:
        super().__init__()
        if pool_size % 2 != 1:
            raise ValueError(f'pool_size must be odd, got {pool_size}.')
        self.pool_size = pool_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(
            x.permute(0, 3, 1, 2),
            self.pool_size,
            stride=1,
            padding=self.pool_size // 2,
            count_include_pad=False)
        return y.permute(0, 2, 3, 1) - x

    def extra_repr(self) -> str:
        return f'pool_size={self.pool_size}'
