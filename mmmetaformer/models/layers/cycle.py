"""CycleMLP's token mixer: Cycle FC layers and the Cycle MLP mixer.

Cycle FC without deformable convolution
---------------------------------------
The official Cycle FC is ``torchvision.ops.deform_conv2d`` with a 1x1 kernel,
one offset group per input channel and *constant integer* offsets. Bilinear
sampling at an integer position is the value at that position (zero outside
the map), so Cycle FC is exactly::

    out[b, y, x, o] = bias[o] + sum_i W[o, i] * in[b, y + dy_i, x + dx_i, i]

with ``in`` zero outside the map: a per-channel, zero-filled spatial shift
followed by a 1x1 projection. :class:`CycleFC` computes exactly that with two
operators on channels-last tokens: the shift as a depthwise convolution whose
kernel is one-hot (one tap of weight 1 per channel, so every output is an
input value plus zeros), then one matrix product. No torchvision, no
sampling, no gather; standard ONNX operators only (Conv, MatMul).

The ``offset`` buffers
----------------------
The official modules store the offsets in a persistent ``offset`` buffer of
shape (1, 2C, 1, 1), which is part of every official checkpoint. Here the
buffer is kept, persistent and with the official values, so state_dicts keep
the official layout and the loading report lists the keys as loaded; but the
forward pass uses the shifts given by the official formula (static Python
integers), never the buffer. Every load checks the buffer in the checkpoint
against the formula and raises a ``ValueError`` on any difference (shape or
value), with the channel count taken from the module that receives the
buffer: in ``CycleMLP.check_checkpoint`` (before anything is copied) and in
:class:`CycleFC`'s state_dict hook (for any other path, e.g. mmengine's
``load_checkpoint`` of a detector checkpoint).
"""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .mlp import Mlp


def cycle_shifts(channels: int, length: int) -> List[int]:
    """The official Cycle FC shift of each input channel.

    Channel ``i`` of a Cycle FC with kernel length ``K`` samples at offset
    ``(i + K // 2) mod K - K // 2`` along its axis; for ``K = 3`` the shifts
    cycle 0, +1, -1, 0, +1, -1, ...

    Args:
        channels (int): Input channels.
        length (int): Kernel length ``K`` along the shifted axis.

    Returns:
        list[int]: One shift per channel.
    """
    start = length // 2
    return [(i + start) % length - start for i in range(channels)]


def cycle_offset(channels: int, kernel_size: Tuple[int, int]) -> torch.Tensor:
    """The official ``offset`` buffer of a Cycle FC, shape (1, 2C, 1, 1).

    Entry ``2i`` is channel i's shift along H (dy), entry ``2i + 1`` along W
    (dx), as ``deform_conv2d`` reads them.

    Args:
        channels (int): Input channels.
        kernel_size (tuple[int, int]): ``(1, K)`` (shifts along W) or
            ``(K, 1)`` (shifts along H).
    """
    kh, kw = kernel_size
    offset = torch.zeros(1, 2 * channels, 1, 1)
    shifts = torch.tensor(cycle_shifts(channels, kh * kw), dtype=offset.dtype)
    if kh == 1:
        offset[0, 1::2, 0, 0] = shifts
    else:
        offset[0, 0::2, 0, 0] = shifts
    return offset


def check_cycle_offset(key: str, value: torch.Tensor, channels: int,
                       kernel_size: Tuple[int, int]) -> None:
    """Raise a ``ValueError`` if a checkpoint's ``offset`` buffer differs from
    the official formula (shape or any value)."""
    expected = cycle_offset(channels, kernel_size)
    if tuple(value.shape) != tuple(expected.shape):
        raise ValueError(
            f'Checkpoint key {key!r} has shape {tuple(value.shape)}; a Cycle '
            f'FC with {channels} input channels and kernel {kernel_size} has '
            f'offsets of shape {tuple(expected.shape)}.')
    value = value.detach().to('cpu', torch.float64)
    if not torch.equal(value, expected.to(torch.float64)):
        bad = (value != expected).flatten().nonzero().flatten()[:6].tolist()
        raise ValueError(
            f'Checkpoint key {key!r} holds Cycle FC offsets that differ from '
            f'the official formula (kernel {kernel_size}) at flat indices '
            f'{bad}: found {value.flatten()[bad].tolist()}, expected '
            f'{expected.flatten()[bad].tolist()}. Cycle FC here is an exact '
            'shift for the official offsets only; other offsets would be '
            'silently ignored, so the checkpoint is refused.')


