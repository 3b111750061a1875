"""Strided convolutional stems and downsamplers for channels-last tokens:
:class:`ConvEmbed` (PoolFormer v1/v2, the MetaFormer baselines, CycleMLP)
and :class:`ResTEmbed` with :func:`conv_stack` and :class:`PixelAttention`
(ResT / ResTV2)."""
from typing import Optional, Sequence

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


class PixelAttention(nn.Module):
    """ResT's positional encoding "PA": ``x * sigmoid(dwconv3x3(x))``.

    Args:
        dim (int): Channels of the NCHW input.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.pa_conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.pa_conv(x))


class ResTEmbed(nn.Module):
    """Convolutional embedding: ``proj`` (convs on NCHW), PA, optional LN.

    The stems and downsamplers of both ResT versions are instances:

    * v1 stem: ``proj`` = conv3x3/2, BN, ReLU, conv3x3/1, BN, ReLU, conv3x3/2;
    * v2 stem: ``proj`` = conv3x3/2, BN, ReLU, conv3x3/2, BN, ReLU, conv1x1,
      then a LayerNorm;
    * v1 downsampler: ``proj`` = conv3x3/2, BN;
    * v2 downsampler: ``proj`` = conv3x3/2, then a LayerNorm.

    Args:
        proj (nn.Module): NCHW -> NCHW layers producing ``dim`` channels.
        dim (int): Output channels.
        norm (dict, optional): Channel norm after PA (see
            :func:`build_norm`), applied on the channels-last output.
        nchw_input (bool): The input is an NCHW image (a stem); otherwise it
            is a channels-last map. Defaults to False.
    """

    def __init__(self,
                 proj: nn.Module,
                 dim: int,
                 norm: Optional[dict] = None,
                 nchw_input: bool = False) -> None:
        super().__init__()
        self.nchw_input = nchw_input
        self.proj = proj
        self.pos = PixelAttention(dim)
        self.norm = build_norm(norm, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nchw_input:
            # channels-last memory: the NHWC view of the output is contiguous
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = x.permute(0, 3, 1, 2)
        x = self.pos(self.proj(x))
        return self.norm(x.permute(0, 2, 3, 1))


def conv_stack(channels: Sequence[int], kernels: Sequence[int],
               strides: Sequence[int], bias: Sequence[bool],
               batch_norm: Sequence[bool],
               relu: Sequence[bool]) -> nn.Sequential:
    """Convolutions (padding ``k // 2``), each optionally followed by BN and
    ReLU, as one ``nn.Sequential`` (the official ``stem.proj`` indices).

    Args:
        channels (Sequence[int]): Input channels, then the output channels of
            each convolution.
        kernels, strides, bias, batch_norm, relu (Sequence): Per convolution.
    """
    layers = []
    for i, (k, s) in enumerate(zip(kernels, strides)):
        layers.append(
            nn.Conv2d(channels[i], channels[i + 1], k, stride=s,
                      padding=k // 2, bias=bias[i]))
        if batch_norm[i]:
            layers.append(nn.BatchNorm2d(channels[i + 1]))
        if relu[i]:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)
