"""PoolFormer v1 ("MetaFormer is Actually What You Need for Vision").

The MetaFormer with an average-pooling token mixer, ``GroupNorm(1, C)``
block norms, GELU MLPs and layer scale; dense outputs are normalised by a
``GroupNorm(1, C)`` each, as in the official ``poolformer_*_feat`` models.
"""
from typing import Dict, Tuple, Union

import torch
import torch.nn as nn

from mmmetaformer.registry import MODELS
from ..layers import Mlp, Pooling, build_norm
from .base import MetaFormerBackbone, MetaFormerBlock, rename_keys

IMAGENET_URL = ('https://github.com/sail-sg/poolformer/releases/download/'
                'v1.0/poolformer_{}.pth.tar')

# Official names -> this package's names (applied in order).
_OFFICIAL_RULES = [
    (r'^patch_embed\.proj\.', 'stem.conv.'),
    # downsamplers network.1/3/5 -> in front of stages 1/2/3
    (r'^network\.(1|3|5)\.proj\.',
     lambda m: f'stages.{(int(m.group(1)) + 1) // 2}.downsample.conv.'),
    # stages network.0/2/4/6 -> stages.0..3
    (r'^network\.(0|2|4|6)\.(\d+)\.',
     lambda m: f'stages.{int(m.group(1)) // 2}.blocks.{m.group(2)}.'),
    (r'\.layer_scale_(1|2)$', r'.layer_scale\1.scale'),
    # dense output norms norm0/2/4/6 -> norm0..3
    (r'^norm(0|2|4|6)\.', lambda m: f'norm{int(m.group(1)) // 2}.'),
]


def convert_poolformer_official(
        state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename official PoolFormer v1 keys (sail-sg/poolformer, ImageNet and
    ``*_feat`` dense models) to :class:`PoolFormer` keys.

    ``norm.*`` and ``head.*`` (the classifier) keep their names; the 1x1-conv
    MLP weights keep their 4-D shape (the loader reshapes them to Linear).
    """
    return rename_keys(state_dict, _OFFICIAL_RULES)


@MODELS.register_module()
class PoolFormer(MetaFormerBackbone):
    """PoolFormer v1 backbone.

    Block: ``x + ls1 * (avgpool3(GN(x)) - GN(x))``, then
    ``x + ls2 * fc2(GELU(fc1(GN(x))))`` with ``GN = GroupNorm(1, C)`` (eps
    1e-5). Stem: 7x7/4 conv; downsamplers: 3x3/2 convs; no norms in either.

    Args:
        arch (str | dict): ``'s12'``, ``'s24'``, ``'s36'``, ``'m36'``,
            ``'m48'``, or a dict with ``embed_dims``, ``depths`` and optionally
            ``mlp_ratios`` (scalar or per stage), ``layer_scale_init_value``.
        layer_scale_init_value (float, optional): Override the arch's layer
            scale init (1e-5 for s12/s24, 1e-6 for s36/m36/m48).
        **kwargs: The arguments of :class:`MetaFormerBackbone`
            (``in_channels``, ``out_indices``, ``out_norm`` -- default
            ``GroupNorm(1, C)`` eps 1e-5 as in the official dense models --,
            ``frozen_stages``, ``norm_eval``, ``with_cp``, ``drop_path_rate``,
            ``init_cfg``).

    Official checkpoints (flat ImageNet releases, ``poolformer_*_feat``
    detection/segmentation checkpoints with ``prefix='backbone.'``) and timm
    copies load through ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
    RetinaNet checkpoints trained with ``FORK_LAST3=1`` have no ``norm0``:
    use ``out_indices=(1, 2, 3)``.
    """
    arch_settings = {
        's12': dict(embed_dims=[64, 128, 320, 512], depths=[2, 2, 6, 2],
                    layer_scale_init_value=1e-5),
        's24': dict(embed_dims=[64, 128, 320, 512], depths=[4, 4, 12, 4],
                    layer_scale_init_value=1e-5),
        's36': dict(embed_dims=[64, 128, 320, 512], depths=[6, 6, 18, 6],
                    layer_scale_init_value=1e-6),
        'm36': dict(embed_dims=[96, 192, 384, 768], depths=[6, 6, 18, 6],
                    layer_scale_init_value=1e-6),
        'm48': dict(embed_dims=[96, 192, 384, 768], depths=[8, 8, 24, 8],
                    layer_scale_init_value=1e-6),
    }
    arch_defaults = dict(mlp_ratios=4, layer_scale_init_value=1e-5)
    default_out_norm = dict(type='GN1', eps=1e-5)
    block_norm = dict(type='GN1', eps=1e-5)

    def __init__(self,
                 arch: Union[str, dict] = 's12',
                 layer_scale_init_value=None,
                 **kwargs) -> None:
        arch = self.parse_arch(arch)
        if layer_scale_init_value is not None:
            arch['layer_scale_init_value'] = layer_scale_init_value
        super().__init__(arch=arch, **kwargs)

    def build_block(self, stage: int, index: int, dim: int,
                    drop_path: float) -> nn.Module:
        hidden = int(dim * self.per_stage('mlp_ratios')[stage])
        return MetaFormerBlock(
            dim,
            token_mixer=Pooling(3),
            mlp=Mlp(dim, hidden, act='GELU'),
            norm1=build_norm(self.block_norm, dim),
            norm2=build_norm(self.block_norm, dim),
            drop_path=drop_path,
            layer_scale_init_value=self.arch['layer_scale_init_value'])

    @classmethod
    def convert_checkpoint(cls, state_dict: Dict[str, torch.Tensor]
                           ) -> Tuple[Dict[str, torch.Tensor], str]:
        if any(k.startswith(('network.', 'patch_embed.')) for k in state_dict):
            return convert_poolformer_official(state_dict), 'official'
        if any(k.startswith('head.fc.') for k in state_dict):
            return dict(state_dict), 'timm'
        return dict(state_dict), 'native'
