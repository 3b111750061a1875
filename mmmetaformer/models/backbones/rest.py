"""ResT and ResTv2 ("ResT: An Efficient Transformer for Visual Recognition",
"ResT V2: Simpler, Faster and Stronger") on the MetaFormer core.

Both are MetaFormers whose token mixer is an efficient multi-head
self-attention (EMSA): keys and values come from a map reduced by a strided
depthwise convolution. The families differ in

======================  ==========================  ==========================
component               ResT (v1)                   ResTV2
======================  ==========================  ==========================
stem (stride 4)         3x3/2, 3x3/1, 3x3/2 convs   3x3/2, 3x3/2, 1x1 convs
                        (BN+ReLU after the first    (BN+ReLU after the first
                        two), then PA               two), then PA, then LN
downsampler             3x3/2 conv, BN, PA          3x3/2 conv, PA, LN
attention extras        heads > 1: 1x1 conv mixing  upsample branch: depthwise
                        the heads' logits, softmax, conv + PixelShuffle of the
                        InstanceNorm of each head's values, LN, added before
                        attention map               the output projection
norm eps                1e-5                        1e-6
dense output norms      LN, in the trunk (stage 4:  channel LN per stage,
                        the ImageNet final          side branches
                        ``norm``)
======================  ==========================  ==========================

PA ("pixel attention") is ``x * sigmoid(dwconv3x3(x))``. Blocks are pre-norm
with GELU MLPs and no layer scale.

Differences from the official code (wofmanaf/ResT), which only runs on some
input sizes: every spatial size here is read from the tensors, so any input
size works and, where the official code runs, the outputs are identical.

* ResT v1 tracks ``H // 2`` after a stride-2 convolution that produces
  ``ceil(H / 2)``, and so needs ``ceil(H / 4)`` divisible by 8.
* The InstanceNorm of ResT v1 raises on a 1x1 attention map. Here a constant
  attention map -- in particular a 1x1 one -- normalises to **zero** (the
  value of ``(a - mean) / sqrt(var + eps)`` with ``var = 0``, the same
  result the official code gives for a constant map with more than one
  element, e.g. when the key/value map is 1x1). The attention then
  contributes only the output projection's bias.
* ResTV2 reshapes the values to an ``(H / sr, W / sr)`` map, so it needs
  multiples of 32. Here the value map has the reduced map's actual size
  ``ceil(H / sr) x ceil(W / sr)`` and the upsampled map (``sr`` times larger)
  is cropped to ``H x W`` at the bottom/right, where its extra rows/columns
  come from the spatial reduction's zero padding.
"""
import math
import re
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmmetaformer.registry import MODELS
from ..layers import Mlp, build_norm
from .base import NUM_STAGES, MetaFormerBackbone, MetaFormerBlock, rename_keys

__all__ = [
    'PixelAttention', 'ResTEmbed', 'EMSA', 'ResT', 'ResTV2',
    'convert_rest_official', 'convert_restv2_official'
]


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


def instance_norm_attention(attn: torch.Tensor,
                            eps: float = 1e-5) -> torch.Tensor:
    """``InstanceNorm2d`` (no affine, input statistics) of each head's
    N x N' attention map.

    A constant map (which includes every 1x1 map, where ``nn.InstanceNorm2d``
    raises) has variance 0 and normalises to zeros.
    """
    if attn.shape[-1] * attn.shape[-2] > 1:
        return F.instance_norm(attn, eps=eps)
    return torch.zeros_like(attn)


