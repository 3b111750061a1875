"""Token mixers of the MetaFormer families (convolutional and fixed ones).

A token mixer maps a channels-last tensor (B, H, W, C) to one of the same
shape. This module holds the pooling mixer (PoolFormer v1/v2), the inverted
separable convolution (ConvFormer, CAFormer) and the frozen random mixing
(RandFormer). The other mixers: ``attention.MultiheadSelfAttention``
(CAFormer, PiT), ``emsa.EMSA`` (ResT/ResTv2), ``cycle.CycleMixer``
(CycleMLP) and ``token_mixing.WindowTokenMixing`` (MLP-Mixer, ResMLP). A
family picks its mixer per stage in ``MetaFormerBackbone.build_token_mixer``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .mlp import StarReLU, _tracing, autocast_dtype, channel_linear
from .token_mixing import mix_in_windows, window_tokens


def _avg_pool_valid(x: torch.Tensor, pool_size: int) -> torch.Tensor:
    """Stride-1 mean of the valid neighbours (``count_include_pad=False``)."""
    return F.avg_pool2d(x, pool_size, 1, pool_size // 2,
                        count_include_pad=False)


class _NeighbourMean(torch.autograd.Function):
    """``avg_pool2d(x, k, 1, k // 2, count_include_pad=False)`` whose
    gradient is itself one pooling: each output is the mean of the ``c_i``
    valid neighbours of pixel i, and for a centred odd window j is in the
    window of i exactly when i is in the window of j, so ``dx[j] = sum over
    the window of j of g[i] / c_i``: a sum pooling of ``g / c`` (zero
    padding). PyTorch's CPU ``avg_pool2d_backward`` in bfloat16 was 4.6x
    slower than this on PoolFormer's stage-1 maps (channels last, 128 x 128
    x 64) and 2.6x less accurate; the gradient is computed in float32 and
    rounded once."""

    @staticmethod
    def forward(ctx, x, pool_size):
        ctx.pool_size = pool_size
        return _avg_pool_valid(x, pool_size)

    @staticmethod
    def backward(ctx, grad):
        k = ctx.pool_size
        dtype = torch.promote_types(grad.dtype, torch.float32)
        count = F.avg_pool2d(
            grad.new_ones((1, 1, *grad.shape[2:]), dtype=dtype), k, 1,
            k // 2, divisor_override=1)
        summed = F.avg_pool2d(grad.to(dtype) / count, k, 1, k // 2,
                              divisor_override=1)
        return summed.to(grad.dtype), None


def neighbour_mean(x: torch.Tensor, pool_size: int) -> torch.Tensor:
    """``F.avg_pool2d(x, pool_size, 1, pool_size // 2,
    count_include_pad=False)`` (odd ``pool_size``), with the gradient of
    :class:`_NeighbourMean` for bfloat16 / float16 maps when autograd needs
    one (faster and rounded once); the plain operator otherwise (float32,
    where PyTorch's gradient was as fast in a whole PoolFormer step, no
    gradients, tracing).

    Args:
        x (Tensor): (B, C, H, W), any memory format.
        pool_size (int): Odd window side.

    Returns:
        Tensor: Same shape as ``x``.
    """
    if (not (torch.is_grad_enabled() and x.requires_grad) or _tracing()
            or x.dtype not in (torch.bfloat16, torch.float16)):
        return _avg_pool_valid(x, pool_size)
    return _NeighbourMean.apply(x, pool_size)


class Pooling(nn.Module):
    """PoolFormer's mixer: ``avgpool3x3(x) - x`` (borders average the valid
    neighbours only, i.e. ``count_include_pad=False``), through
    :func:`neighbour_mean` (fast gradient).

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


class _DepthwiseConv2d(torch.autograd.Function):
    """Depthwise stride-1 convolution whose weight gradient is itself one
    depthwise convolution: that of channel c is the correlation of the
    padded input of c with the output gradient of c, i.e. a convolution of
    the padded input with the output gradient as kernel (groups = channels,
    batch folded into each group). PyTorch's CPU weight gradient of a
    depthwise convolution was 3-30x slower (bfloat16 worst, up to 80x) on
    the ConvFormer/CAFormer shapes; the input gradient is PyTorch's own."""

    @staticmethod
    def forward(ctx, x, weight, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight, None, 1, padding, 1, x.shape[1])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        pad = ctx.padding
        channels = x.shape[1]
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [1, 1], [pad, pad], [1, 1], False,
                [0, 0], channels, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            batch = x.shape[0]
            padded = F.pad(x, (pad, pad, pad, pad))
            if batch > 1:  # channel-major groups of `batch` inputs each
                padded = padded.transpose(0, 1).reshape(
                    1, channels * batch, *padded.shape[2:])
            kernel = grad.transpose(0, 1)  # (C, B, H, W)
            grad_w = F.conv2d(padded, kernel.to(padded.dtype), None, 1, 0,
                              1, channels).view_as(weight)
        return grad_x, grad_w, None


def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor,
                     padding: int) -> torch.Tensor:
    """``F.conv2d(x, weight, padding=padding, groups=C)`` (stride 1, no
    bias) with the fast weight gradient of :class:`_DepthwiseConv2d` when
    autograd needs it (not while tracing).

    Args:
        x (Tensor): (B, C, H, W), any memory format.
        weight (Tensor): (C, 1, k, k).
        padding (int): Zero padding on each side.

    Returns:
        Tensor: (B, C, H + 2 * padding - k + 1, ...).
    """
    # The plain convolution also while tracing: exporters and FLOP counters
    # see a convolution, not an opaque Python autograd function.
    if (not (torch.is_grad_enabled() and weight.requires_grad)
            or torch.jit.is_tracing()):
        return F.conv2d(x, weight, None, 1, padding, 1, x.shape[1])
    device_type = x.device.type
    if autocast_dtype(device_type) is not None:  # cast as autocast would
        dtype = autocast_dtype(device_type)
        x, weight = x.to(dtype), weight.to(dtype)
    with torch.autocast(device_type, enabled=False):
        return _DepthwiseConv2d.apply(x, weight, padding)


class SepConv(nn.Module):
    """Inverted separable convolution of ConvFormer / CAFormer (MobileNetV2
    style), on channels-last tokens.

    ``pwconv1`` (Linear C -> rC, no bias) -> ``act1`` (StarReLU) ->
    ``dwconv`` (depthwise k x k, no bias) -> ``pwconv2`` (Linear rC -> C, no
    bias). The pointwise layers go through
    :func:`~.mlp.channel_linear`, the depthwise one through
    :func:`depthwise_conv2d` (fast weight gradient). The activation's ReLU
    is computed by ``pwconv1``'s :func:`channel_linear`, the rest in one
    pass (in place without gradients); ``act1`` is not called as a module.

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
        # StarReLU's ReLU in the projection (fused into the GEMM where it
        # can be), the rest in one pass (in place unless autograd needs it)
        x = self.act1.square_relu_output_(
            channel_linear(x, self.pwconv1.weight, activation='relu'))
        # (B, H, W, C) contiguous -> an NCHW view in channels_last memory:
        # the depthwise conv runs without a copy and its output permutes back
        # to a contiguous channels-last tensor.
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
