"""MLP-Mixer (Tolstikhin et al., 2021) as a 4-level dense backbone, and the
base class it shares with ResMLP.

The official token-mixing MLP has a fixed token count (196 at 224 x 224),
which is why neither family had a dense version. Here the token mixing is
applied in non-overlapping windows of the training grid (14 x 14 tokens;
see :class:`~mmmetaformer.models.layers.token_mixing.WindowTokenMixing`),
zero-padded after the norm, so that

* at 224 x 224 the trunk *is* the official network, and
* at multiples of 224 it equals the official network run on each 224 tile
  (checked in the tests against a functional transcription of the official
  model, :mod:`mmmetaformer.testing.mlp_official`);
* any input of at least one patch runs (the image is zero-padded at the
  bottom/right to whole patches; the official Flax stem pads 'SAME', split
  before and after, which differs only off the patch grid).

The four levels come from the stride-16 map (after the official final norm)
by ViTDet's simple feature pyramid (:class:`~mmmetaformer.models.layers.
pyramid.SimpleFeaturePyramid`; ``simple_fpn=True``), so the standard FPN
configs of the other families work unchanged.
"""
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmmetaformer.keymap import rename_keys
from mmmetaformer.registry import MODELS
from ..layers import ConvEmbed, build_norm
from ..layers.pyramid import PYRAMID_STRIDES, SimpleFeaturePyramid
from ..layers.token_mixing import WindowTokenMixing
from .base import ArchKey, MetaFormerBackbone, MetaFormerStage


class TokenMLPBackbone(MetaFormerBackbone):
    """Base of MLP-Mixer and ResMLP: a patch stem, one stage of blocks with
    windowed token mixing (``stages.0``), the official final norm (``norm``)
    and the simple feature pyramid (``pyramid``).

    Subclasses set ``arch_settings`` and ``arch_keys`` (``embed_dims`` and
    ``depths`` are single ints; ``patch_size`` 16 or 8; ``window``; the
    channel MLP's ``mlp_ratios``), the block attributes of
    :class:`MetaFormerBackbone` and implement ``build_token_mixer`` and
    :meth:`build_final_norm`.

    Args:
        arch (str | dict): A key of ``arch_settings`` or a dict.
        simple_fpn (bool): Return the 4-level pyramid (True) or only the
            single map (False; then ``out_indices`` must be the level of the
            patch stride: 2 for patch 16, 1 for patch 8). Defaults to True.
        in_channels (int): Image channels. Defaults to 3.
        out_indices (Sequence[int] | int): Levels (strides 4/8/16/32) to
            return. Defaults to (0, 1, 2, 3).
        out_norm (str | None): ``'default'``: the official final norm (a
            checkpoint's ``norm.*``) on the single map before the pyramid
            (the post-norm tap); None: the last block's raw output (the
            pre-norm tap). Defaults to ``'default'``.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k in
            1..depth the stem and the first k blocks: it counts blocks, as
            mmpretrain's VisionTransformer counts its layers (in stages,
            ``frozen_stages=1`` from a ResNet config would freeze the whole
            trunk). Layer-decay ids: stage-wise 3 (stem 0, the blocks 1, the
            rest 2; use layer-wise decay to decay per block), layer-wise
            ``depth + 2``.
        norm_eval (bool): Keep BatchNorm layers in eval mode (there are
            none; accepted for config compatibility). Defaults to False.
        with_cp (bool): Gradient checkpointing of every block.
        drop_path_rate (float): Stochastic depth of the last block, linear
            from 0 over the blocks.
        init_cfg (dict | list[dict], optional): ``Pretrained`` loads
            official and timm checkpoints with a loading report.
    """
    arch_keys = {
        'embed_dims': ArchKey(per_stage=False),
        'depths': ArchKey(per_stage=False),
        'mlp_ratios': ArchKey(default=4, kind='positive_number',
                              per_stage=False),
        'patch_size': ArchKey(default=16, per_stage=False),
        'window': ArchKey(default=14, per_stage=False),
    }
    default_out_norm = 'default'
    ignored_checkpoint_keys = (r'head\.', r'norm\.')
    # one stage of blocks; frozen_stages counts blocks (see __init__ doc)
    num_stages = 1
    frozen_unit = 'block'
    stage_levels = ()  # the map feeds the pyramid, no per-level norms

    def __init__(self,
                 arch: Union[str, dict, None] = None,
                 simple_fpn: bool = True,
                 out_norm: Optional[str] = 'default',
                 **kwargs) -> None:
        if not isinstance(simple_fpn, bool):
            raise ValueError(
                f'simple_fpn must be True or False, got {simple_fpn!r}.')
        if out_norm not in ('default', None):
            raise ValueError(f"out_norm must be 'default' (the official "
                             f'final norm) or None, got {out_norm!r}.')
        self.simple_fpn = simple_fpn
        super().__init__(arch=arch, out_norm=out_norm, **kwargs)

    @classmethod
    def parse_arch(cls, arch: Union[str, dict, None]) -> dict:
        """As the base class; ``embed_dims`` and ``depths`` (single ints in
        an arch) come out as 1-element lists: one stage."""
        settings = super().parse_arch(arch)
        settings['embed_dims'] = [settings['embed_dims']]
        settings['depths'] = [settings['depths']]
        return settings

    def build_network(self) -> None:
        """Patch stem, one stage of blocks, the final norm (``norm``) and the
        pyramid."""
        dim, patch = self.arch['embed_dims'][0], self.arch['patch_size']
        self.map_level = PYRAMID_STRIDES.index(patch)
        if not self.simple_fpn and self.out_indices != (self.map_level, ):
            raise ValueError(
                f'Without simple_fpn there is one map, of stride {patch}: '
                f'out_indices must be ({self.map_level},), got '
                f'{self.out_indices}.')
        self.patch_size = patch
        self.stem = ConvEmbed(self.in_channels, dim, patch, patch, 0,
                              nchw_input=True)
        self.stages = nn.ModuleList([
            MetaFormerStage(nn.Identity(), [
                self.build_block(0, dim, rate)
                for rate in self.drop_path_rates()
            ], with_cp=self.with_cp)
        ])
        self.norm = (self.build_final_norm(dim)
                     if self.out_norm is not None else nn.Identity())
        if self.simple_fpn:
            self.pyramid = SimpleFeaturePyramid(dim, patch, self.out_indices)
            channels = SimpleFeaturePyramid(dim, patch, range(4)).out_channels
            self.embed_dims = list(channels)
        else:
            self.embed_dims = [dim] * 4

    @classmethod
    def validate_arch(cls, settings: dict) -> None:
        if settings['patch_size'] not in (8, 16):
            raise ValueError(
                f"{cls.__name__}: arch['patch_size'] must be 8 or 16 (a "
                '4-level pyramid from a stride-32 map is not supported), got '
                f"{settings['patch_size']!r}.")

    # --------------------------------------------------------------- hooks
    def build_final_norm(self, dim: int) -> nn.Module:
        """The official final norm (checkpoint key ``norm``)."""
        raise NotImplementedError

    # ------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the levels of ``out_indices`` as NCHW tensors."""
        self.check_input(x)
        p = self.patch_size
        H, W = x.shape[2:]
        x = F.pad(x, (0, -W % p, 0, -H % p))  # no-op on whole patches
        x = self.stages[0](self.stem(x))
        x = self.norm(x).permute(0, 3, 1, 2)
        if self.simple_fpn:
            # The pyramid's up-sampled levels cover the padded image; keep
            # ceil(H / stride) x ceil(W / stride) like every other family
            # (mmseg resizes logits to the input size; a larger map would
            # stretch the prediction).
            return tuple(
                _crop_to(level, H, W, PYRAMID_STRIDES[index])
                for level, index in zip(self.pyramid(x), self.out_indices))
        return (x.contiguous(), )

    def expected_missing_keys(self, key_format: str) -> Tuple[str, ...]:
        """ImageNet files have no pyramid weights."""
        return () if key_format == 'native' else (r'pyramid\.', )