class EMSA(nn.Module):
    """ResT's efficient multi-head self-attention on channels-last tokens.

    ``q`` comes from every token; keys and values from the map reduced by
    ``sr`` (depthwise conv, kernel ``sr + 1``, stride ``sr``, padding
    ``sr // 2``) and ``sr_norm`` when ``sr_ratio > 1``. ``kv`` channels are
    ordered (k/v, head, head_dim).

    Args:
        dim (int): Channels.
        num_heads (int): Attention heads; must divide ``dim``.
        sr_ratio (int): Spatial reduction of keys/values (1 = none).
        head_transform (bool): ResT v1 (used when ``num_heads > 1``): mix the
            heads' logits with a 1x1 conv (``transform_conv``), softmax, then
            normalise each head's attention map (InstanceNorm, eps 1e-5).
        upsample (bool): ResTV2: add ``up_norm(PixelShuffle(up(v)))``, the
            values mapped back to the query resolution, to the attention
            output before ``proj``.
        norm_eps (float): Epsilon of ``sr_norm`` and ``up_norm``.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 sr_ratio: int,
                 head_transform: bool = False,
                 upsample: bool = False,
                 norm_eps: float = 1e-5) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'num_heads ({num_heads}) must divide the '
                             f'channels ({dim}).')
        if sr_ratio < 1:
            raise ValueError(f'sr_ratio must be >= 1, got {sr_ratio}.')
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.sr_ratio = sr_ratio
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio + 1, stride=sr_ratio,
                                padding=sr_ratio // 2, groups=dim)
            self.sr_norm = nn.LayerNorm(dim, eps=norm_eps)
        self.head_transform = head_transform and num_heads > 1
        if self.head_transform:
            self.transform_conv = nn.Conv2d(num_heads, num_heads, 1)
        self.upsample = upsample
        if upsample:
            self.up = nn.Sequential(
                nn.Conv2d(dim, sr_ratio * sr_ratio * dim, 3, padding=1,
                          groups=dim), nn.PixelShuffle(sr_ratio))
            self.up_norm = nn.LayerNorm(dim, eps=norm_eps)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        heads, d = self.num_heads, self.head_dim
        q = self.q(x).reshape(B, H * W, heads, d).transpose(1, 2)
        if self.sr_ratio > 1:
            y = self.sr(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            y = self.sr_norm(y)
        else:
            y = x
        h, w = y.shape[1:3]
        kv = self.kv(y)  # (B, h, w, 2C): channel = s * C + head * d + i
        k, v = kv.reshape(B, h * w, 2, heads, d).permute(2, 0, 3, 1, 4)
        if self.head_transform:
            attn = (q @ k.transpose(-2, -1)) * self.scale
            attn = self.transform_conv(attn).softmax(dim=-1)
            out = instance_norm_attention(attn) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(B, H, W, C)
        if self.upsample:
            # v as an NCHW map (channel = head * d + i); channels-last memory
            v_map = kv[..., C:].permute(0, 3, 1, 2)
            up = self.up(v_map)[:, :, :H, :W]
            out = out + self.up_norm(up.permute(0, 2, 3, 1))
        return self.proj(out)

    def extra_repr(self) -> str:
        return (f'dim={self.dim}, num_heads={self.num_heads}, '
                f'sr_ratio={self.sr_ratio}, '
                f'head_transform={self.head_transform}, '
                f'upsample={self.upsample}')


def _stage_block(m: re.Match) -> str:
    return f'stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}.'


_REST_RULES = [
    # BasicStem conv1/norm1/conv2/norm2/conv3 -> stem.proj.{0,1,3,4,6}
    (r'^stem\.(conv|norm)([123])\.',
     lambda m: 'stem.proj.{}.'.format(
         {('conv', '1'): 0, ('norm', '1'): 1, ('conv', '2'): 3,
          ('norm', '2'): 4, ('conv', '3'): 6}[m.groups()])),
    (r'^patch_embed_([234])\.(conv|norm|pos)\.',
     lambda m: 'stages.{}.downsample.{}.'.format(
         int(m.group(1)) - 1,
         {'conv': 'proj.0', 'norm': 'proj.1', 'pos': 'pos'}[m.group(2)])),
    (r'^stage([1-4])\.(\d+)\.attn\.', lambda m: _stage_block(m) +
     'token_mixer.'),
    (r'^stage([1-4])\.(\d+)\.', _stage_block),
    # dense norm1/2/3 -> norm0/1/2; the final (ImageNet) norm -> norm3
    (r'^norm([123]?)\.',
     lambda m: f'norm{int(m.group(1)) - 1 if m.group(1) else 3}.'),
]

_RESTV2_RULES = [
    (r'^patch_([234])\.(proj|pos|norm)\.',
     lambda m: 'stages.{}.downsample.{}.'.format(
         int(m.group(1)) - 1,
         {'proj': 'proj.0', 'pos': 'pos', 'norm': 'norm'}[m.group(2)])),
    (r'^stage([1-4])\.(\d+)\.attn\.', lambda m: _stage_block(m) +
     'token_mixer.'),
    (r'^stage([1-4])\.(\d+)\.', _stage_block),
    # detectron2 norm_k.0.* and mmseg norm_k.* -> norm{k-1}.*
    (r'^norm_([1-4])\.(0\.)?', lambda m: f'norm{int(m.group(1)) - 1}.'),
]


def convert_rest_official(
        state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename official ResT v1 keys (ImageNet release, detectron2 backbone
    without its ``backbone.bottom_up.`` prefix) to :class:`ResT` keys.

    ``stem.conv1/norm1/conv2/norm2/conv3`` -> ``stem.proj.{0,1,3,4,6}``,
    ``patch_embed_k.{conv,norm,pos}`` -> ``stages.{k-1}.downsample.
    {proj.0,proj.1,pos}``, ``stagek.j.attn`` -> ``stages.{k-1}.blocks.j.
    token_mixer``, the dense ``normk`` -> ``norm{k-1}`` and the final
    ``norm`` -> ``norm3``. ``head.*`` keeps its name.
    """
    return rename_keys(state_dict, _REST_RULES)


