"""CycleMLP ("CycleMLP: A MLP-like Architecture for Dense Prediction").

The MetaFormer with the Cycle MLP token mixer, channel LayerNorm block norms,
GELU MLPs and no layer scale; dense outputs are normalised by a LayerNorm each,
as in the official ``CycleMLP_B*_feat`` models.

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
against the formula and raises a ``ValueError`` on any difference, both in
:meth:`CycleMLP.convert_checkpoint` (before anything is copied) and in
:class:`CycleFC`'s state_dict hook (for any other path, e.g. mmengine's
``load_checkpoint`` of a detector checkpoint).
"""
from typing import Dict, List, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model.weight_init import trunc_normal_

from mmmetaformer.registry import MODELS
from ..layers import Mlp, build_norm
from .base import MetaFormerBackbone, MetaFormerBlock, rename_keys
from .poolformer import convert_poolformer_official

IMAGENET_URL = ('https://github.com/ShoufaChen/CycleMLP/releases/download/'
                'v0.1/CycleMLP_{}.pth')


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


def convert_cyclemlp_official(
        state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename official CycleMLP keys (ShoufaChen/CycleMLP, ImageNet releases
    and ``CycleMLP_B*_feat``) to :class:`CycleMLP` keys.

    The layout (``patch_embed``, ``network.{0..6}``, ``norm{0,2,4,6}``) is
    PoolFormer v1's, so PoolFormer's renaming is reused; the token mixer
    ``attn`` becomes ``token_mixer``. Every ``*.offset`` buffer is checked
    against the official formula (``ValueError`` on any difference).
    """
    converted = rename_keys(
        convert_poolformer_official(state_dict),
        [(r'\.attn\.', '.token_mixer.')])
    for key, value in converted.items():
        if key.endswith(('sfc_h.offset', 'sfc_w.offset')):
            kernel = (1, 3) if key.endswith('sfc_h.offset') else (3, 1)
            check_cycle_offset(key, value, value.shape[1] // 2, kernel)
    return converted


@MODELS.register_module()
class CycleMLP(MetaFormerBackbone):
    """CycleMLP backbone (B1-B5).

    Block: ``x + mixer(LN(x))``, then ``x + fc2(GELU(fc1(LN(x))))`` with
    ``LN = LayerNorm(C)`` (eps 1e-5, with bias), no layer scale, and the Cycle
    MLP token mixer (:class:`CycleMixer`, Cycle FC as an exact shift +
    projection, see the module docstring). Stem: 7x7/4 conv, padding 2;
    downsamplers: 3x3/2 convs; no norms in either.

    ====  ==================  =============  ===========  =========
    arch  embed_dims          depths         mlp_ratios   params*
    ====  ==================  =============  ===========  =========
    b1    64, 128, 320, 512   2, 2, 4, 2     4, 4, 4, 4   14.6M
    b2    64, 128, 320, 512   2, 3, 10, 3    4, 4, 4, 4   26.3M
    b3    64, 128, 320, 512   3, 4, 18, 3    8, 8, 4, 4   37.9M
    b4    64, 128, 320, 512   3, 8, 27, 3    8, 8, 4, 4   51.3M
    b5    96, 192, 384, 768   3, 4, 24, 3    4, 4, 4, 4   75.0M
    ====  ==================  =============  ===========  =========

    \\* dense backbone with the four output norms.

    Args:
        arch (str | dict): ``'b1'`` ... ``'b5'``, or a dict with
            ``embed_dims``, ``depths`` (4 ints each, dims >= 4) and optionally
            ``mlp_ratios`` (scalar or per stage, default 4).
        **kwargs: The arguments of :class:`MetaFormerBackbone`
            (``in_channels``, ``out_indices``, ``out_norm`` -- default
            ``LayerNorm(C)`` eps 1e-5 per output, as in the official dense
            models --, ``frozen_stages``, ``norm_eval``, ``with_cp``,
            ``drop_path_rate``, ``init_cfg``).

    Official ImageNet checkpoints (``{'model': state_dict}``; classifier
    ``norm``/``head`` ignored, output norms kept at their initialisation) and
    official-key dense state_dicts load through
    ``init_cfg=dict(type='Pretrained', checkpoint=...)``; their ``offset``
    buffers must equal the official formula. Input: any H, W >= 32.
    """
    arch_settings = {
        'b1': dict(embed_dims=[64, 128, 320, 512], depths=[2, 2, 4, 2],
                   mlp_ratios=[4, 4, 4, 4]),
        'b2': dict(embed_dims=[64, 128, 320, 512], depths=[2, 3, 10, 3],
                   mlp_ratios=[4, 4, 4, 4]),
        'b3': dict(embed_dims=[64, 128, 320, 512], depths=[3, 4, 18, 3],
                   mlp_ratios=[8, 8, 4, 4]),
        'b4': dict(embed_dims=[64, 128, 320, 512], depths=[3, 8, 27, 3],
                   mlp_ratios=[8, 8, 4, 4]),
        'b5': dict(embed_dims=[96, 192, 384, 768], depths=[3, 4, 24, 3],
                   mlp_ratios=[4, 4, 4, 4]),
    }
    arch_defaults = dict(mlp_ratios=4)
    default_out_norm = dict(type='LN', eps=1e-5)
    block_norm = dict(type='LN', eps=1e-5)

    def __init__(self, arch: Union[str, dict] = 'b1', **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)

    def build_block(self, stage: int, index: int, dim: int,
                    drop_path: float) -> nn.Module:
        ratio = self.per_stage('mlp_ratios')[stage]
        if not isinstance(ratio, (int, float)) or ratio <= 0:
            raise ValueError(f"arch['mlp_ratios'] must be positive numbers, "
                             f'got {self.arch["mlp_ratios"]!r}.')
        return MetaFormerBlock(
            dim,
            token_mixer=CycleMixer(dim),
            mlp=Mlp(dim, int(dim * ratio), act='GELU'),
            norm1=build_norm(self.block_norm, dim),
            norm2=build_norm(self.block_norm, dim),
            drop_path=drop_path)

    def _init_module(self, module: nn.Module) -> None:
        # Official init: truncated normal (std 0.02) for Linear and Cycle FC
        # weights, zero biases; LayerNorm 1/0; convolutions keep PyTorch's.
        super()._init_module(module)
        if isinstance(module, CycleFC):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    @classmethod
    def convert_checkpoint(cls, state_dict: Dict[str, torch.Tensor]
                           ) -> Tuple[Dict[str, torch.Tensor], str]:
        if any(k.startswith(('network.', 'patch_embed.')) for k in state_dict):
            return convert_cyclemlp_official(state_dict), 'official'
        return dict(state_dict), 'native'
