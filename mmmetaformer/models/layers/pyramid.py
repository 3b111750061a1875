"""Multi-scale maps from a single-scale backbone (ViTDet's recipe)."""
from typing import Sequence, Tuple

import torch
import torch.nn as nn

from .norms import LayerNorm

#: Strides of the four levels every dense backbone of the package returns.
PYRAMID_STRIDES = (4, 8, 16, 32)


class _ChannelsFirstLN(LayerNorm):
    """LayerNorm over the channels of an NCHW map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SimpleFeaturePyramid(nn.Module):
    """Four maps at strides 4/8/16/32 from one map, as in ViTDet's simple
    feature pyramid (Li et al. 2022; detectron2 ``SimpleFeaturePyramid``,
    mmdet ``SimpleFPN``, mmseg ``Feature2Pyramid``), without the lateral
    and output convolutions (a standard FPN neck adds those).

    Each level is made from the input map of stride ``in_stride`` by the
    branch of its scale factor ``in_stride / stride``:

    * 4: ``ConvTranspose2d(C, C/2, 2, 2) -> LayerNorm(eps) -> GELU ->
      ConvTranspose2d(C/2, C/4, 2, 2)``, C/4 channels;
    * 2: ``ConvTranspose2d(C, C/2, 2, 2)``, C/2 channels;
    * 1: identity, C channels;
    * 1/2, 1/4: ``MaxPool2d(k, k, ceil_mode=True)`` with k = 2, 4, C
      channels (``ceil_mode``: odd grids round up, like the other families'
      ``ceil(h / 2)``).

    Branches are built only for ``levels``; they are modules ``fpn{i}`` for
    level i (absent for identity/max-pool levels, which have no weights).

    Args:
        dim (int): Channels C of the input map (divisible by 4).
        in_stride (int): Stride of the input map (8 or 16).
        levels (Sequence[int]): Levels to build, indices into
            (4, 8, 16, 32).
        eps (float): Epsilon of the LayerNorm in the x4 branch. Defaults to
            1e-6.
    """

    def __init__(self, dim: int, in_stride: int, levels: Sequence[int],
                 eps: float = 1e-6) -> None:
        super().__init__()
        self.in_stride = in_stride
        self.levels = tuple(levels)
        self.out_channels = []
        for level in self.levels:
            factor = in_stride / PYRAMID_STRIDES[level]
            if factor == 4:
                if dim % 4:
                    raise ValueError(
                        f'The x4 branch needs channels divisible by 4, got '
                        f'{dim}.')
                branch = nn.Sequential(
                    nn.ConvTranspose2d(dim, dim // 2, 2, 2),
                    _ChannelsFirstLN(dim // 2, eps=eps), nn.GELU(),
                    nn.ConvTranspose2d(dim // 2, dim // 4, 2, 2))
                channels = dim // 4
            elif factor == 2:
                if dim % 2:
                    raise ValueError(
                        f'The x2 branch needs even channels, got {dim}.')
                branch = nn.ConvTranspose2d(dim, dim // 2, 2, 2)
                channels = dim // 2
            elif factor == 1:
                branch, channels = nn.Identity(), dim
            elif factor in (0.5, 0.25):
                k = int(round(1 / factor))
                branch = nn.MaxPool2d(k, k, ceil_mode=True)
                channels = dim
            else:
                raise ValueError(
                    f'No pyramid branch from stride {in_stride} to stride '
                    f'{PYRAMID_STRIDES[level]} (supported scale factors: 4, '
                    '2, 1, 1/2, 1/4).')
            self.add_module(f'fpn{level}', branch)
            self.out_channels.append(channels)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Map an NCHW map to one NCHW map per level, in level order."""
        return tuple(
            getattr(self, f'fpn{level}')(x).contiguous()
            for level in self.levels)