def _crop_to(x: torch.Tensor, height: int, width: int,
             stride: int) -> torch.Tensor:
    """``x`` cropped at the bottom/right to ``ceil(height / stride)`` x
    ``ceil(width / stride)`` (itself when it already has that size)."""
    rows, cols = -(-height // stride), -(-width // stride)
    if x.shape[2:] == (rows, cols):
        return x
    return x[:, :, :rows, :cols].contiguous()


# ------------------------------------------------------------ checkpoints
#: Official ImageNet-1k releases (Flax ``.npz``; the notebook labels the
#: ``imagenet1k`` folder "trained on imagenet2012").
MIXER_URL = 'https://storage.googleapis.com/mixer_models/imagenet1k/{}.npz'
_MIXER_RELEASES = {'b16': 'Mixer-B_16', 'l16': 'Mixer-L_16'}

# Flax parameter paths -> timm names (leaf names converted separately)
_FLAX_RULES = [
    (r'stem/', 'stem.proj/'),
    (r'MixerBlock_(\d+)/LayerNorm_(\d)/', 'blocks.{1}.norm{2+1}/'),
    (r'MixerBlock_(\d+)/token_mixing/Dense_(\d)/',
     'blocks.{1}.mlp_tokens.fc{2+1}/'),
    (r'MixerBlock_(\d+)/channel_mixing/Dense_(\d)/',
     'blocks.{1}.mlp_channels.fc{2+1}/'),
    (r'pre_head_layer_norm/', 'norm/'),
]
# timm names -> this module's names
_MIXER_TIMM_RULES = [
    (r'stem\.proj\.', 'stem.conv.'),
    (r'blocks\.(\d+)\.mlp_tokens\.', 'stages.0.blocks.{1}.token_mixer.mix.'),
    (r'blocks\.(\d+)\.mlp_channels\.', 'stages.0.blocks.{1}.mlp.'),
    (r'blocks\.', 'stages.0.blocks.'),
]


def convert_mixer_flax(params: Dict[str, torch.Tensor]
                       ) -> Dict[str, torch.Tensor]:
    """Official Flax parameters (``'/'``-joined paths, as in the released
    ``.npz``) -> timm names and PyTorch layouts: conv kernel (kh, kw, I, O)
    -> (O, I, kh, kw), Dense kernel (in, out) -> weight (out, in),
    LayerNorm ``scale`` -> ``weight``."""
    result = {}
    for key, value in rename_keys(params, _FLAX_RULES).items():
        module, _, leaf = key.rpartition('/')
        if not module or leaf not in ('kernel', 'scale', 'bias'):
            raise KeyError(f'Unknown Flax parameter {key!r} in an MLP-Mixer '
                           'checkpoint.')
        if leaf == 'kernel':
            value = (value.permute(3, 2, 0, 1)
                     if value.dim() == 4 else value.t())
        result[f'{module}.{"bias" if leaf == "bias" else "weight"}'] = (
            value.contiguous())
    return result


@MODELS.register_module()
class MLPMixer(TokenMLPBackbone):
    """MLP-Mixer backbone (``arch='s16'|'b16'|'l16'``), 4 levels.

    Block (official Flax ``MixerBlock``): ``x + token_mix(LN(x))`` then
    ``x + channel_mlp(LN(x))``, LayerNorm eps 1e-6, MLPs
    ``Dense -> GELU -> Dense`` with biases; the token MLP (hidden
    ``tokens_mlp_dim``) acts in 14 x 14 windows. ``act='GELUTanh'`` (the
    default) is the official JAX GELU (tanh approximation) that the
    released weights were trained with; timm's port uses the exact erf
    GELU, which differs by up to 4.7e-4 per activation -- use ``act='GELU'``
    for weights trained that way (e.g. timm's MIIL re-training).
    Map sizes: ``ceil(H / s)`` x ``ceil(W / s)`` at strides s = 4, 8, 16,
    32, as every other family: 224 -> 56/28/14/7, 225 -> 57/29/15/8,
    97 x 131 -> 25 x 33 ... 4 x 5 (the pyramid's x4 and x2 levels, made
    from the patch grid of the zero-padded image, are cropped at the
    bottom/right).

    Args:
        arch (str | dict): ``'s16'``, ``'b16'``, ``'l16'`` or a dict with
            ``embed_dims`` (int), ``depths`` (int), ``tokens_mlp_dim`` and
            optionally ``patch_size`` (16), ``window`` (14), ``mlp_ratios``
            (channel MLP, 4).
        act (str): ``'GELUTanh'`` (official) or ``'GELU'`` (exact erf).
        **kwargs: The arguments of :class:`TokenMLPBackbone` (``simple_fpn``,
            ``in_channels``, ``out_indices``, ``out_norm``,
            ``frozen_stages``, ``norm_eval``, ``with_cp``,
            ``drop_path_rate``, ``init_cfg``). ``Pretrained`` reads the
            official ``.npz`` (Flax layouts converted on load) and timm's
            ``.pth`` copies.
    """
    arch_settings = {
        's16': dict(embed_dims=512, depths=8, tokens_mlp_dim=256),
        'b16': dict(embed_dims=768, depths=12, tokens_mlp_dim=384),
        'l16': dict(embed_dims=1024, depths=24, tokens_mlp_dim=512),
    }
    default_arch = 'b16'
    arch_keys = dict(TokenMLPBackbone.arch_keys,
                     tokens_mlp_dim=ArchKey(per_stage=False))
    block_norm = dict(type='LN', eps=1e-6)
    activations = ('GELUTanh', 'GELU')
    timm_key_rules = _MIXER_TIMM_RULES
    checkpoint_formats = (('timm', r'stem\.proj\.'), )

    def __init__(self, arch: Union[str, dict, None] = None,
                 act: str = 'GELUTanh', **kwargs) -> None:
        if act not in self.activations:
            raise ValueError(f'act must be one of {self.activations}, got '
                             f'{act!r}.')
        self.mlp_act = act
        super().__init__(arch, **kwargs)

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        return WindowTokenMixing(self.arch['window'],
                                 self.arch['tokens_mlp_dim'], act=self.mlp_act)

    def build_final_norm(self, dim: int) -> nn.Module:
        return build_norm(self.block_norm, dim)

    @classmethod
    def convert_checkpoint(cls, state_dict: Dict[str, torch.Tensor]
                           ) -> Tuple[Dict[str, torch.Tensor], str]:
        """``'official'``: Flax paths (the ``.npz``), laid out for PyTorch
        (:func:`convert_mixer_flax`), then renamed as timm names; else as
        the base class (``'timm'``: ``stem.proj.*``, renamed by
        ``timm_key_rules``; ``'native'``)."""
        if any('/' in k for k in state_dict):
            return rename_keys(convert_mixer_flax(state_dict),
                               cls.timm_key_rules), 'official'
        return super().convert_checkpoint(state_dict)

    @classmethod
    def imagenet_url(cls, arch: str) -> str:
        """URL of the official ImageNet-1k ``.npz`` (B/16, L/16 only)."""
        return MIXER_URL.format(cls._release_name(arch, _MIXER_RELEASES))
