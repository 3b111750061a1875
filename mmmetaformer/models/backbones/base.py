"""The generic MetaFormer: one block structure, token mixers injected.

Every family in this package (PoolFormer v1/v2, IdentityFormer, RandFormer,
ConvFormer, CAFormer, ResT, ResTV2, CycleMLP) is this network::

    stem -> stage 0 -> stage 1 -> stage 2 -> stage 3      (strides 4/8/16/32)
    stage i = downsample_i (identity for i = 0) -> blocks_i
    block   = x = res_scale1(x) + drop_path(layer_scale1(mixer(norm1(x))))
              x = res_scale2(x) + drop_path(layer_scale2(mlp(norm2(x))))

with tokens kept channels-last (B, H, W, C) between layers.

A family is a subclass of :class:`MetaFormerBackbone` that supplies data and
one hook (see the class docstring for the full list):

* ``arch_settings`` (named archs) and ``arch_keys`` (each arch key with its
  default and validator, an :class:`ArchKey`); ``parse_arch`` validates an
  arch once, naming the key, the stage and the valid values;
* block attributes: ``block_norm``, ``mlp_act``, ``mlp_bias``,
  ``layer_scale_key`` / ``res_scale_key`` (arch keys of the scales),
  ``init_rule`` (which initialiser each layer type gets),
  ``default_out_norm``;
* the hook ``build_token_mixer(stage, dim)``;
* checkpoint data: ``official_key_rules`` (a :mod:`mmmetaformer.keymap`
  table), ``checkpoint_formats`` (how a format is recognised) and
  ``ignored_checkpoint_keys``.

The stem and the downsamplers default to the MetaFormer convolutions
(``build_stem`` / ``build_downsample`` may be overridden).
"""

from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp  # noqa: F401  (tests patch base.cp)
from mmengine.model import BaseModule

from ..layers import ConvEmbed, Mlp, build_norm
# Every name below was defined in this module before it was split by concern;
# they stay importable from here.
from .arch import (ARCH_KINDS, NUM_STAGES, _REQUIRED, ArchKey,  # noqa: F401
                   ArchParsing, _is_int, _is_number)
from .arguments import (_DEFAULT, _FIXED_GEOMETRY,  # noqa: F401
                        FOREIGN_ARGUMENTS, NUM_LEVELS, ArgumentChecks)
from .blocks import MetaFormerBlock, MetaFormerStage  # noqa: F401
from .loading import CheckpointLoading
from .training import TrainingControls
from .weight_init import (INITIALISERS, _fan_out_normal,  # noqa: F401
                          _trunc_normal, WeightInit)

__all__ = [
    'ARCH_KINDS', 'FOREIGN_ARGUMENTS', 'INITIALISERS', 'NUM_LEVELS',
    'NUM_STAGES', 'ArchKey', 'MetaFormerBackbone', 'MetaFormerBlock',
    'MetaFormerStage'
]


