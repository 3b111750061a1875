"""ResMLP (Touvron et al., 2021; facebookresearch/deit ``resmlp_models.py``)
as a 4-level dense backbone: the MLP-Mixer base with ResMLP's block.

The token-mixing Linear(N, N) acts in windows of the training grid (14 x 14;
28 x 28 for B24, patch 8), see :mod:`.mlp_mixer`.
"""
from typing import Dict, Tuple, Union

import torch
import torch.nn as nn

from mmmetaformer.registry import MODELS
from ..layers import Mlp
from ..layers.token_mixing import Affine, WindowTokenMixing
from .base import ArchKey, MetaFormerBlock
from .mlp_mixer import TokenMLPBackbone

RESMLP_URL = 'https://dl.fbaipublicfiles.com/deit/{}_{}.pth'
_RESMLP_NAMES = {'s12': 'resmlp_12', 's24': 'resmlp_24', 's36': 'resmlp_36',
                 'b24': 'resmlpB_24'}

_OFFICIAL_RULES = [
    (r'patch_embed\.proj\.', 'stem.conv.'),
    (r'blocks\.(\d+)\.attn\.', 'stages.0.blocks.{1}.token_mixer.mix.'),
    (r'blocks\.(\d+)\.gamma_(1|2)$',
     'stages.0.blocks.{1}.layer_scale{2}.scale'),
    (r'blocks\.', 'stages.0.blocks.'),
]
_TIMM_RULES = [
    (r'stem\.proj\.', 'stem.conv.'),
    (r'blocks\.(\d+)\.linear_tokens\.',
     'stages.0.blocks.{1}.token_mixer.mix.'),
    (r'blocks\.(\d+)\.mlp_channels\.', 'stages.0.blocks.{1}.mlp.'),
    (r'blocks\.(\d+)\.ls(1|2)$', 'stages.0.blocks.{1}.layer_scale{2}.scale'),
    (r'blocks\.', 'stages.0.blocks.'),
]


@MODELS.register_module()
class ResMLP(TokenMLPBackbone):
    """ResMLP backbone (``arch='s12'|'s24'|'s36'|'b24'``), 4 levels.

    Block: ``x + ls1 * token_linear(Aff1(x))`` then
    ``x + ls2 * fc2(GELU(fc1(Aff2(x))))`` with ``Aff = alpha * x + beta``
    (no statistics), exact GELU, the token Linear(196, 196) (B24: 784) in
    14 x 14 (B24: 28 x 28) windows. The final ``norm`` is an Affine.
    B24 (patch 8, stride 8): the pyramid is x2, x1, max-pool 2, max-pool 4
    with channels (384, 768, 768, 768); the others (patch 16) give
    (96, 192, 384, 384). Stochastic depth is linear over depth here (the
    official rule is constant).

    Args:
        arch (str | dict): ``'s12'``, ``'s24'``, ``'s36'``, ``'b24'`` or a
            dict with ``embed_dims`` (int), ``depths`` (int) and optionally
            ``layer_scale_init_value`` (0.1), ``patch_size`` (16),
            ``window`` (14), ``mlp_ratios`` (4).
        **kwargs: The arguments of :class:`~.mlp_mixer.TokenMLPBackbone`.
            ``Pretrained`` reads the official deit ``.pth`` releases and
            timm copies.
    """
    arch_settings = {
        's12': dict(embed_dims=384, depths=12, layer_scale_init_value=0.1),
        's24': dict(embed_dims=384, depths=24, layer_scale_init_value=1e-5),
        's36': dict(embed_dims=384, depths=36, layer_scale_init_value=1e-6),
        'b24': dict(embed_dims=768, depths=24, layer_scale_init_value=1e-6,
                    patch_size=8, window=28),
    }
    default_arch = 's12'
    official_key_rules = _OFFICIAL_RULES
    timm_key_rules = _TIMM_RULES
    checkpoint_formats = (('official', r'patch_embed\.'),
                          ('timm', r'stem\.proj\.'))
    arch_keys = dict(
        TokenMLPBackbone.arch_keys,
        layer_scale_init_value=ArchKey(
            default=0.1, kind='positive_number', per_stage=False))

    def __init__(self, arch: Union[str, dict, None] = None, **kwargs) -> None:
        super().__init__(arch, **kwargs)

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        return WindowTokenMixing(self.arch['window'])

    def build_block(self, stage: int, dim: int,
                    drop_path: float) -> nn.Module:
        """The base block with ResMLP's Affine norms."""
        return MetaFormerBlock(
            dim,
            token_mixer=self.build_token_mixer(stage, dim),
            mlp=Mlp(dim, int(dim * self.arch['mlp_ratios'])),
            norm1=Affine(dim),
            norm2=Affine(dim),
            drop_path=drop_path,
            layer_scale_init_value=self.arch['layer_scale_init_value'])

    def build_final_norm(self, dim: int) -> nn.Module:
        return Affine(dim)

    @classmethod
    def convert_checkpoint(cls, state_dict: Dict[str, torch.Tensor]
                           ) -> Tuple[Dict[str, torch.Tensor], str]:
        """As the base class (rule tables; ``'official'``: deit names,
        ``'timm'``: ``stem.proj``, ``linear_tokens``, ``ls1``), and timm's
        (1, 1, C) ``alpha``/``beta`` become (C,)."""
        converted, key_format = super().convert_checkpoint(state_dict)
        if key_format == 'timm':
            converted = {
                k: v.reshape(-1) if k.endswith(('.alpha', '.beta')) else v
                for k, v in converted.items()
            }
        return converted, key_format

    @classmethod
    def imagenet_url(cls, arch: str, distilled: bool = True) -> str:
        """URL of the official ImageNet-1k release (``*_dist.pth``, the
        README's models; ``distilled=False``: ``*_no_dist.pth``)."""
        return RESMLP_URL.format(cls._release_name(arch, _RESMLP_NAMES),
                                 'dist' if distilled else 'no_dist')
