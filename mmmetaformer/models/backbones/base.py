"""The generic MetaFormer: one block structure, token mixers injected.

Every family in this package (PoolFormer v1/v2, IdentityFormer, RandFormer,
ConvFormer, CAFormer, ResT, ResTv2, CycleMLP) is this network::

    stem -> stage 0 -> stage 1 -> stage 2 -> stage 3      (strides 4/8/16/32)
    stage i = downsample_i (identity for i = 0) -> blocks_i
    block   = x = res_scale1(x) + drop_path(layer_scale1(mixer(norm1(x))))
              x = res_scale2(x) + drop_path(layer_scale2(mlp(norm2(x))))

with tokens kept channels-last (B, H, W, C) between layers. A family is an
``arch_settings`` table plus three builders (stem, downsampler, block, where
the block builder picks the token mixer), and a pure function that renames
official checkpoint keys to this module's names.
"""
import copy
import logging
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

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
from ..layers import ConvEmbed, DropPath, Scale

NUM_STAGES = 4
_DEFAULT = 'default'


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
    """

    def __init__(self, downsample: nn.Module,
                 blocks: Sequence[nn.Module]) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)
        self.with_cp = False

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

    Subclasses set ``arch_settings`` (and ``arch_defaults`` for optional
    per-arch keys), ``default_out_norm`` and implement :meth:`build_stem`,
    :meth:`build_downsample`, :meth:`build_block` and
    :meth:`convert_checkpoint`.

    Args:
        arch (str | dict): A key of ``arch_settings``, or a dict with at least
            ``embed_dims`` and ``depths`` (4 entries each) and optionally the
            family's other arch keys.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int] | int): Stages whose outputs are returned;
            output i has stride ``2 ** (i + 2)``. Defaults to (0, 1, 2, 3).
        out_norm (dict | str | None): Norm applied to each returned map
            (modules ``norm{i}``). ``'default'`` is the family's official
            dense output norm; ``None`` returns raw stage outputs.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem and
            stages 0..k-1 (no gradients, eval mode). Defaults to -1.
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
    arch_defaults: Dict[str, object] = {}
    default_out_norm: Optional[dict] = None
    # Norm of the default stem (after its conv) and downsamplers (before
    # theirs); None: convolutions only.
    embed_norm: Optional[dict] = None
    # Checkpoint keys (after conversion) that are deliberately not used,
    # e.g. the ImageNet classifier.
    ignored_checkpoint_keys: Tuple[str, ...] = (r'head\.', r'norm\.')
    # True: the output norm of a returned stage is part of the trunk (the
    # next stage consumes the normalised map), as in ResT v1's official
    # dense backbone. False: output norms are side branches.
    out_norm_in_trunk: bool = False

    def __init__(self,
                 arch: Union[str, dict],
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 out_norm: Union[str, dict, None] = _DEFAULT,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.0,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = self.parse_arch(arch)
        self.embed_dims = list(self.arch['embed_dims'])
        self.depths = list(self.arch['depths'])
        self.out_indices = self._parse_out_indices(out_indices)
        if not isinstance(frozen_stages, int) or not (-1 <= frozen_stages
                                                      <= NUM_STAGES):
            raise ValueError(f'frozen_stages must be an int in [-1, '
                             f'{NUM_STAGES}], got {frozen_stages!r}.')
        if not isinstance(drop_path_rate, (int, float)) or not (
                0.0 <= drop_path_rate < 1.0):
            raise ValueError(
                f'drop_path_rate must be in [0, 1), got {drop_path_rate!r}.')
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(
                f'in_channels must be a positive int, got {in_channels!r}.')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.drop_path_rate = float(drop_path_rate)
        if out_norm == _DEFAULT:
            out_norm = copy.deepcopy(self.default_out_norm)
        elif isinstance(out_norm, str):
            raise ValueError(f"out_norm must be 'default', None or a norm "
                             f'config dict, got {out_norm!r}.')
        self.out_norm = out_norm

        self.stem = self.build_stem(in_channels, self.embed_dims[0])
        total = sum(self.depths)
        rates = [self.drop_path_rate * k / max(total - 1, 1)
                 for k in range(total)]
        self.stages = nn.ModuleList()
        start = 0
        for i, (dim, depth) in enumerate(zip(self.embed_dims, self.depths)):
            downsample = nn.Identity() if i == 0 else self.build_downsample(
                i, self.embed_dims[i - 1], dim)
            blocks = [
                self.build_block(i, j, dim, rates[start + j])
                for j in range(depth)
            ]
            start += depth
            stage = MetaFormerStage(downsample, blocks)
            stage.with_cp = with_cp
            self.stages.append(stage)
        for i in self.out_indices:
            self.add_module(f'norm{i}', self.build_out_norm(i))
        self._freeze_stages()

    # ------------------------------------------------------------------ arch
    @classmethod
    def parse_arch(cls, arch: Union[str, dict]) -> dict:
        """Resolve ``arch`` to a complete, validated settings dict."""
        allowed = {'embed_dims', 'depths', *cls.arch_defaults}
        if isinstance(arch, str):
            if arch not in cls.arch_settings:
                raise ValueError(
                    f'Unknown arch {arch!r} for {cls.__name__}; valid choices '
                    f'are {sorted(cls.arch_settings)} or a dict with keys '
                    f'{sorted(allowed)}.')
            arch = cls.arch_settings[arch]
        elif not isinstance(arch, dict):
            raise ValueError(f'arch must be a str or a dict, got '
                             f'{type(arch).__name__}.')
        missing = {'embed_dims', 'depths'} - set(arch)
        unknown = set(arch) - allowed
        if missing or unknown:
            raise ValueError(
                f'Invalid arch dict for {cls.__name__}: missing keys '
                f'{sorted(missing)}, unknown keys {sorted(unknown)}; the '
                f'valid keys are {sorted(allowed)}.')
        settings = copy.deepcopy(cls.arch_defaults)
        settings.update(copy.deepcopy(arch))
        for key in ('embed_dims', 'depths'):
            value = settings[key]
            if (not isinstance(value, (list, tuple)) or len(value) != NUM_STAGES
                    or not all(isinstance(v, int) and v > 0 for v in value)):
                raise ValueError(f'arch[{key!r}] must be {NUM_STAGES} '
                                 f'positive ints, got {value!r}.')
        return settings

    def per_stage(self, key: str) -> list:
        """An arch value given as a scalar or one value per stage, as a list."""
        value = self.arch[key]
        if isinstance(value, (list, tuple)):
            if len(value) != NUM_STAGES:
                raise ValueError(f'arch[{key!r}] must have {NUM_STAGES} '
                                 f'entries, got {value!r}.')
            return list(value)
        return [value] * NUM_STAGES

    @staticmethod
    def _parse_out_indices(out_indices) -> Tuple[int, ...]:
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        if not isinstance(out_indices, (list, tuple)) or not out_indices:
            raise ValueError('out_indices must be an int or a non-empty '
                             f'sequence of ints, got {out_indices!r}.')
        result = []
        for index in out_indices:
            if not isinstance(index, int) or not (-NUM_STAGES <= index
                                                  < NUM_STAGES):
                raise ValueError(
                    f'out_indices entries must be stage indices in '
                    f'[0, {NUM_STAGES - 1}] (or negative from the end), got '
                    f'{index!r}.')
            result.append(index % NUM_STAGES)
        if len(set(result)) != len(result):
            raise ValueError(f'out_indices has duplicates: {out_indices!r}.')
        return tuple(sorted(result))

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

    def build_block(self, stage: int, index: int, dim: int,
                    drop_path: float) -> nn.Module:
        """Block ``index`` of ``stage``."""
        raise NotImplementedError

    def build_out_norm(self, stage: int) -> nn.Module:
        """Output norm of ``stage`` (channels-last), from ``out_norm``."""
        from ..layers import build_norm
        return build_norm(self.out_norm, self.embed_dims[stage])

    # ---------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the maps of ``out_indices`` as NCHW tensors."""
        if x.dim() != 4:
            raise ValueError(f'Expected an (N, C, H, W) input, got shape '
                             f'{tuple(x.shape)}.')
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
        if self.frozen_stages < 0:
            return []
        return [self.stem] + [self.stages[i] for i in range(self.frozen_stages)]

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

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer id of a parameter, for layer-wise learning-rate decay.

        The stem is layer 0, block k (counted over all stages) is layer k + 1
        (a downsampler belongs to the first block of its stage), and anything
        after the blocks (the output norms) is the last layer.

        Args:
            param_name (str): Parameter name.
            prefix (str): Prefix of the backbone's parameters in the model,
                e.g. ``'backbone.'``.

        Returns:
            tuple[int, int]: The layer id and the number of layers.
        """
        num_layers = sum(self.depths) + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        if name.startswith('stem.'):
            return 0, num_layers
        match = re.match(r'stages\.(\d+)\.(blocks\.(\d+)|downsample)', name)
        if match is None:
            return num_layers - 1, num_layers
        stage = int(match.group(1))
        block = int(match.group(3)) if match.group(3) is not None else 0
        return sum(self.depths[:stage]) + block + 1, num_layers

    def get_stage_depth(self, param_name: str, prefix: str = ''):
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
        num_layers = NUM_STAGES + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        if name.startswith('stem.'):
            return 0, num_layers
        match = re.match(r'stages\.(\d+)\.', name)
        if match is None:
            return num_layers - 1, num_layers
        return int(match.group(1)) + 1, num_layers

    # ---------------------------------------------------------- weight init
    def _init_module(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

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
            unknown = set(args) - {'checkpoint', 'prefix', 'map_location'}
            if unknown or 'checkpoint' not in args:
                raise ValueError(
                    "init_cfg type='Pretrained' takes 'checkpoint' (required),"
                    f" 'prefix' and 'map_location'; got {sorted(args)}.")
            self.load_pretrained(**args)
        self._is_init = True

    # ------------------------------------------------------------ checkpoints
    @classmethod
    def convert_checkpoint(cls, state_dict: Dict[str, torch.Tensor]
                           ) -> Tuple[Dict[str, torch.Tensor], str]:
        """Rename a checkpoint's keys to this module's names.

        Returns:
            tuple[dict, str]: The renamed state_dict and the detected format.
        """
        return dict(state_dict), 'native'

    def expected_missing_keys(self, key_format: str) -> Tuple[str, ...]:
        """Regexes of keys a checkpoint of ``key_format`` cannot contain.

        Official ImageNet releases and timm copies have no dense output norms.
        """
        if key_format == 'native':
            return ()
        return tuple(rf'norm{i}\.' for i in self.out_indices)

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None,
                        map_location='cpu') -> LoadReport:
        """Load a checkpoint file with key conversion, log and return a report.

        Args:
            checkpoint (str): Local path or URL.
            prefix (str, optional): Key prefix of the backbone in the file,
                e.g. ``'backbone.'`` for mmdet/mmseg checkpoints.
            map_location: Passed to :func:`torch.load`.
        """
        ckpt = load_checkpoint_file(checkpoint, map_location=map_location)
        state_dict = extract_state_dict(ckpt, prefix)
        return self.load_converted(state_dict, source=checkpoint)

    def load_converted(self, state_dict: Dict[str, torch.Tensor],
                       source: str = '<state_dict>') -> LoadReport:
        """Convert ``state_dict``'s keys, load it, log and return a report."""
        converted, key_format = self.convert_checkpoint(state_dict)
        report = load_state_dict_with_report(
            self,
            converted,
            source=source,
            key_format=key_format,
            ignore_patterns=self.ignored_checkpoint_keys,
            expected_missing_patterns=self.expected_missing_keys(key_format))
        print_log(
            f'{type(self).__name__}: {report.summary()}',
            logger='current',
            level=logging.INFO if report.clean else logging.WARNING)
        return report


def rename_keys(state_dict: Dict[str, torch.Tensor],
                rules: Sequence[Tuple[str, Union[str, Callable]]]
                ) -> Dict[str, torch.Tensor]:
    """Apply regex substitution ``rules`` in order to every key.

    Args:
        state_dict (dict): Source.
        rules (Sequence[tuple]): ``(pattern, replacement)`` pairs for
            :func:`re.sub`.

    Returns:
        dict: A new dict with renamed keys (tensors are shared).
    """
    compiled = [(re.compile(p), r) for p, r in rules]
    result = {}
    for key, value in state_dict.items():
        for pattern, repl in compiled:
            key = pattern.sub(repl, key)
        if key in result:
            raise KeyError(f'Two checkpoint keys map to {key!r}.')
        result[key] = value
    return result
