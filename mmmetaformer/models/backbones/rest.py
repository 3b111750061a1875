"""ResT and ResTV2 ("ResT: An Efficient Transformer for Visual Recognition",
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
import torch.nn as nn

from mmmetaformer.registry import MODELS
from ..layers import EMSA
from ..layers.embed import ResTEmbed, conv_stack
from .base import ArchKey, MetaFormerBackbone

__all__ = ['ResT', 'ResTV2', 'REST_KEY_RULES', 'RESTV2_KEY_RULES']


#: Official ResT v1 names -> this package's: BasicStem ``conv1/norm1/conv2/
#: norm2/conv3`` -> ``stem.proj.{0,1,3,4,6}``, ``patch_embed_k`` -> the
#: downsampler of stage k-1, ``stagek.j`` -> ``stages.{k-1}.blocks.j`` (its
#: ``attn`` -> ``token_mixer``), dense ``normk`` -> ``norm{k-1}`` and the final
#: (ImageNet) ``norm`` -> ``norm3``.
REST_KEY_RULES = [
    (r'stem\.conv1\.', 'stem.proj.0.'),
    (r'stem\.norm1\.', 'stem.proj.1.'),
    (r'stem\.conv2\.', 'stem.proj.3.'),
    (r'stem\.norm2\.', 'stem.proj.4.'),
    (r'stem\.conv3\.', 'stem.proj.6.'),
    (r'patch_embed_([234])\.conv\.', 'stages.{1-1}.downsample.proj.0.'),
    (r'patch_embed_([234])\.norm\.', 'stages.{1-1}.downsample.proj.1.'),
    (r'patch_embed_([234])\.pos\.', 'stages.{1-1}.downsample.pos.'),
    (r'stage([1-4])\.(\d+)\.attn\.', 'stages.{1-1}.blocks.{2}.token_mixer.'),
    (r'stage([1-4])\.(\d+)\.', 'stages.{1-1}.blocks.{2}.'),
    (r'norm([123])\.', 'norm{1-1}.'),
    (r'norm\.', 'norm3.'),
]

#: Official ResTV2 names -> this package's: ``stem.*`` keeps its names,
#: ``patch_k.{proj,pos,norm}`` -> ``stages.{k-1}.downsample.{proj.0,pos,
#: norm}``, blocks as in v1, and both dense output norm namings
#: ``norm_k.0.*`` (detectron2) and ``norm_k.*`` (mmseg) -> ``norm{k-1}.*``.
RESTV2_KEY_RULES = [
    (r'patch_([234])\.proj\.', 'stages.{1-1}.downsample.proj.0.'),
    (r'patch_([234])\.(pos|norm)\.', 'stages.{1-1}.downsample.{2}.'),
    (r'stage([1-4])\.(\d+)\.attn\.', 'stages.{1-1}.blocks.{2}.token_mixer.'),
    (r'stage([1-4])\.(\d+)\.', 'stages.{1-1}.blocks.{2}.'),
    (r'norm_([1-4])\.0\.', 'norm{1-1}.'),
    (r'norm_([1-4])\.', 'norm{1-1}.'),
]


class _ResTBase(MetaFormerBackbone):
    """What ResT and ResTV2 share: arch keys, the EMSA mixer, the init.

    Arch keys (besides ``embed_dims``, ``depths`` and ``mlp_ratios``):
    ``num_heads`` (default ``[1, 2, 4, 8]``; must divide the stage's
    channels) and ``sr_ratios`` (default ``[8, 4, 2, 1]``), positive ints,
    a scalar or one per stage.
    """
    arch_keys = dict(
        MetaFormerBackbone.arch_keys,
        num_heads=ArchKey([1, 2, 4, 8]),
        sr_ratios=ArchKey([8, 4, 2, 1]))
    # official init: Linear trunc-normal(0.02), Conv2d normal with std
    # sqrt(2 / fan_out), zero biases (norms keep weight 1, bias 0)
    init_rule = {nn.Linear: 'trunc_normal', nn.Conv2d: 'fan_out_normal'}
    ignore_unused_out_norms = True
    # eps of every LayerNorm: block norms, output norms, stem/downsamplers
    norm_eps = 1e-5
    head_transform = False
    upsample = False
    # where the official ImageNet-1k weights are (no direct URL)
    imagenet_weights = ('on Baidu pan (access code rest), linked from '
                        'https://github.com/wofmanaf/ResT')

    @property
    def block_norm(self) -> dict:
        return dict(type='LN', eps=self.norm_eps)

    @property
    def default_out_norm(self) -> dict:
        """The official dense output norm: LayerNorm(C), ``norm_eps``."""
        return dict(type='LN', eps=self.norm_eps)

    @classmethod
    def validate_arch(cls, settings: dict) -> None:
        dims, heads = settings['embed_dims'], settings['num_heads']
        if any(dim % h for dim, h in zip(dims, heads)):
            raise ValueError(
                f'{cls.__name__}: every arch embed_dims entry must be '
                f'divisible by its num_heads entry, got embed_dims={dims} '
                f'and num_heads={heads}.')

    @classmethod
    def imagenet_url(cls, arch: str) -> str:
        """No direct URL: a ``ValueError`` saying where the official
        ImageNet-1k weights are (download them, then pass the local file as
        ``init_cfg=dict(type='Pretrained', checkpoint=...)``)."""
        cls.arch_dict(arch)  # an unknown arch names the valid choices
        raise ValueError(
            f'{cls.__name__} has no direct-download ImageNet-1k URL: the '
            f'official weights of arch {arch!r} are {cls.imagenet_weights}; '
            'download the file and pass its local path as '
            "init_cfg=dict(type='Pretrained', checkpoint=...).")

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        return EMSA(
            dim,
            num_heads=self.arch['num_heads'][stage],
            sr_ratio=self.arch['sr_ratios'][stage],
            head_transform=self.head_transform,
            upsample=self.upsample,
            norm_eps=self.norm_eps)


@MODELS.register_module()
class ResT(_ResTBase):
    """ResT (v1) backbone.

    Block: ``x + EMSA(LN(x))``, ``x + MLP(LN(x))`` (LN eps 1e-5, GELU MLP);
    EMSA with head-interaction conv and InstanceNorm of the attention maps
    (stages with more than one head). Stem: three 3x3 convs (BN + ReLU after
    the first two) and PA; downsamplers: 3x3/2 conv, BN, PA.

    =====  =================  ===========  ====================
    arch   embed_dims         depths       official drop_path
    =====  =================  ===========  ====================
    lite   64, 128, 256, 512  2, 2, 2, 2   0.1
    small  64, 128, 256, 512  2, 2, 6, 2   0.1
    base   96, 192, 384, 768  2, 2, 6, 2   0.2
    large  96, 192, 384, 768  2, 2, 18, 2  0.2
    =====  =================  ===========  ====================

    Every arch has ``num_heads`` 1, 2, 4, 8 and ``sr_ratios`` 8, 4, 2, 1;
    the drop_path column is the official detectron2 builder's
    ``drop_path_rate``.

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
    default_arch = 'small'
    norm_eps = 1e-5
    head_transform = True
    out_norm_in_trunk = True
    official_key_rules = REST_KEY_RULES
    imagenet_weights = ('on Baidu pan (access code rest) and in the Google '
                        'Drive folder 1H6QUZsKYbU6LECtxzGHKqEeGbx1E8uQ9, '
                        'linked from https://github.com/wofmanaf/ResT')
    checkpoint_formats = (
        ('official', r'stage[1-4]\.|patch_embed_|stem\.conv1\.'), )
    official_dense_key = r'norm[123]\.'
    # the final ImageNet ``norm`` is renamed to norm3
    ignored_checkpoint_keys = (r'head\.', )

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

    =====  ===================  ===========  =========  ==================
    arch   embed_dims           depths       num_heads  official drop_path
    =====  ===================  ===========  =========  ==================
    tiny   96, 192, 384, 768    1, 2, 6, 2   1,2,4,8    0.1
    small  96, 192, 384, 768    1, 2, 12, 2  1,2,4,8    0.2
    base   96, 192, 384, 768    1, 3, 16, 3  1,2,4,8    0.3
    large  128, 256, 512, 1024  2, 3, 16, 2  2,4,8,16   0.5
    =====  ===================  ===========  =========  ==================

    ``sr_ratios`` are 8, 4, 2, 1 for every arch.

    ``large`` follows the classification model (``models/rest_v2.py``), i.e.
    the released ImageNet checkpoint (87M parameters); the official
    detectron2 builder uses depths ``2, 3, 16, 3`` instead, which no released
    ImageNet file matches (pass ``arch=dict(...)`` to build that one).

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
    default_arch = 'tiny'
    norm_eps = 1e-6
    upsample = True
    official_key_rules = RESTV2_KEY_RULES
    checkpoint_formats = (('official', r'stage[1-4]\.|patch_[234]\.'), )
    official_dense_key = r'norm_[1-4]\.'

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
