"""PoolFormer v1 ("MetaFormer is Actually What You Need for Vision").

The MetaFormer with an average-pooling token mixer, ``GroupNorm(1, C)``
block norms, GELU MLPs and layer scale; dense outputs are normalised by a
``GroupNorm(1, C)`` each, as in the official ``poolformer_*_feat`` models.
"""
from typing import Optional, Union

import torch.nn as nn

from mmmetaformer.registry import MODELS
from ..layers import Pooling
from .base import ArchKey, MetaFormerBackbone

IMAGENET_URL = ('https://github.com/sail-sg/poolformer/releases/download/'
                'v1.0/poolformer_{}.pth.tar')

#: Official PoolFormer v1 names -> this package's (also CycleMLP's layout):
#: ``network.{0,2,4,6}`` are the stages, ``network.{1,3,5}`` the
#: downsamplers, ``norm{0,2,4,6}`` the dense output norms.
POOLFORMER_KEY_RULES = [
    (r'patch_embed\.proj\.', 'stem.conv.'),
    (r'network\.1\.proj\.', 'stages.1.downsample.conv.'),
    (r'network\.3\.proj\.', 'stages.2.downsample.conv.'),
    (r'network\.5\.proj\.', 'stages.3.downsample.conv.'),
    (r'network\.([0246])\.(\d+)\.layer_scale_([12])$',
     'stages.{1//2}.blocks.{2}.layer_scale{3}.scale'),
    (r'network\.([0246])\.(\d+)\.', 'stages.{1//2}.blocks.{2}.'),
    (r'norm([0246])\.', 'norm{1//2}.'),
]


@MODELS.register_module()
class PoolFormer(MetaFormerBackbone):
    """PoolFormer v1 backbone.

    Block: ``x + ls1 * (avgpool3(GN(x)) - GN(x))``, then
    ``x + ls2 * fc2(GELU(fc1(GN(x))))`` with ``GN = GroupNorm(1, C)`` (eps
    1e-5). Stem: 7x7/4 conv; downsamplers: 3x3/2 convs; no norms in either.

    Args:
        arch (str | dict): ``'s12'`` (default), ``'s24'``, ``'s36'``,
            ``'m36'``, ``'m48'``, or a dict with ``embed_dims``, ``depths``
            and optionally ``mlp_ratios`` (scalar or per stage, default 4),
            ``layer_scale_init_value`` (positive number, or None for no layer
            scale; default 1e-5).
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
    default_arch = 's12'
    mmpretrain_block_indices = True
    arch_keys = dict(
        MetaFormerBackbone.arch_keys,
        layer_scale_init_value=ArchKey(
            1e-5, kind='positive_number', per_stage=False, optional=True))
    block_norm = dict(type='GN1', eps=1e-5)
    layer_scale_key = 'layer_scale_init_value'
    default_out_norm = dict(type='GN1', eps=1e-5)
    official_key_rules = POOLFORMER_KEY_RULES
    checkpoint_formats = (('official', r'network\.|patch_embed\.'),
                          ('timm', r'head\.fc\.'))

    def __init__(self,
                 arch: Union[str, dict, None] = None,
                 layer_scale_init_value: Optional[float] = None,
                 **kwargs) -> None:
        if layer_scale_init_value is not None:
            arch = dict(self.arch_dict(arch),
                        layer_scale_init_value=layer_scale_init_value)
        super().__init__(arch=arch, **kwargs)

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        return Pooling(3)

    @classmethod
    def imagenet_url(cls, arch: str) -> str:
        """URL of the official ImageNet-1k release of ``arch`` (every arch
        has one; ``IMAGENET_URL`` is its template)."""
        releases = {name: name for name in cls.arch_settings}
        return IMAGENET_URL.format(cls._release_name(arch, releases))