def convert_restv2_official(
        state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename official ResTv2 keys (ImageNet release, detectron2 and mmseg
    backbones without their prefixes) to :class:`ResTV2` keys.

    ``stem.*`` keeps its names, ``patch_k.{proj,pos,norm}`` ->
    ``stages.{k-1}.downsample.{proj.0,pos,norm}``, ``stagek.j.attn`` ->
    ``stages.{k-1}.blocks.j.token_mixer``, and both dense output norm
    namings ``norm_k.0.*`` (detectron2) and ``norm_k.*`` (mmseg) ->
    ``norm{k-1}.*``. The classifier's ``norm.*`` and ``head.*`` keep their
    names.
    """
    return rename_keys(state_dict, _RESTV2_RULES)


class _ResTBase(MetaFormerBackbone):
    """What ResT and ResTV2 share: arch keys, blocks, checkpoint handling."""
    arch_defaults = dict(num_heads=[1, 2, 4, 8], sr_ratios=[8, 4, 2, 1],
                         mlp_ratios=4)
    norm_eps = 1e-5
    head_transform = False
    upsample = False
    # converted checkpoint keys that this family never uses
    unused_keys: Tuple[str, ...] = (r'head\.', )
    _official_rules: list = []
    # official key prefixes that identify the format
    _official_prefixes: Tuple[str, ...] = ()
    _dense_norm_key = r'$^'

    def __init__(self, arch, **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)
        unused_norms = tuple(
            rf'norm{i}\.' for i in range(NUM_STAGES)
            if i not in self.out_indices or self.out_norm is None)
        self.ignored_checkpoint_keys = self.unused_keys + unused_norms

    @classmethod
    def parse_arch(cls, arch: Union[str, dict]) -> dict:
        settings = super().parse_arch(arch)
        for key in ('num_heads', 'sr_ratios', 'mlp_ratios'):
            value = settings[key]
            values = value if isinstance(value, (list, tuple)) else [value]
            if (len(values) not in (1, NUM_STAGES)
                    or not all(isinstance(v, (int, float)) and v > 0
                               for v in values)):
                raise ValueError(
                    f'arch[{key!r}] must be a positive number or '
                    f'{NUM_STAGES} of them, got {value!r}.')
        for key in ('num_heads', 'sr_ratios'):
            value = settings[key]
            values = value if isinstance(value, (list, tuple)) else [value]
            if not all(isinstance(v, int) for v in values):
                raise ValueError(f'arch[{key!r}] must be ints, got '
                                 f'{value!r}.')
        heads = settings['num_heads']
        heads = heads if isinstance(heads, (list, tuple)) else [heads] * 4
        for dim, h in zip(settings['embed_dims'], heads):
            if dim % h:
                raise ValueError(
                    f'arch: every embed_dims entry must be divisible by its '
                    f'num_heads entry, got embed_dims='
                    f'{settings["embed_dims"]} and num_heads={heads}.')
        return settings

    def build_block(self, stage: int, index: int, dim: int,
                    drop_path: float) -> nn.Module:
        ln = dict(type='LN', eps=self.norm_eps)
        mixer = EMSA(
            dim,
            num_heads=self.per_stage('num_heads')[stage],
            sr_ratio=self.per_stage('sr_ratios')[stage],
            head_transform=self.head_transform,
            upsample=self.upsample,
            norm_eps=self.norm_eps)
        hidden = int(dim * self.per_stage('mlp_ratios')[stage])
        return MetaFormerBlock(
            dim,
            token_mixer=mixer,
            mlp=Mlp(dim, hidden, act='GELU'),
            norm1=build_norm(ln, dim),
            norm2=build_norm(ln, dim),
            drop_path=drop_path)

    def _init_module(self, module: nn.Module) -> None:
        """Official init: Linear trunc-normal(0.02), Conv2d normal with std
        ``sqrt(2 / fan_out)``, zero biases (norms keep weight 1, bias 0)."""
        super()._init_module(module)
        if isinstance(module, nn.Conv2d):
            fan_out = (module.kernel_size[0] * module.kernel_size[1] *
                       module.out_channels // module.groups)
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    @classmethod
    def convert_checkpoint(cls, state_dict: Dict[str, torch.Tensor]
                           ) -> Tuple[Dict[str, torch.Tensor], str]:
        """Official keys -> this module's keys.

        Returns the format ``'official'`` (an ImageNet release: no dense
        output norms), ``'official-dense'`` (a detection / segmentation
        backbone with its output norms) or ``'native'``.
        """
        if not any(k.startswith(cls._official_prefixes) for k in state_dict):
            return dict(state_dict), 'native'
        dense = any(re.match(cls._dense_norm_key, k) for k in state_dict)
        return (rename_keys(state_dict, cls._official_rules),
                'official-dense' if dense else 'official')

    def expected_missing_keys(self, key_format: str) -> Tuple[str, ...]:
        """Dense output norms are expected to be missing only from ImageNet
        releases."""
        if key_format == 'official-dense':
            return ()
        return super().expected_missing_keys(key_format)


@MODELS.register_module()
class ResT(_ResTBase):
    """ResT (v1) backbone.

    Block: ``x + EMSA(LN(x))``, ``x + MLP(LN(x))`` (LN eps 1e-5, GELU MLP);
    EMSA with head-interaction conv and InstanceNorm of the attention maps
    (stages with more than one head). Stem: three 3x3 convs (BN + ReLU after
    the first two) and PA; downsamplers: 3x3/2 conv, BN, PA.

    ============  ====================  ============  =========  ============
    arch          embed_dims            depths        num_heads  sr_ratios
    ============  ====================  ============  =========  ============
    lite          64, 128, 256, 512     2, 2, 2, 2    1,2,4,8    8,4,2,1
    small         64, 128, 256, 512     2, 2, 6, 2    1,2,4,8    8,4,2,1
    base          96, 192, 384, 768     2, 2, 6, 2    1,2,4,8    8,4,2,1
    large         96, 192, 384, 768     2, 2, 18, 2   1,2,4,8    8,4,2,1
    ============  ====================  ============  =========  ============

    The official detectron2 builder uses ``drop_path_rate`` 0.1 (lite,
    small) and 0.2 (base, large).

    Args:
        arch (str | dict): A name above, or a dict with ``embed_dims``,
            ``depths`` and optionally ``num_heads``, ``sr_ratios`` (ints,
            scalar or per stage; ``num_heads`` must divide the stage's
            channels) and ``mlp_ratios``. Defaults to ``'small'``.
        **kwargs: The arguments of :class:`MetaFormerBackbone`
            (``in_channels``, ``out_indices``, ``out_norm``, ``frozen_stages``,
            ``norm_eval`` (affects the BatchNorms of the stem and
            downsamplers), ``with_cp``, ``drop_path_rate``, ``init_cfg``).
            The default ``out_norm`` is the official one: LayerNorm, eps
            1e-5, on every map; the stage-4 norm is the ImageNet model's final
            ``norm``, so it is pretrained. As in the official detectron2
            backbone, the output norm of a returned stage is applied **in
            the trunk**: the next stage consumes the normalised tokens, so
            ``out_indices`` (and ``out_norm``) change the network, e.g. the
            official RetinaNet backbone (stages 2-4) has no stage-1 norm.

    Checkpoints: the official ImageNet releases (``{'model': ...}``), the
    detectron2 backbones (``prefix='backbone.bottom_up.'``) and this
    package's mmdet/mmseg checkpoints (``prefix='backbone.'``) load through
    ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)``.
    """
    arch_settings = {
        'lite': dict(embed_dims=[64, 128, 256, 512], depths=[2, 2, 2, 2]),
        'small': dict(embed_dims=[64, 128, 256, 512], depths=[2, 2, 6, 2]),
        'base': dict(embed_dims=[96, 192, 384, 768], depths=[2, 2, 6, 2]),
        'large': dict(embed_dims=[96, 192, 384, 768], depths=[2, 2, 18, 2]),
    }
    default_out_norm = dict(type='LN', eps=1e-5)
    norm_eps = 1e-5
    head_transform = True
    out_norm_in_trunk = True
    _official_rules = _REST_RULES
    _official_prefixes = ('stage1.', 'stage2.', 'stage3.', 'stage4.',
                          'patch_embed_', 'stem.conv1.')
    _dense_norm_key = r'^norm[123]\.'

    def __init__(self, arch: Union[str, dict] = 'small', **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)

    def build_stem(self, in_channels: int, out_channels: int) -> nn.Module:
        mid = out_channels // 2
        proj = conv_stack([in_channels, mid, mid, out_channels],
                          kernels=[3, 3, 3], strides=[2, 1, 2],
                          bias=[False] * 3, batch_norm=[True, True, False],
                          relu=[True, True, False])
        return ResTEmbed(proj, out_channels, nchw_input=True)

    def build_downsample(self, stage: int, in_channels: int,
                         out_channels: int) -> nn.Module:
        proj = conv_stack([in_channels, out_channels], kernels=[3],
                          strides=[2], bias=[True], batch_norm=[True],
                          relu=[False])
        return ResTEmbed(proj, out_channels)


@MODELS.register_module()
class ResTV2(_ResTBase):
    """ResTV2 backbone.

    Block: ``x + EMSA(LN(x))``, ``x + MLP(LN(x))`` (LN eps 1e-6, GELU MLP);
    EMSA with the upsample branch (depthwise conv + PixelShuffle of the
    values, LN) added before the output projection. Stem: 3x3/2, 3x3/2 convs
    with BN + ReLU, a 1x1 conv, PA, LN; downsamplers: 3x3/2 conv, PA, LN.

    ============  ====================  ============  ==========  ===========
    arch          embed_dims            depths        num_heads   sr_ratios
    ============  ====================  ============  ==========  ===========
    tiny          96, 192, 384, 768     1, 2, 6, 2    1,2,4,8     8,4,2,1
    small         96, 192, 384, 768     1, 2, 12, 2   1,2,4,8     8,4,2,1
    base          96, 192, 384, 768     1, 3, 16, 3   1,2,4,8     8,4,2,1
    large         128, 256, 512, 1024   2, 3, 16, 2   2,4,8,16    8,4,2,1
    ============  ====================  ============  ==========  ===========

    ``large`` follows the classification model (``models/rest_v2.py``), i.e.
    the released ImageNet checkpoint (87M parameters); the official
    detectron2 builder uses depths ``2, 3, 16, 3`` instead, which no released
    ImageNet file matches (pass ``arch=dict(...)`` to build that one). The
    official dense drop_path rates are 0.1 (tiny), 0.2 (small), 0.3 (base)
    and 0.5 (large).

    Args:
        arch (str | dict): A name above, or a dict with ``embed_dims``,
            ``depths`` and optionally ``num_heads``, ``sr_ratios`` and
            ``mlp_ratios``. Defaults to ``'tiny'``.
        **kwargs: The arguments of :class:`MetaFormerBackbone`. The default
            ``out_norm`` is the official one: a channel LayerNorm with eps
            1e-6 per map (``norm_k``); ``norm_eval`` affects the stem's
            BatchNorms.

    Checkpoints: ImageNet releases (``{'model': ...}``), detectron2
    backbones (``prefix='backbone.bottom_up.'``, norms ``norm_k.0.*``), the
    official mmseg UperNet checkpoints (``prefix='backbone.'``, norms
    ``norm_k.*``) and this package's checkpoints load through
    ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)``.
    """
    arch_settings = {
        'tiny': dict(embed_dims=[96, 192, 384, 768], depths=[1, 2, 6, 2]),
        'small': dict(embed_dims=[96, 192, 384, 768], depths=[1, 2, 12, 2]),
        'base': dict(embed_dims=[96, 192, 384, 768], depths=[1, 3, 16, 3]),
        'large': dict(embed_dims=[128, 256, 512, 1024], depths=[2, 3, 16, 2],
                      num_heads=[2, 4, 8, 16]),
    }
    default_out_norm = dict(type='LN', eps=1e-6)
    norm_eps = 1e-6
    upsample = True
    unused_keys = (r'head\.', r'norm\.')
    _official_rules = _RESTV2_RULES
    _official_prefixes = ('stage1.', 'stage2.', 'stage3.', 'stage4.',
                          'patch_2.', 'patch_3.', 'patch_4.')
    _dense_norm_key = r'^norm_[1-4]\.'

    def __init__(self, arch: Union[str, dict] = 'tiny', **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)

    def build_stem(self, in_channels: int, out_channels: int) -> nn.Module:
        mid = out_channels // 2
        proj = conv_stack([in_channels, mid, out_channels, out_channels],
                          kernels=[3, 3, 1], strides=[2, 2, 1],
                          bias=[False, False, True],
                          batch_norm=[True, True, False],
                          relu=[True, True, False])
        return ResTEmbed(proj, out_channels,
                         norm=dict(type='LN', eps=self.norm_eps),
                         nchw_input=True)

    def build_downsample(self, stage: int, in_channels: int,
                         out_channels: int) -> nn.Module:
        proj = conv_stack([in_channels, out_channels], kernels=[3],
                          strides=[2], bias=[True], batch_norm=[False],
                          relu=[False])
        return ResTEmbed(proj, out_channels,
                         norm=dict(type='LN', eps=self.norm_eps))
