"""PiT, the pooling-based vision transformer (Heo et al., ICCV 2021), as a
4-level dense backbone.

The trunk is the official ``naver-ai/pit`` network: a patch conv without
padding, an absolute position embedding on the spatial map, class token(s)
prepended to the tokens of every stage (the spatial tokens attend to them),
ViT blocks (LayerNorm eps 1e-6, exact GELU) and, between stages, a depthwise
3x3/2 conv with channel multiplier 2 on the map plus a Linear on the class
tokens. Around it (none of this is official, all of it is off or inert at
224 x 224 with ``out_indices=(1, 2, 3)`` and ``out_norm=None``):

* any input size: the position embedding is resized bicubically
  (``align_corners=False``, no antialiasing, as ViTDet's ``get_abs_pos``)
  to the stem grid when that differs from the stored 27 x 27 (PiT-B 31 x 31);
* a stride-4 level: one learned ``ConvTranspose2d(C0, C0 / 2, 2, 2)`` on the
  stage-0 map (ViTDet's x2 branch, ``upsample``);
* PiT-B: its true strides are 7/14/28, so its maps are resampled bilinearly
  (``align_corners=False``) to ``ceil(H / s) x ceil(W / s)`` for s = 8, 16,
  32 (``resample``; default on for ``'b'``, off for the others);
* optional output norms (default LayerNorm eps 1e-6 per level).
"""
import math
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmmetaformer.registry import MODELS
from ..layers.attention import MultiheadSelfAttention
from .base import ArchKey, MetaFormerBackbone, MetaFormerStage

#: Official releases (re-hosted by timm; the originals are on Google Drive).
_RELEASES = ('https://github.com/rwightman/pytorch-image-models/releases/'
             'download/v0.1-pit-weights/{}.pth')
_RELEASE_NAMES = {
    'ti': 'pit_ti_730', 'xs': 'pit_xs_781', 's': 'pit_s_809',
    'b': 'pit_b_820', 'ti_distilled': 'pit_ti_distill_746',
    'xs_distilled': 'pit_xs_distill_791', 's_distilled': 'pit_s_distill_819',
    'b_distilled': 'pit_b_distill_840'
}

# official (naver-ai/pit) names -> this module's names; first match wins
_OFFICIAL_RULES = [
    (r'patch_embed\.conv\.', 'stem.conv.'),
    (r'pos_embed$', 'stem.pos_embed'),
    (r'cls_token$', 'stem.cls_token'),
    (r'pools\.(\d+)\.', 'stages.{1+1}.downsample.'),
    (r'transformers\.(\d+)\.blocks\.(\d+)\.attn\.',
     'stages.{1}.blocks.{2}.token_mixer.'),
    (r'transformers\.(\d+)\.blocks\.', 'stages.{1}.blocks.'),
]
# timm runs the pooling at the start of the next stage
_TIMM_RULES = [(r'transformers\.(\d+)\.pool\.', 'stages.{1}.downsample.')
               ] + _OFFICIAL_RULES


