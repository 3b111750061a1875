"""CycleMLP ("CycleMLP: A MLP-like Architecture for Dense Prediction").

The MetaFormer with the Cycle MLP token mixer, channel LayerNorm block norms,
GELU MLPs and no layer scale; dense outputs are normalised by a LayerNorm each,
as in the official ``CycleMLP_B*_feat`` models. The mixer (Cycle FC as an
exact shift + projection, without deformable convolution) and the official
``offset`` buffers are described in :mod:`mmmetaformer.models.layers.cycle`.
"""
from typing import Dict

import torch
import torch.nn as nn

from mmmetaformer.registry import MODELS
from ..layers import CycleFC, CycleMixer
from ..layers.cycle import check_cycle_offset
from .base import MetaFormerBackbone
from .poolformer import POOLFORMER_KEY_RULES

IMAGENET_URL = ('https://github.com/ShoufaChen/CycleMLP/releases/download/'
                'v0.1/CycleMLP_{}.pth')

#: Official CycleMLP names -> this package's: PoolFormer v1's layout
#: (``patch_embed``, ``network.{0..6}``, ``norm{0,2,4,6}``), with the token
#: mixer ``attn`` -> ``token_mixer``.
CYCLEMLP_KEY_RULES = [
    (r'network\.([0246])\.(\d+)\.attn\.',
     'stages.{1//2}.blocks.{2}.token_mixer.'),
] + POOLFORMER_KEY_RULES


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
    default_arch = 'b1'
    block_norm = dict(type='LN', eps=1e-5)
    default_out_norm = dict(type='LN', eps=1e-5)
    # official init: truncated normal (std 0.02) for Linear and Cycle FC
    # weights, zero biases; LayerNorm 1/0; convolutions keep PyTorch's
    init_rule = {(nn.Linear, CycleFC): 'trunc_normal'}
    official_key_rules = CYCLEMLP_KEY_RULES
    checkpoint_formats = (('official', r'network\.|patch_embed\.'), )

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        return CycleMixer(dim)

    @classmethod
    def imagenet_url(cls, arch: str) -> str:
        """URL of the official ImageNet-1k release of ``arch`` (every arch
        has one, ``CycleMLP_B1.pth`` ...; ``IMAGENET_URL`` is its
        template)."""
        releases = {name: name.upper() for name in cls.arch_settings}
        return IMAGENET_URL.format(cls._release_name(arch, releases))

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """Check every ``offset`` buffer of ``state_dict`` against the
        official formula for the Cycle FC that would receive it (its channel
        count and kernel from the module), before anything is copied."""
        modules = dict(self.named_modules())
        for key, value in state_dict.items():
            module = modules.get(key.rpartition('.')[0])
            if key.endswith('.offset') and isinstance(module, CycleFC):
                check_cycle_offset(key, value, module.in_channels,
                                   module.kernel_size)