class MetaFormerBackbone(ArchParsing, ArgumentChecks, TrainingControls,
                         WeightInit, CheckpointLoading, BaseModule):
    """Base class of all multi-scale MetaFormer backbones in this package.

    A family subclasses it and supplies data and one hook:

    * ``arch_settings``: named archs, ``{name: {arch key: value}}``, and
      ``default_arch``, the name used when ``arch`` is not given;
    * ``arch_keys``: ``{key: ArchKey(...)}``, every key an arch may have with
      its default and validator (extend ``MetaFormerBackbone.arch_keys``:
      ``embed_dims``, ``depths``, ``mlp_ratios``); cross-key checks go in
      :meth:`validate_arch`;
    * block attributes: ``block_norm`` (norm config of both block norms),
      ``mlp_act`` and ``mlp_bias`` (the channel MLP), ``layer_scale_key`` /
      ``res_scale_key`` (names of the arch keys giving each stage's layer /
      residual scale init value, None: no scale);
    * ``build_token_mixer(stage, dim)``: the token mixer of a block (a family
      with another structure overrides :meth:`build_network` and
      :meth:`forward` instead, and keeps the argument checks of
      ``__init__``);
    * ``init_rule``: ``{layer type(s): initialiser name}`` (see
      :data:`INITIALISERS`); other layers keep PyTorch's initialisation;
    * ``default_out_norm`` (norm config of the output norms),
      ``out_norm_in_trunk``, ``embed_norm`` (norm of the default stem and
      downsamplers);
    * checkpoints: ``official_key_rules`` / ``timm_key_rules``
      (:mod:`mmmetaformer.keymap` tables), ``checkpoint_formats`` (how a
      key format is recognised), ``official_dense_key``,
      ``ignored_checkpoint_keys``; optionally the hook
      :meth:`check_checkpoint`; and :meth:`imagenet_url`, the official
      ImageNet-1k release of an arch;
    * a family with another structure also sets ``num_stages`` (the length
      of per-stage arch keys), ``stage_levels`` (the output level of each
      stage) and, for a single-stage trunk, ``frozen_unit='block'``.

    Each concern lives in its own module, a part of this class: the arch
    table (:mod:`.arch`), argument checks (:mod:`.arguments`), freezing and
    layer-decay ids (:mod:`.training`, with every family's values), weight
    init (:mod:`.weight_init`) and checkpoint loading (:mod:`.loading`).

    Args:
        arch (str | dict, optional): A key of ``arch_settings``, or a dict
            with at least ``embed_dims`` and ``depths`` (``num_stages``
            entries each: 4 here) and optionally the family's other arch
            keys (``arch_keys``). Defaults to the family's ``default_arch``.
        in_channels (int): Input image channels. Defaults to 3. Pretrained
            weights with another number of input channels are adapted on
            load (see :meth:`adapt_input_channels`).
        out_indices (Sequence[int] | int): Stages whose outputs are returned;
            output i has stride ``2 ** (i + 2)``. Defaults to (0, 1, 2, 3).
        out_norm (dict | str | None): Norm applied to each returned map
            (modules ``norm{i}``). ``'default'`` is the family's official
            dense output norm; ``None`` returns raw stage outputs.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem,
            stages 0..k-1 and their output norms ``norm0..norm{k-1}`` (no
            gradients, eval mode also under ``.train()``; the single-stage
            MLPMixer / ResMLP count blocks, see :mod:`.training`). Defaults
            to -1.
        norm_eval (bool): Keep BatchNorm layers in eval mode during training
            (only families with BatchNorm are affected). Defaults to False.
        with_cp (bool): Gradient checkpointing of every block during training.
            Saves memory, costs a second forward. Defaults to False.
        drop_path_rate (float): Stochastic depth rate of the last block; it
            increases linearly from 0 over all blocks. Defaults to 0.
        init_cfg (dict | list[dict], optional): Initialisation config;
            ``dict(type='Pretrained', checkpoint=..., prefix=...)`` loads
            official, timm-format or this package's checkpoints with key
            conversion and a loading report.
    """
    # ----- block
    block_norm: Optional[dict] = None
    mlp_act: str = 'GELU'
    mlp_bias: bool = True
    layer_scale_key: Optional[str] = None
    res_scale_key: Optional[str] = None
    # ----- stem, downsamplers, outputs
    # Norm of the default stem (after its conv) and downsamplers (before
    # theirs); None: convolutions only.
    embed_norm: Optional[dict] = None
    default_out_norm: Optional[dict] = None
    # Smallest input height / width (check_input raises below it).
    min_input_size: int = 32
    # True: the output norm of a returned stage is part of the trunk (the
    # next stage consumes the normalised map), as in ResT v1's official
    # dense backbone. False: output norms are side branches.
    out_norm_in_trunk: bool = False

    def __init__(self,
                 arch: Union[str, dict, None] = None,
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 out_norm: Union[str, dict, None] = _DEFAULT,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.0,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 **unknown) -> None:
        if unknown:
            raise TypeError(self._unknown_arguments_message(unknown))
        self._check_init_cfg(init_cfg)
        super().__init__(init_cfg=init_cfg)
        self.arch = self.parse_arch(arch)
        self.embed_dims = list(self.arch['embed_dims'])
        self.depths = list(self.arch['depths'])
        self.out_indices = self._parse_out_indices(out_indices)
        self._check_arguments(in_channels, frozen_stages, norm_eval, with_cp,
                              drop_path_rate)
        self.in_channels = in_channels
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.drop_path_rate = float(drop_path_rate)
        self.out_norm = self._parse_out_norm(out_norm)

        self.build_network()
        self._freeze_stages()

    def build_network(self) -> None:
        """Build the modules (called by ``__init__`` once every argument is
        checked and stored): ``stem``, ``stages`` (a ``MetaFormerStage`` of
        blocks each) and the output norms ``norm{i}`` of ``out_indices``.

        A family with another structure (e.g. a single-scale trunk with a
        feature pyramid) overrides this and :meth:`forward`, keeping the
        names ``stem``, ``stages.{i}`` and ``norm{i}`` that freezing and
        layer-wise decay use.
        """
        self.stem = self.build_stem(self.in_channels, self.embed_dims[0])
        rates = iter(self.drop_path_rates())
        self.stages = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(self.embed_dims, self.depths)):
            downsample = nn.Identity() if i == 0 else self.build_downsample(
                i, self.embed_dims[i - 1], dim)
            blocks = [self.build_block(i, dim, next(rates))
                      for _ in range(depth)]
            self.stages.append(
                MetaFormerStage(downsample, blocks, with_cp=self.with_cp))
        for i in self.out_indices:
            self.add_module(f'norm{i}', self.build_out_norm(i))

    def drop_path_rates(self) -> List[float]:
        """Stochastic depth rate of every block (over all stages): linear
        from 0 to ``drop_path_rate``."""
        total = sum(self.depths)
        return [self.drop_path_rate * k / max(total - 1, 1)
                for k in range(total)]

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each returned map, in order."""
        return tuple(self.embed_dims[i] for i in self.out_indices)

    @property
    def out_strides(self) -> Tuple[int, ...]:
        """Stride of each returned map, in order."""
        return tuple(2**(i + 2) for i in self.out_indices)

    # --------------------------------------------------------------- builders
    def build_stem(self, in_channels: int, out_channels: int) -> nn.Module:
        """Stride-4 stem: NCHW image -> channels-last tokens.

        Default: the MetaFormer stem, conv 7x7 / stride 4 / padding 2, then
        ``embed_norm`` if set (PoolFormer v1/v2, the MetaFormer baselines,
        CycleMLP).
        """
        return ConvEmbed(in_channels, out_channels, kernel_size=7, stride=4,
                         padding=2, norm=self.embed_norm, nchw_input=True)

    def build_downsample(self, stage: int, in_channels: int,
                         out_channels: int) -> nn.Module:
        """Stride-2 downsampler in front of ``stage`` (1..3), channels-last.

        Default: ``embed_norm`` if set, then conv 3x3 / stride 2 / padding 1.
        """
        return ConvEmbed(in_channels, out_channels, kernel_size=3, stride=2,
                         padding=1, norm=self.embed_norm, norm_first=True)

    def build_token_mixer(self, stage: int, dim: int) -> nn.Module:
        """The token mixer of a block of ``stage`` with ``dim`` channels
        (channels-last in and out). Every family implements it."""
        raise NotImplementedError(
            f'{type(self).__name__} must implement build_token_mixer.')

    def build_block(self, stage: int, dim: int,
                    drop_path: float) -> nn.Module:
        """One block of ``stage``, from the class attributes and the arch:
        ``block_norm``, the token mixer, an MLP (``mlp_ratios``, ``mlp_act``,
        ``mlp_bias``) and the scales (``layer_scale_key``,
        ``res_scale_key``)."""
        hidden = int(dim * self.arch_value('mlp_ratios', stage))
        return MetaFormerBlock(
            dim,
            token_mixer=self.build_token_mixer(stage, dim),
            mlp=Mlp(dim, hidden, act=self.mlp_act, bias=self.mlp_bias),
            norm1=build_norm(self.block_norm, dim),
            norm2=build_norm(self.block_norm, dim),
            drop_path=drop_path,
            layer_scale_init_value=self.arch_value(self.layer_scale_key,
                                                   stage),
            res_scale_init_value=self.arch_value(self.res_scale_key, stage))

    def build_out_norm(self, stage: int) -> nn.Module:
        """Output norm of ``stage`` (channels-last), from ``out_norm``."""
        return build_norm(self.out_norm, self.embed_dims[stage])

    # ---------------------------------------------------------------- forward
    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ``ValueError`` for an input that is not (N, in_channels,
        H, W) with H, W >= ``min_input_size``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects an (N, {self.in_channels}, '
                f'H, W) input (in_channels={self.in_channels}), got shape '
                f'{tuple(x.shape)}.')
        if min(x.shape[2:]) < self.min_input_size:
            raise ValueError(
                f'{type(self).__name__} needs inputs of at least '
                f'{self.min_input_size} x {self.min_input_size} pixels '
                f'(min_input_size), got {tuple(x.shape[2:])}.')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the maps of ``out_indices`` as NCHW tensors."""
        self.check_input(x)
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
                if self.out_norm_in_trunk:
                    x = out
            if i == self.out_indices[-1]:
                break
        return tuple(outs)
