"""Token mixers of the MetaFormer families (convolutional and fixed ones).

A token mixer maps a channels-last tensor (B, H, W, C) to one of the same
shape. This module holds the pooling mixer (PoolFormer v1/v2), the inverted
separable convolution (ConvFormer, CAFormer) and the frozen random mixing
(RandFormer). The other mixers: ``attention.MultiheadSelfAttention``
(CAFormer, PiT), ``emsa.EMSA`` (ResT/ResTV2), ``cycle.CycleMixer``
(CycleMLP) and ``token_mixing.WindowTokenMixing`` (MLP-Mixer, ResMLP). A
family picks its mixer per stage in ``MetaFormerBackbone.build_token_mixer``.
"""
import torch
import torch.nn as nn

from .fastpath import channel_linear, depthwise_conv2d, neighbour_mean
from .mlp import StarReLU
from .token_mixing import mix_in_windows, window_tokens


class Pooling(nn.Module):
    """PoolFormer's mixer: ``avgpool3x3(x) - x`` (borders average the valid
    neighbours only, i.e. ``count_include_pad=False``; the pooling is
    :func:`~.fastpath.neighbour_mean`).

    Args:
        pool_size (int): Pooling window. Defaults to 3.
    """

    def __init__(self, pool_size: int = 3) -> None:
        super().__init__()
        if pool_size % 2 != 1:
            raise ValueError(f'pool_size must be odd, got {pool_size}.')
        self.pool_size = pool_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = neighbour_mean(x.permute(0, 3, 1, 2), self.pool_size)
        return y.permute(0, 2, 3, 1) - x

    def extra_repr(self) -> str:
        return f'pool_size={self.pool_size}'


class SepConv(nn.Module):
    """Inverted separable convolution of ConvFormer / CAFormer (MobileNetV2
    style), on channels-last tokens.

    ``pwconv1`` (Linear C -> rC, no bias) -> ``act1`` (StarReLU) ->
    ``dwconv`` (depthwise k x k, no bias) -> ``pwconv2`` (Linear rC -> C, no
    bias), computed by the functions of :mod:`.fastpath` (which pick the
    fastest measured route for the device): ``act1``'s ReLU is applied by
    ``pwconv1``'s projection and the rest of it by ``act1``'s
    :meth:`~.mlp.StarReLU.square_relu_output_`; ``act1`` is not called as a
    module.

    Args:
        dim (int): Channels C.
        expansion_ratio (float): Hidden channels are ``int(r * C)``.
            Defaults to 2.
        kernel_size (int): Odd depthwise kernel size. Defaults to 7.
    """

    def __init__(self, dim: int, expansion_ratio: float = 2,
                 kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(
                f'kernel_size must be odd, got {kernel_size!r}.')
        hidden = int(expansion_ratio * dim)
        self.pwconv1 = nn.Linear(dim, hidden, bias=False)
        self.act1 = StarReLU()
        self.dwconv = nn.Conv2d(
            hidden,
            hidden,
            kernel_size=kernel_size,
            padding=kernel_size // 2,
            groups=hidden,
            bias=False)
        self.pwconv2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1.square_relu_output_(
            channel_linear(x, self.pwconv1.weight, activation='relu'))
        # (B, H, W, C) contiguous -> an NCHW view in channels_last memory
        # (a view); the output permutes back to channels-last tokens
        x = depthwise_conv2d(x.permute(0, 3, 1, 2), self.dwconv.weight,
                             self.dwconv.padding[0]).permute(0, 2, 3, 1)
        return channel_linear(x, self.pwconv2.weight)


class RandomMixing(nn.Module):
    """RandFormer's token mixer: a frozen random N x N matrix mixes the
    tokens, ``out[b, m, c] = sum_n R[m, n] * x[b, n, c]`` with tokens
    flattened row-major inside a ``window x window`` window (N = window**2).

    The official model applies R to the whole map, so it only runs when the
    map is exactly ``window x window``. Here the map is tiled from the
    top-left corner into non-overlapping windows and R mixes each window; a
    window cut by the bottom / right border is computed as if its missing
    tokens were zero (i.e. with R restricted to the existing tokens, not
    renormalised). On a ``window x window`` map this is exactly the official
    computation.

    ``random_matrix`` is an ``nn.Parameter`` with ``requires_grad=False``
    (as in the official state_dict and parameter counts) and is used
    detached, so it never receives a gradient: optimisers skip it (its
    ``grad`` stays None) whatever ``requires_grad`` is later set to, and
    ``frozen_stages`` has nothing to change on it. A loaded matrix is used
    as is. The initial value is the official one: a row-wise softmax of
    uniform random numbers.

    Args:
        window (int): Window side; the matrix is ``window**2`` square.
    """

    def __init__(self, window: int) -> None:
        super().__init__()
        num_tokens = window_tokens(window)
        self.window = window
        self.random_matrix = nn.Parameter(
            torch.softmax(torch.rand(num_tokens, num_tokens), dim=-1),
            requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # out[m] = sum_n R[m, n] x[n] for the tokens of each window and
        # channel; mix_in_windows pads without branching on the map size
        # (a window x window map is one window, the official case), so a
        # traced ONNX export with dynamic H and W stays right at every size.
        matrix = self.random_matrix.detach()
        return mix_in_windows(x, self.window, lambda t: t @ matrix.t())

    def extra_repr(self) -> str:
        return f'window={self.window}'