class PiTEmbed(nn.Module):
    """Stem conv (no padding), position embedding and class token(s).

    Args:
        in_channels (int): Image channels.
        dim (int): Channels C0.
        patch_size (int): Conv kernel.
        stride (int): Conv stride.
        pos_grid (int): Side of the stored position embedding.
        num_tokens (int): Class tokens (2 for distilled models).
    """

    def __init__(self, in_channels: int, dim: int, patch_size: int,
                 stride: int, pos_grid: int, num_tokens: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, dim, patch_size, stride)
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, pos_grid,
                                                  pos_grid))
        self.cls_token = nn.Parameter(torch.zeros(1, num_tokens, dim))

    def forward(self, x: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Image (B, 3, H, W) -> map (B, h, w, C0), class tokens (B, T, C0)."""
        x = self.conv(x)
        # Always resized (no branch on the size, for traced exports): at the
        # stored grid size bicubic interpolation is exactly the identity.
        pos = F.interpolate(
            self.pos_embed.to(x.dtype), size=x.shape[2:], mode='bicubic',
            align_corners=False)
        x = (x + pos).permute(0, 2, 3, 1)
        # in the map's dtype: under autocast the conv output is bf16, and a
        # float32 token would promote the whole token sequence
        return x, self.cls_token.to(x.dtype).expand(x.shape[0], -1, -1)


class PiTPooling(nn.Module):
    """Between stages: depthwise conv 3x3/2 (pad 1, channel multiplier 2,
    output channel o reads input channel o // 2) on the map, Linear on the
    class tokens.

    Args:
        dim (int): Input channels; the output has ``2 * dim``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, 2 * dim, 3, 2, 1, groups=dim)
        self.fc = nn.Linear(dim, 2 * dim)

    def forward(self, x: torch.Tensor, cls: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x, self.fc(cls)


class PiTStage(MetaFormerStage):
    """Pooling (stages 1, 2) then transformer blocks on the class tokens
    followed by the row-major spatial tokens.

    Args:
        downsample (nn.Module | None): :class:`PiTPooling` or None.
        blocks (Sequence[nn.Module]): The blocks, on (B, T + h * w, C).
        with_cp (bool): Gradient checkpointing of every block during
            training. Defaults to False.
    """

    def forward(self, x: torch.Tensor, cls: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.downsample is not None:
            x, cls = self.downsample(x, cls)
        B, H, W, C = x.shape
        num_tokens = cls.shape[1]
        tokens = self.run_blocks(
            torch.cat([cls, x.reshape(B, H * W, C)], dim=1))
        cls, x = tokens[:, :num_tokens], tokens[:, num_tokens:]
        return x.reshape(B, H, W, C), cls


@MODELS.register_module()
class PiT(MetaFormerBackbone):
    """PiT backbone (``arch='ti'|'xs'|'s'|'b'``) with 4 output levels.

    Level 0 (stride 4) is ``upsample(stage-0 map)``, a ConvTranspose2d
    (C0 -> C0 / 2, kernel 2, stride 2) that is not in any checkpoint; levels
    1-3 (strides 8/16/32) are the official stage outputs before pooling
    (the maps timm's ``forward_intermediates`` returns). With
    ``out_indices=(1, 2, 3)`` and ``out_norm=None`` the outputs are exactly
    the official network's at 224 x 224 (PiT-B: also ``resample=False``).
    Map sizes (p16/s8): stem ``floor((H - 16) / 8) + 1``, then
    ``ceil(h / 2)`` per stage: 224 -> 27/14/7 (stride 4: 54); 32 -> 3/2/1.

    Args:
        arch (str | dict): ``'ti'``, ``'xs'``, ``'s'``, ``'b'`` or a dict
            with ``embed_dims`` (3 stage widths), ``depths`` (3),
            ``num_heads`` (3) and optionally ``patch_size`` (16),
            ``stride`` (8), ``pos_grid`` (27), ``mlp_ratios`` (3 values, 4),
            ``resample`` (False).
        distilled (bool): Two class tokens, as the ``*_distilled`` releases
            have (the second token changes the spatial features, so it must
            match the checkpoint; a mismatch is a clear error). Their
            ``head_dist`` is ignored like ``head``. Defaults to False.
        resample (bool, optional): Resample the stage maps to the nominal
            stride-8/16/32 grids. None: the arch's value (True for ``'b'``).
        in_channels (int): Image channels. Defaults to 3.
        out_indices (Sequence[int] | int): Levels to return (0..3, strides
            4/8/16/32). Defaults to (0, 1, 2, 3).
        out_norm (dict | str | None): Norm of each returned level
            (``norm{i}``, channels-last); ``'default'`` is LayerNorm eps
            1e-6 (not official: the official ``norm`` acts on the class
            tokens only); None returns the raw maps.
        frozen_stages (int): -1 freezes nothing, 0 the stem (conv, position
            embedding, class tokens), k in 1..3 also stages 0..k-1 and the
            output norms of their levels 1..k (never ``upsample``, which no
            checkpoint has). Layer-decay ids: stage-wise 5 (stem 0, stages
            1-3, the rest 4), layer-wise ``sum(depths) + 2``.
        norm_eval (bool): Keep BatchNorm layers in eval mode (PiT has none;
            accepted for config compatibility). Defaults to False.
        with_cp (bool): Gradient checkpointing of every block. Defaults to
            False.
        drop_path_rate (float): Stochastic depth of the last block, linear
            from 0 over all blocks (the official rule is ``rate * i / n``).
            Defaults to 0.
        init_cfg (dict | list[dict], optional): ``dict(type='Pretrained',
            checkpoint=...)`` loads official (naver-ai/pit, flat) or timm
            files, distilled ones included, with a loading report.
    """
    arch_settings = {
        'ti': dict(embed_dims=[64, 128, 256], depths=[2, 6, 4],
                   num_heads=[2, 4, 8]),
        'xs': dict(embed_dims=[96, 192, 384], depths=[2, 6, 4],
                   num_heads=[2, 4, 8]),
        's': dict(embed_dims=[144, 288, 576], depths=[2, 6, 4],
                  num_heads=[3, 6, 12]),
        'b': dict(embed_dims=[256, 512, 1024], depths=[3, 6, 4],
                  num_heads=[4, 8, 16], patch_size=14, stride=7,
                  pos_grid=31, resample=True),
    }
    default_arch = 's'
    num_stages = 3
    arch_keys = {
        'embed_dims': ArchKey(broadcast=False),
        'depths': ArchKey(broadcast=False),
        'num_heads': ArchKey(broadcast=False),
        'mlp_ratios': ArchKey(default=4, kind='positive_number'),
        'patch_size': ArchKey(default=16, per_stage=False),
        'stride': ArchKey(default=8, per_stage=False),
        'pos_grid': ArchKey(default=27, per_stage=False),
        'resample': ArchKey(default=False, kind='bool', per_stage=False),
    }
    # stage s gives level s + 1 (level 0 is the upsampled stage-0 map)
    stage_levels = (1, 2, 3)
    block_norm = dict(type='LN', eps=1e-6)
    default_out_norm = dict(type='LN', eps=1e-6)
    ignored_checkpoint_keys = (r'head\.', r'head_dist\.', r'norm\.')
    official_key_rules = _OFFICIAL_RULES
    timm_key_rules = _TIMM_RULES
    # official files have pools.*; timm's runs the pooling in the next stage
    checkpoint_formats = (('official', r'pools\.'),
                          ('timm', r'transformers\.'))

    def __init__(self,
                 arch: Union[str, dict, None] = None,
                 distilled: bool = False,
                 resample: Optional[bool] = None,
                 **kwargs) -> None:
        for name, value in (('distilled', distilled), ('resample', resample)):
            if not isinstance(value, bool) and not (name == 'resample'
                                                    and value is None):
                raise ValueError(f'{name} must be True or False'
                                 f'{" or None" if name == "resample" else ""}'
                                 f', got {value!r}.')
        self.distilled = distilled
        self.resample_arg = resample
        super().__init__(arch=arch, **kwargs)

    def build_network(self) -> None:
        """Stem, the 3 trunk stages, the stride-4 ``upsample`` (if level 0
        is returned) and the output norms of the levels."""
        dims, depths = self.arch['embed_dims'], self.arch['depths']
        self.resample = (self.arch['resample'] if self.resample_arg is None
                         else self.resample_arg)
        self.stem = PiTEmbed(self.in_channels, dims[0],
                             self.arch['patch_size'], self.arch['stride'],
                             self.arch['pos_grid'], 2 if self.distilled else 1)
        rates = iter(self.drop_path_rates())
        self.stages = nn.ModuleList()
        for s, (dim, depth) in enumerate(zip(dims, depths)):
            blocks = [self.build_block(s, dim, next(rates))
                      for _ in range(depth)]
            self.stages.append(
                PiTStage(PiTPooling(dim // 2) if s else None, blocks,
                         with_cp=self.with_cp))
        if 0 in self.out_indices:
            self.upsample = nn.ConvTranspose2d(dims[0], dims[0] // 2, 2, 2)
        self.embed_dims = [dims[0] // 2] + list(dims)  # per level
        for i in self.out_indices:
            self.add_module(f'norm{i}', self.build_out_norm(i))

    @classmethod
    def validate_arch(cls, settings: dict) -> None:
        """``num_heads`` divide ``embed_dims``, which double per stage (PiT
        pooling) from an even C0."""
        dims, heads = settings['embed_dims'], settings['num_heads']
        if any(d % h for d, h in zip(dims, heads)):
            raise ValueError(f"{cls.__name__}: arch['num_heads'] must "
                             f'divide the embed_dims {dims}, got {heads!r}.')
        if any(b != 2 * a for a, b in zip(dims, dims[1:])) or dims[0] % 2:
            raise ValueError(f"{cls.__name__}: arch['embed_dims'] must "
                             f'double per stage (PiT pooling) from an even '
                             f'C0, got {dims!r}.')

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        """Multi-head self-attention over the class and spatial tokens."""
        return MultiheadSelfAttention(
            dim, num_heads=self.arch['num_heads'][stage])

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the levels of ``out_indices`` as NCHW tensors."""
        self.check_input(x)
        size = x.shape[2:]
        x, cls = self.stem(x)
        maps = []
        last_stage = max(self.out_indices[-1] - 1, 0)
        for s in range(last_stage + 1):
            x, cls = self.stages[s](x, cls)
            out = x.permute(0, 3, 1, 2)
            if self.resample:
                stride = 8 * 2**s
                out = F.interpolate(
                    out, size=[math.ceil(n / stride) for n in size],
                    mode='bilinear', align_corners=False)
            maps.append(out)
        outs = []
        for i in self.out_indices:
            out = self.upsample(maps[0]) if i == 0 else maps[i - 1]
            out = getattr(self, f'norm{i}')(out.permute(0, 2, 3, 1))
            outs.append(out.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

    def _init_module(self, module: nn.Module) -> None:
        """Official init: truncated normal (std 0.02) for Linear weights,
        zero biases (convolutions keep PyTorch's default)."""
        super()._init_module(module)
        if isinstance(module, PiTEmbed):
            nn.init.trunc_normal_(module.pos_embed, std=0.02)
            nn.init.trunc_normal_(module.cls_token, std=0.02)

    def expected_missing_keys(self, key_format: str) -> Tuple[str, ...]:
        """ImageNet files have neither output norms nor ``upsample``."""
        if key_format == 'native':
            return ()
        return super().expected_missing_keys(key_format) + (r'upsample\.', )

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """A class-token count that does not match ``distilled`` is a clear
        error (distilled releases have 2 tokens)."""
        tokens = state_dict.get('stem.cls_token')
        expected = self.stem.cls_token.shape[1]
        if tokens is not None and tokens.dim() == 3 and (
                tokens.shape[1] != expected):
            raise ValueError(
                f'The checkpoint has {tokens.shape[1]} class tokens, the '
                f'model {expected}: build PiT with '
                f'distilled={tokens.shape[1] == 2} for this checkpoint.')

    @classmethod
    def imagenet_url(cls, arch: str, distilled: bool = False) -> str:
        """URL of the official ImageNet-1k release (timm's re-host of the
        Google Drive files)."""
        releases = {name: _RELEASE_NAMES[name + ('_distilled' if distilled
                                                 else '')]
                    for name in cls.arch_settings}
        return _RELEASES.format(cls._release_name(arch, releases))

