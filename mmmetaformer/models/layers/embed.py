"""Strided convolutional stems and downsamplers for channels-last tokens."""
from typing import Optional

import torch
import torch.nn as nn

from .norms import build_norm


class ConvEmbed(nn.Module):
    """Strided convolution with an optional norm before or after it.

    Input is a channels-last map (B, H, W, C) or, with ``nchw_input=True``
    (the stem), an image batch (B, C, H, W); output is channels-last.

    The MetaFormer families use three shapes of it:

    * PoolFormer v1 / CycleMLP: ``conv`` only (stem 7x7/4, downsamplers 3x3/2);
    * MetaFormer baselines stem: ``conv`` then ``norm`` (``norm_first=False``);
    * MetaFormer baselines downsamplers: ``norm`` then ``conv``
      (``norm_first=True``).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Convolution kernel size.
        stride (int): Convolution stride.
        padding (int): Convolution zero padding.
        norm (dict, optional): Norm config for :func:`build_norm`.
        norm_first (bool): Apply the norm before the convolution (on the input
            channels) instead of after it. Defaults to False.
        nchw_input (bool): The input is an NCHW image batch. Defaults to False.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 stride: int,
                 padding: int,
                 norm: Optional[dict] = None,
                 norm_first: bool = False,
                 nchw_input: bool = False) -> None:
        super().__init__()
        if norm_first and nchw_input:
            raise ValueError('norm_first is not supported with nchw_input.')
        self.norm_first = norm_first
        self.nchw_input = nchw_input
        if norm is not None and norm_first:
            self.norm = build_norm(norm, in_channels)
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding)
        if norm is not None and not norm_first:
            self.norm = build_norm(norm, out_channels)
        if norm is None:
            self.norm = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nchw_input:
            # channels_last memory makes the conv output's NHWC view contiguous
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            if self.norm_first and self.norm is not None:
                x = self.norm(x)
            x = x.permute(0, 3, 1, 2)
        x = self.conv(x).permute(0, 2, 3, 1)
        if not self.norm_first and self.norm is not None:
            x = self.norm(x)
        return x