class CycleFC(nn.Module):
    """Cycle FC on channels-last maps, as a zero-filled shift + projection.

    Equal to the official ``CycleFC`` (a 1x1 ``deform_conv2d`` with one
    constant integer offset per input channel): input channel ``i`` is shifted
    by ``s_i`` (see :func:`cycle_shifts`) along W for ``kernel_size=(1, K)``
    or along H for ``(K, 1)`` -- the output at position p reads the input at
    ``p + s_i``, zero outside the map -- then all channels are projected by a
    1x1 linear layer. The shift is a depthwise convolution with a fixed
    one-hot kernel (non-persistent buffer ``shift_kernel``).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (tuple[int, int]): ``(1, K)`` or ``(K, 1)``, K >= 1. The
            official models use (1, 3) (``sfc_h``) and (3, 1) (``sfc_w``).
        bias (bool): Whether the projection has a bias. Defaults to True.

    Parameters and buffers: ``weight`` (out, in) -- the official
    (out, in, 1, 1) weights load into it reshaped --, ``bias`` (out), and the
    persistent ``offset`` buffer (1, 2 * in, 1, 1) with the official values,
    validated on every load and not used by the forward pass.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Tuple[int, int] = (1, 3),
                 bias: bool = True) -> None:
        super().__init__()
        if (not isinstance(kernel_size, (tuple, list)) or len(kernel_size) != 2
                or not all(isinstance(k, int) and k >= 1
                           for k in kernel_size) or min(kernel_size) != 1):
            raise ValueError(
                'kernel_size must be (1, K) or (K, 1) with an int K >= 1, got '
                f'{kernel_size!r}.')
        for name, value in (('in_channels', in_channels),
                            ('out_channels', out_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f'{name} must be a positive int, got {value!r}.')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = tuple(kernel_size)
        # axis of the channels-last (B, H, W, C) tensor that is shifted
        self.axis = 2 if self.kernel_size[0] == 1 else 1
        self.length = self.kernel_size[0] * self.kernel_size[1]
        shifts = cycle_shifts(in_channels, self.length)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        # The shift as a depthwise convolution with a one-hot kernel: tap
        # ``reach + s_i`` of channel i is 1, all others 0, zero padding.
        self.reach = max(abs(s) for s in shifts)
        kernel = torch.zeros(in_channels, 2 * self.reach + 1)
        kernel[torch.arange(in_channels),
               torch.tensor(shifts) + self.reach] = 1.0
        shape = (1, -1) if self.axis == 2 else (-1, 1)
        self.register_buffer(
            'shift_kernel',
            kernel.view(in_channels, 1, *shape),
            persistent=False)
        self.register_buffer(
            'offset', cycle_offset(in_channels, self.kernel_size),
            persistent=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise like a 1x1 convolution (PyTorch's default)."""
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        if self.bias is not None:
            bound = 1 / self.in_channels**0.5
            nn.init.uniform_(self.bias, -bound, bound)

    def shift(self, x: torch.Tensor) -> torch.Tensor:
        """Shift every channel of ``x`` (B, H, W, C) by its offset, zero
        filled: ``out[..., p, i] = x[..., p + s_i, i]`` along the axis.

        Computed as a depthwise convolution with a one-hot kernel (one
        operator, channels-last in and out): each output is ``1 * x`` at the
        shifted position plus zeros, so it equals the shift exactly for finite
        inputs.
        """
        if self.reach == 0:
            return x
        padding = (0, self.reach) if self.axis == 2 else (self.reach, 0)
        out = F.conv2d(
            x.permute(0, 3, 1, 2),
            self.shift_kernel,
            padding=padding,
            groups=self.in_channels)
        return out.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, in_channels) -> (B, H, W, out_channels)."""
        return F.linear(self.shift(x), self.weight, self.bias)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + 'offset'
        if key in state_dict:
            check_cycle_offset(key, state_dict[key], self.in_channels,
                               self.kernel_size)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'kernel_size={self.kernel_size}, '
                f'bias={self.bias is not None}')


class CycleMixer(nn.Module):
    """The Cycle MLP token mixer (the official ``CycleMLP`` module, ``attn``).

    On channels-last ``y``: ``h = sfc_h(y)`` (Cycle FC, kernel (1, 3), shifts
    along W), ``w = sfc_w(y)`` (kernel (3, 1), shifts along H),
    ``c = mlp_c(y)`` (Linear without bias); per-sample, per-channel weights
    ``a = softmax over the 3 branches of reweight(mean_HW(h + w + c))``
    (``reweight``: C -> C // 4 -> 3C MLP, output index ``c * 3 + branch``);
    output ``proj(h * a0 + w * a1 + c * a2)``.

    Args:
        dim (int): Channels, at least 4.
        kernel_length (int): Cycle FC kernel length. Defaults to 3.
    """

    def __init__(self, dim: int, kernel_length: int = 3) -> None:
        super().__init__()
        if not isinstance(dim, int) or dim < 4:
            raise ValueError(
                f'CycleMixer needs dim >= 4 (its reweight MLP has dim // 4 '
                f'hidden channels), got {dim!r}.')
        self.mlp_c = nn.Linear(dim, dim, bias=False)
        self.sfc_h = CycleFC(dim, dim, (1, kernel_length))
        self.sfc_w = CycleFC(dim, dim, (kernel_length, 1))
        self.reweight = Mlp(dim, dim // 4, act='GELU', out_dim=dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels = x.shape[0], x.shape[-1]
        h = self.sfc_h(x)
        w = self.sfc_w(x)
        c = self.mlp_c(x)
        # mean of (h + w + c) over H, W, without materialising the sum
        a = h.mean(dim=(1, 2)) + w.mean(dim=(1, 2)) + c.mean(dim=(1, 2))
        a = self.reweight(a).reshape(batch, channels, 3).softmax(dim=2)
        a = a[:, None, None]  # (B, 1, 1, C, 3)
        x = torch.addcmul(torch.addcmul(h * a[..., 0], w, a[..., 1]), c,
                          a[..., 2])
        return self.proj(x)
