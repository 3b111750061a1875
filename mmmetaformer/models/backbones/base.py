"""The generic MetaFormer: one block structure, token mixers injected.

Every family in this package (PoolFormer v1/v2, IdentityFormer, RandFormer,
ConvFormer, CAFormer, ResT, ResTv2, CycleMLP) is this network::

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
import copy
import difflib
import inspect
import logging
import math
import re
from typing import (Any, Callable, Dict, List, NamedTuple, Optional, Sequence,
                    Tuple, Union)

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.logging import print_log
from mmengine.model import BaseModule, initialize
from mmengine.model.weight_init import trunc_normal_
from torch.nn.modules.batchnorm import _BatchNorm

from mmmetaformer.checkpoint import (LoadReport, extract_state_dict,
                                     load_checkpoint_file,
                                     load_state_dict_with_report)
from mmmetaformer.keymap import Rule, rename_keys
from ..layers import ConvEmbed, DropPath, Mlp, Scale, build_norm

NUM_STAGES = 4
_DEFAULT = 'default'
_REQUIRED = object()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


#: Validators of arch values: kind -> (check, description of valid values).
ARCH_KINDS: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    'positive_int': (lambda v: _is_int(v) and v > 0, 'a positive int'),
    'positive_number': (lambda v: _is_number(v) and v > 0,
                        'a positive number'),
}


#: Constructor arguments of other libraries' backbones (mmpretrain/mmseg
#: PoolFormer, timm, the official repositories) -> what to do here.
_FIXED_GEOMETRY = ('the stem and downsamplers are the family\'s official '
                   'convolutions here (not configurable); remove it.')
FOREIGN_ARGUMENTS: Dict[str, str] = {
    **{name: f'mmpretrain/mmseg PoolFormer argument; {_FIXED_GEOMETRY}'
       for name in ('in_patch_size', 'in_stride', 'in_pad',
                    'down_patch_size', 'down_stride', 'down_pad')},
    'pool_size': 'the pooling window is the official 3 (not configurable).',
    'norm_cfg': 'block norms are the family\'s official ones; the output '
    'norms are set by out_norm (a norm dict, None or \'default\').',
    'norm_layer': 'block norms are the family\'s official ones; the output '
    'norms are set by out_norm.',
    'act_cfg': 'the MLP activation is the family\'s official one (not '
    'configurable).',
    'act_layer': 'the MLP activation is the family\'s official one.',
    'drop_rate': 'these backbones have no dropout; use drop_path_rate.',
    'pretrained': "use init_cfg=dict(type='Pretrained', checkpoint=...).",
    'num_classes': 'a backbone has no classifier (use a head in the model).',
    'out_features': 'use out_indices (stages 0-3, strides 4/8/16/32).',
    'frozen_at': 'use frozen_stages (-1 nothing, 0 the stem, k the stem '
    'and stages 0..k-1).',
    'gap_before_final_norm': 'these are dense backbones: no pooling.',
}


class ArchKey(NamedTuple):
    """How one arch key is given and validated.

    Args:
        default: Value when an arch dict leaves the key out; leave unset for
            a required key.
        kind (str): Validator of each value, a key of :data:`ARCH_KINDS`
            (``'positive_int'`` or ``'positive_number'``).
        per_stage (bool): The key has one value per stage; it may be given
            as a list of ``NUM_STAGES`` values or (with ``broadcast``) as one
            value for every stage. Parsed, it is always a list.
        broadcast (bool): A single value is allowed for a per-stage key.
        optional (bool): ``None`` is allowed (per entry for per-stage keys),
            meaning "none" (e.g. no layer scale in that stage).
    """
    default: Any = _REQUIRED
    kind: str = 'positive_int'
    per_stage: bool = True
    broadcast: bool = True
    optional: bool = False

    @property
    def required(self) -> bool:
        """An arch dict must give the key (it has no default)."""
        return self.default is _REQUIRED

    def parse(self, owner: str, key: str, value) -> Any:
        """Return ``value`` validated (per-stage keys as a list).

        Raises:
            ValueError: Naming ``owner``, the key, the stage and the valid
                values.
        """
        check, valid = ARCH_KINDS[self.kind]
        if self.optional:
            valid += ' or None'
        if self.per_stage:
            shape = (f'{NUM_STAGES} values (one per stage)' +
                     (', or one value for all stages'
                      if self.broadcast else ''))
            if isinstance(value, (list, tuple)):
                if len(value) != NUM_STAGES:
                    raise ValueError(
                        f'{owner}: arch[{key!r}] must be {shape}, got '
                        f'{len(value)} values: {value!r}.')
                values = list(value)
            elif self.broadcast:
                values = [value] * NUM_STAGES
            else:
                raise ValueError(f'{owner}: arch[{key!r}] must be a list of '
                                 f'{shape}, got {value!r}.')
            for stage, item in enumerate(values):
                if not (check(item) or (self.optional and item is None)):
                    raise ValueError(
                        f'{owner}: arch[{key!r}] of stage {stage} is '
                        f'{item!r}; each entry must be {valid} ({key} is '
                        f'{shape}).')
            return values
        if not (check(value) or (self.optional and value is None)):
            raise ValueError(f'{owner}: arch[{key!r}] is {value!r}; it must '
                             f'be {valid}.')
        return value


class MetaFormerBlock(nn.Module):
    """One MetaFormer block on channels-last tokens.

    Args:
        dim (int): Channels.
        token_mixer (nn.Module): Maps (B, H, W, C) to the same shape.
        mlp (nn.Module): Channel MLP on (B, H, W, C).
        norm1 (nn.Module): Norm before the token mixer.
        norm2 (nn.Module): Norm before the MLP.
        drop_path (float): Stochastic depth rate of both branches.
        layer_scale_init_value (float, optional): If set, each branch is
            multiplied by a learnable per-channel scale (``layer_scale1/2``).
        res_scale_init_value (float, optional): If set, each shortcut is
            multiplied by a learnable per-channel scale (``res_scale1/2``).
    """

    def __init__(self,
                 dim: int,
                 token_mixer: nn.Module,
                 mlp: nn.Module,
                 norm1: nn.Module,
                 norm2: nn.Module,
                 drop_path: float = 0.0,
                 layer_scale_init_value: Optional[float] = None,
                 res_scale_init_value: Optional[float] = None) -> None:
        super().__init__()

        def scale(value):
            return nn.Identity() if value is None else Scale(dim, value)

        self.norm1 = norm1
        self.token_mixer = token_mixer
        self.layer_scale1 = scale(layer_scale_init_value)
        self.res_scale1 = scale(res_scale_init_value)
        self.norm2 = norm2
        self.mlp = mlp
        self.layer_scale2 = scale(layer_scale_init_value)
        self.res_scale2 = scale(res_scale_init_value)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res_scale1(x) + self.drop_path(
            self.layer_scale1(self.token_mixer(self.norm1(x))))
        x = self.res_scale2(x) + self.drop_path(
            self.layer_scale2(self.mlp(self.norm2(x))))
        return x


class MetaFormerStage(nn.Module):
    """A downsampler followed by a sequence of blocks.

    Args:
        downsample (nn.Module): ``nn.Identity`` for the first stage.
        blocks (Sequence[nn.Module]): The blocks.
        with_cp (bool): Gradient checkpointing of every block during
            training (with gradients enabled). Defaults to False.
    """

    def __init__(self,
                 downsample: nn.Module,
                 blocks: Sequence[nn.Module],
                 with_cp: bool = False) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        use_cp = self.with_cp and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            if use_cp:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


class MetaFormerBackbone(BaseModule):
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
      (:mod:`mmmetaformer.keymap` tables), ``checkpoint_formats`` (how a key format is recognised),
      ``official_dense_key``, ``ignored_checkpoint_keys``; optionally the
      hook :meth:`check_checkpoint`.

    Args:
        arch (str | dict, optional): A key of ``arch_settings``, or a dict
            with at least ``embed_dims`` and ``depths`` (4 entries each) and
            optionally the family's other arch keys (``arch_keys``). Defaults
            to the family's ``default_arch``.
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
            gradients, eval mode also under ``.train()``). Defaults to -1.
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
    arch_settings: Dict[str, dict] = {}
    default_arch: Optional[str] = None
    arch_keys: Dict[str, ArchKey] = {
        'embed_dims': ArchKey(broadcast=False),
        'depths': ArchKey(broadcast=False),
        'mlp_ratios': ArchKey(default=4, kind='positive_number'),
    }
    # ----- block
    block_norm: Optional[dict] = None
    mlp_act: str = 'GELU'
    mlp_bias: bool = True
    layer_scale_key: Optional[str] = None
    res_scale_key: Optional[str] = None
    init_rule: Dict[Union[type, Tuple[type, ...]], str] = {
        nn.Linear: 'trunc_normal'}
    # ----- stem, downsamplers, outputs
    # Norm of the default stem (after its conv) and downsamplers (before
    # theirs); None: convolutions only.
    embed_norm: Optional[dict] = None
    default_out_norm: Optional[dict] = None
    # mmpretrain has this family with out_indices counting its network's
    # blocks (stages at 0, 2, 4, 6): an out_indices error says so.
    mmpretrain_block_indices: bool = False
    # Smallest input height / width (check_input raises below it).
    min_input_size: int = 32
    # True: the output norm of a returned stage is part of the trunk (the
    # next stage consumes the normalised map), as in ResT v1's official
    # dense backbone. False: output norms are side branches.
    out_norm_in_trunk: bool = False
    # ----- checkpoints
    # Official key names -> this package's (rules of mmmetaformer.keymap).
    official_key_rules: Sequence[Rule] = ()
    # timm's names -> this package's (empty: timm's names are ours).
    timm_key_rules: Sequence[Rule] = ()
    # (format, key regex[, tensor ndim]) entries, checked in order: the
    # first format one of whose regexes matches a key (re.match; and whose
    # tensor has ``ndim`` dimensions, if given) is the checkpoint's format;
    # none: 'native'. 'official*' formats are renamed by official_key_rules.
    checkpoint_formats: Sequence[tuple] = ()
    # An 'official' checkpoint with a key matching this regex holds the
    # dense output norms: its format is 'official-dense'.
    official_dense_key: Optional[str] = None
    # Checkpoint keys (after conversion) that are deliberately not used,
    # e.g. the ImageNet classifier.
    ignored_checkpoint_keys: Tuple[str, ...] = (r'head\.', r'norm\.')
    # Also ignore the output norms of stages that are not returned (ResT).
    ignore_unused_out_norms: bool = False

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
        if init_cfg is not None and not (
                isinstance(init_cfg, dict) or
            (isinstance(init_cfg, (list, tuple))
             and all(isinstance(c, dict) for c in init_cfg))):
            raise ValueError('init_cfg must be None, a dict or a list of '
                             f'dicts, got {init_cfg!r}.')
        super().__init__(init_cfg=init_cfg)
        self.arch = self.parse_arch(arch)
        self.embed_dims = list(self.arch['embed_dims'])
        self.depths = list(self.arch['depths'])
        self.out_indices = self._parse_out_indices(out_indices)
        bound = self.max_frozen_stages()
        if not _is_int(frozen_stages) or not -1 <= frozen_stages <= bound:
            raise ValueError(
                f'frozen_stages must be an int in [-1, {bound}] '
                f'({self.frozen_stages_help()}), got {frozen_stages!r}.')
        if not _is_number(drop_path_rate) or not 0 <= drop_path_rate < 1:
            raise ValueError('drop_path_rate must be a number in [0, 1), got '
                             f'{drop_path_rate!r}.')
        if not _is_int(in_channels) or in_channels < 1:
            raise ValueError('in_channels must be a positive int, got '
                             f'{in_channels!r}.')
        for name, value in (('norm_eval', norm_eval), ('with_cp', with_cp)):
            if not isinstance(value, bool):
                raise ValueError(
                    f'{name} must be True or False, got {value!r}.')
        self.in_channels = in_channels
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.drop_path_rate = float(drop_path_rate)
        if isinstance(out_norm, str) and out_norm == _DEFAULT:
            out_norm = copy.deepcopy(self.default_out_norm)
        elif out_norm is not None and not isinstance(out_norm, dict):
            raise ValueError(f"out_norm must be 'default', None or a norm "
                             f'config dict, got {out_norm!r}.')
        elif out_norm is not None:
            try:
                build_norm(out_norm, 1)
            except ValueError as error:
                raise ValueError(f'out_norm: {error}') from None
        self.out_norm = out_norm

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

    def max_frozen_stages(self) -> int:
        """The largest valid ``frozen_stages`` (the number of stages; a
        family whose freezing counts other units overrides it). Called by
        ``__init__`` after the arch is parsed."""
        return NUM_STAGES

    def frozen_stages_help(self) -> str:
        """What each ``frozen_stages`` value freezes, for messages (a
        family whose freezing counts other units overrides it)."""
        return '-1: nothing, 0: the stem, k: the stem and stages 0..k-1'

    def drop_path_rates(self) -> List[float]:
        """Stochastic depth rate of every block (over all stages): linear
        from 0 to ``drop_path_rate``."""
        total = sum(self.depths)
        return [self.drop_path_rate * k / max(total - 1, 1)
                for k in range(total)]

    # ------------------------------------------------------------------ arch
    @classmethod
    def parse_arch(cls, arch: Union[str, dict, None]) -> dict:
        """Resolve ``arch`` to a complete, validated settings dict.

        Every key of ``arch_keys`` is present; per-stage keys are lists of
        ``NUM_STAGES`` values. This is the only place arch values are
        validated (each key by its :class:`ArchKey`, then
        :meth:`validate_arch` for relations between keys).

        Raises:
            ValueError: For an unknown arch name, missing or unknown keys, or
                an invalid value (naming the key, the stage and the valid
                values).
        """
        arch = cls.check_arch_keys(cls.arch_dict(arch))
        settings = {}
        for key, spec in cls.arch_keys.items():
            value = copy.deepcopy(arch.get(key, spec.default))
            settings[key] = spec.parse(cls.__name__, key, value)
        cls.validate_arch(settings)
        return settings

    @classmethod
    def check_arch_keys(cls, arch: dict) -> dict:
        """Raise a ``ValueError`` listing the missing and unknown keys of an
        arch dict, the valid keys and the required ones (``arch_keys``);
        return ``arch``."""
        required = {k for k, spec in cls.arch_keys.items() if spec.required}
        missing = required - set(arch)
        unknown = set(arch) - set(cls.arch_keys)
        if missing or unknown:
            raise ValueError(
                f'Invalid arch dict for {cls.__name__}: missing keys '
                f'{sorted(missing)}, unknown keys {sorted(unknown)}; the '
                f'valid keys are {sorted(cls.arch_keys)} (required: '
                f'{sorted(required)}).')
        return arch

    @classmethod
    def arch_dict(cls, arch: Union[str, dict, None]) -> dict:
        """The (unvalidated) arch dict of a name, a dict or None (the
        family's ``default_arch``)."""
        if arch is None:
            if cls.default_arch is None:
                raise ValueError(f'{cls.__name__} needs an arch: one of '
                                 f'{sorted(cls.arch_settings)} or a dict.')
            arch = cls.default_arch
        if isinstance(arch, str):
            if arch not in cls.arch_settings:
                raise ValueError(
                    f'Unknown arch {arch!r} for {cls.__name__}; valid choices '
                    f'are {sorted(cls.arch_settings)} or a dict with keys '
                    f'{sorted(cls.arch_keys)}.')
            return dict(cls.arch_settings[arch])
        if not isinstance(arch, dict):
            raise ValueError(f'arch must be a str or a dict, got '
                             f'{type(arch).__name__}.')
        return dict(arch)

    @classmethod
    def validate_arch(cls, settings: dict) -> None:
        """Checks across arch keys (e.g. heads dividing channels); raise a
        ``ValueError`` naming the keys. ``settings`` has every key, each
        valid on its own. Default: nothing."""

    def arch_value(self, key: Optional[str], stage: int):
        """The value of arch ``key`` for ``stage`` (None for ``key=None``)."""
        if key is None:
            return None
        value = self.arch[key]
        return value[stage] if self.arch_keys[key].per_stage else value

    @classmethod
    def _parse_out_indices(cls, out_indices) -> Tuple[int, ...]:
        if _is_int(out_indices):
            out_indices = (out_indices, )
        if not isinstance(out_indices, (list, tuple)) or not out_indices:
            raise ValueError('out_indices must be an int or a non-empty '
                             f'sequence of ints, got {out_indices!r}.')
        result = []
        for index in out_indices:
            if not _is_int(index) or not -NUM_STAGES <= index < NUM_STAGES:
                hint = ''
                if cls.mmpretrain_block_indices and _is_int(index) and all(
                        _is_int(i) and 0 <= i <= 2 * (NUM_STAGES - 1)
                        and i % 2 == 0 for i in out_indices):
                    hint = (
                        ' (mmpretrain\'s PoolFormer numbers its network '
                        'blocks, stages at 0, 2, 4, 6; here the stages are '
                        f'0-{NUM_STAGES - 1}: out_indices='
                        f'{tuple(i // 2 for i in out_indices)})')
                raise ValueError(
                    f'out_indices entries must be stage indices in '
                    f'[0, {NUM_STAGES - 1}] (or negative from the end), got '
                    f'{index!r} in {out_indices!r}{hint}.')
            result.append(index % NUM_STAGES)
        if len(set(result)) != len(result):
            raise ValueError(f'out_indices has duplicates: {out_indices!r}.')
        return tuple(sorted(result))

    @classmethod
    def _unknown_arguments_message(cls, unknown: dict) -> str:
        """A TypeError message for unknown keyword arguments: the valid ones,
        a "did you mean" for close names and hints for names from other
        libraries' configs (:data:`FOREIGN_ARGUMENTS`)."""
        valid = set()
        for klass in cls.__mro__:
            init = klass.__dict__.get('__init__')
            if init is not None and klass is not BaseModule and issubclass(
                    klass, MetaFormerBackbone):
                params = inspect.signature(init).parameters.values()
                valid |= {p.name for p in params if p.name != 'self' and
                          p.kind is p.POSITIONAL_OR_KEYWORD}
        lines = [f'{cls.__name__} got unknown keyword argument(s) '
                 f'{sorted(unknown)}; the valid ones are {sorted(valid)} '
                 f'(arch keys go inside arch=dict(...): '
                 f'{sorted(cls.arch_keys)}).']
        for name in sorted(unknown):
            close = difflib.get_close_matches(name, sorted(valid), n=1)
            if name in cls.arch_keys:
                lines.append(f'{name!r} is an arch key: pass it inside arch='
                             f'dict(...) (keys {sorted(cls.arch_keys)}).')
            elif name in FOREIGN_ARGUMENTS:
                lines.append(f'{name!r}: {FOREIGN_ARGUMENTS[name]}')
            elif close:
                lines.append(f'{name!r}: did you mean {close[0]!r}?')
        return '\n'.join(lines)

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

    # --------------------------------------------------------------- training
    def _frozen_modules(self) -> List[nn.Module]:
        """The stem, stages ``0..frozen_stages-1`` and their output norms."""
        if self.frozen_stages < 0:
            return []
        return [self.stem] + [
            module for i in range(self.frozen_stages)
            for module in (self.stages[i], getattr(self, f'norm{i}', None))
            if module is not None
        ]

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        """Set train mode, keeping frozen stages (and, with ``norm_eval``,
        BatchNorm layers) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def _depth_id(self, param_name: str, prefix: str,
                  block_wise: bool) -> Tuple[int, int]:
        """Shared by :meth:`get_layer_depth` and :meth:`get_stage_depth`."""
        num_ids = sum(self.depths) + 2 if block_wise else NUM_STAGES + 2
        if not param_name.startswith(prefix):
            return num_ids - 1, num_ids
        name = param_name[len(prefix):]
        if name.startswith('stem.'):
            return 0, num_ids
        match = re.match(r'stages\.(\d+)\.(?:blocks\.(\d+)\.)?', name)
        if match is None:
            return num_ids - 1, num_ids
        stage = int(match.group(1))
        if not block_wise:
            return stage + 1, num_ids
        block = int(match.group(2) or 0)  # a downsampler: the first block
        return sum(self.depths[:stage]) + block + 1, num_ids

    def get_layer_depth(self, param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Layer id of a parameter, for layer-wise learning-rate decay.

        The stem is layer 0, block k (counted over all stages) is layer k + 1
        (a downsampler belongs to the first block of its stage), and anything
        after the blocks (the output norms; with ``prefix``, every parameter
        outside the backbone) is the last layer.

        Args:
            param_name (str): Parameter name.
            prefix (str): Prefix of the backbone's parameters in the model,
                e.g. ``'backbone.'``.

        Returns:
            tuple[int, int]: The layer id and the number of layers
            (``sum(depths) + 2``).
        """
        return self._depth_id(param_name, prefix, block_wise=True)

    def get_stage_depth(self, param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Stage id of a parameter, for stage-wise learning-rate decay.

        The stem is 0, stage i (its downsampler and blocks) is i + 1, and
        anything else (the output norms; with ``prefix``, every parameter
        outside the backbone) is the last id, 5.

        Args:
            param_name (str): Parameter name.
            prefix (str): Prefix of the backbone's parameters in the model.

        Returns:
            tuple[int, int]: The stage id and the number of ids (6).
        """
        return self._depth_id(param_name, prefix, block_wise=False)

    # ---------------------------------------------------------- weight init
    def _init_module(self, module: nn.Module) -> None:
        """Initialise ``module`` by the first ``init_rule`` entry whose layer
        type(s) it is an instance of."""
        for types, initialiser in self.init_rule.items():
            if isinstance(module, types):
                INITIALISERS[initialiser](module)
                return

    def init_weights(self) -> None:
        """Default init, then ``init_cfg`` (``Pretrained`` with conversion)."""
        cfgs = self.init_cfg or []
        if isinstance(cfgs, dict):
            cfgs = [cfgs]
        pretrained = [c for c in cfgs if c.get('type') == 'Pretrained']
        others = [c for c in cfgs if c.get('type') != 'Pretrained']
        if len(pretrained) > 1:
            raise ValueError('init_cfg has more than one Pretrained entry.')
        self.apply(self._init_module)
        if others:
            initialize(self, others)
        if pretrained:
            args = dict(pretrained[0])
            args.pop('type')
            unknown = set(args) - {'checkpoint', 'prefix', 'map_location',
                                   'allow_partial'}
            if unknown or 'checkpoint' not in args:
                raise ValueError(
                    "init_cfg type='Pretrained' takes 'checkpoint' (required),"
                    " 'prefix', 'map_location' and 'allow_partial'; got "
                    f'{sorted(args)}.')
            self.load_pretrained(**args)
        self._is_init = True

    # ------------------------------------------------------------ checkpoints
    @classmethod
    def detect_key_format(cls, state_dict: Dict[str, torch.Tensor]) -> str:
        """The key format of ``state_dict`` from ``checkpoint_formats``:
        ``'official'`` (``'official-dense'`` with ``official_dense_key``),
        ``'timm'``, ... or ``'native'`` (this package's names)."""
        for key_format, pattern, *ndim in cls.checkpoint_formats:
            if any(re.match(pattern, k) and (not ndim or v.dim() == ndim[0])
                   for k, v in state_dict.items()):
                if (key_format == 'official' and cls.official_dense_key
                        and any(re.match(cls.official_dense_key, k)
                                for k in state_dict)):
                    return 'official-dense'
                return key_format
        return 'native'

    @classmethod
    def convert_checkpoint(cls, state_dict: Dict[str, torch.Tensor]
                           ) -> Tuple[Dict[str, torch.Tensor], str]:
        """Rename a checkpoint's keys to this module's names.

        The format is detected by :meth:`detect_key_format`; official keys
        are renamed by ``official_key_rules``, timm keys by
        ``timm_key_rules`` (:mod:`mmmetaformer.keymap` tables; empty: the
        names are this package's), other formats keep their names. A pure
        renaming: tensors are shared, not copied.

        Returns:
            tuple[dict, str]: The renamed state_dict and the detected format.
        """
        key_format = cls.detect_key_format(state_dict)
        if key_format.startswith('official'):
            return rename_keys(state_dict, cls.official_key_rules), key_format
        if key_format == 'timm' and cls.timm_key_rules:
            return rename_keys(state_dict, cls.timm_key_rules), key_format
        return dict(state_dict), key_format

    def check_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """Family-specific checks of a converted state_dict before anything
        is copied (raise a ``ValueError`` naming the key). Default: none."""

    def expected_missing_keys(self, key_format: str) -> Tuple[str, ...]:
        """Regexes of keys a checkpoint of ``key_format`` cannot contain.

        ImageNet releases (official or timm) have no dense output norms;
        native and official dense checkpoints have them.
        """
        if key_format in ('native', 'official-dense'):
            return ()
        return tuple(rf'norm{i}\.' for i in self.out_indices)

    def ignored_keys(self) -> Tuple[str, ...]:
        """Regexes of converted checkpoint keys that are deliberately not
        loaded: ``ignored_checkpoint_keys`` and, with
        ``ignore_unused_out_norms``, the output norms this instance does not
        have."""
        if not self.ignore_unused_out_norms:
            return tuple(self.ignored_checkpoint_keys)
        unused = tuple(rf'norm{i}\.' for i in range(NUM_STAGES)
                       if i not in self.out_indices or self.out_norm is None)
        return tuple(self.ignored_checkpoint_keys) + unused

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None,
                        map_location='cpu',
                        allow_partial: bool = False) -> LoadReport:
        """Load a checkpoint file with key conversion, log and return a report.

        Args:
            checkpoint (str): Local path or URL: a torch file, a
                safetensors file or a numpy ``.npz`` (recognised by content).
            prefix (str, optional): Key prefix of the backbone in the file,
                e.g. ``'backbone.'`` for mmdet/mmseg checkpoints.
            map_location: Passed to :func:`torch.load`.
            allow_partial (bool): Load a checkpoint that leaves many keys
                missing or unexpected (a warning) instead of refusing it
                (see :func:`~mmmetaformer.checkpoint.
                load_state_dict_with_report`).
        """
        ckpt = load_checkpoint_file(checkpoint, map_location=map_location)
        state_dict = extract_state_dict(ckpt, prefix)
        return self.load_converted(state_dict, source=checkpoint,
                                   allow_partial=allow_partial)

    def adapt_input_channels(self,
                             state_dict: Dict[str, torch.Tensor]) -> List[str]:
        """Fit the stem's first convolution of a (converted) checkpoint to
        ``in_channels``, in place; return a description of what changed.

        A weight ``(O, C_ckpt, k, k)`` for a stem with ``C = in_channels !=
        C_ckpt`` inputs becomes the mean of its ``C_ckpt`` input filters,
        repeated ``C`` times and scaled by ``C_ckpt / C``: an image whose
        ``C`` channels all hold the same values gives the same response as
        the pretrained stem on a ``C_ckpt``-channel image with those values
        (e.g. RGB weights on a 4-channel or grey input). Other shape
        differences are left to the loader's shape check.
        """
        name = next(n for n, m in self.stem.named_modules()
                    if isinstance(m, nn.Conv2d))
        key = f'stem.{name}.weight' if name else 'stem.weight'
        value = state_dict.get(key)
        target = self.stem.get_submodule(name).weight
        if (value is None or value.dim() != 4
                or value.shape[1] == target.shape[1]
                or value.shape[0] != target.shape[0]
                or value.shape[2:] != target.shape[2:]):
            return []
        source = value.shape[1]
        state_dict[key] = value.mean(1, keepdim=True).repeat(
            1, self.in_channels, 1, 1) * (source / self.in_channels)
        return [
            f'{key}: {source} -> {self.in_channels} input channels '
            f'(in_channels={self.in_channels}; the mean of the {source} '
            f'pretrained filters, repeated, scaled by {source}/'
            f'{self.in_channels})'
        ]

    def load_converted(self, state_dict: Dict[str, torch.Tensor],
                       source: str = '<state_dict>',
                       allow_partial: bool = False) -> LoadReport:
        """Convert ``state_dict``'s keys, check it, adapt the stem to
        ``in_channels`` (:meth:`adapt_input_channels`), load it, log and
        return a report (its ``adapted`` lists the adapted keys).
        ``allow_partial``: see :meth:`load_pretrained`."""
        converted, key_format = self.convert_checkpoint(state_dict)
        self.check_checkpoint(converted)
        adapted = self.adapt_input_channels(converted)
        report = load_state_dict_with_report(
            self,
            converted,
            source=source,
            key_format=key_format,
            ignore_patterns=self.ignored_keys(),
            expected_missing_patterns=self.expected_missing_keys(key_format),
            allow_partial=allow_partial,
            original=state_dict)
        report.adapted = adapted
        print_log(
            f'{type(self).__name__}: {report.summary()}',
            logger='current',
            level=logging.INFO if report.clean else logging.WARNING)
        return report


def _trunc_normal(module: nn.Module) -> None:
    trunc_normal_(module.weight, std=0.02)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _fan_out_normal(module: nn.Module) -> None:
    fan_out = (module.kernel_size[0] * module.kernel_size[1] *
               module.out_channels // module.groups)
    nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
    if module.bias is not None:
        nn.init.zeros_(module.bias)


#: Initialisers that ``init_rule`` names: truncated normal (std 0.02) or,
#: for convolutions, normal with std ``sqrt(2 / fan_out)``; zero biases.
INITIALISERS: Dict[str, Callable[[nn.Module], None]] = {
    'trunc_normal': _trunc_normal,
    'fan_out_normal': _fan_out_normal,
}
