"""The constructor arguments shared by every backbone: their checks, the
output levels (``out_indices``) and the messages for unknown arguments
(with hints for the names of other libraries' backbones)."""
import copy
import difflib
import inspect
from typing import Dict, Tuple, Union

from mmengine.model import BaseModule

from ..layers import build_norm
from .arch import _is_int, _is_number

#: Output levels of every backbone: strides 4, 8, 16, 32.
NUM_LEVELS = 4
_DEFAULT = 'default'

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


class ArgumentChecks:
    """Checks of the constructor arguments (a part of
    :class:`~.base.MetaFormerBackbone`): each bad value is a ``ValueError``
    naming the argument and its valid values.

    Class attribute ``mmpretrain_block_indices``: mmpretrain has this family
    with ``out_indices`` counting its network's blocks (stages at 0, 2, 4,
    6): an ``out_indices`` error says so.
    """
    mmpretrain_block_indices: bool = False

    @staticmethod
    def _check_init_cfg(init_cfg) -> None:
        if init_cfg is not None and not (
                isinstance(init_cfg, dict) or
            (isinstance(init_cfg, (list, tuple))
             and all(isinstance(c, dict) for c in init_cfg))):
            raise ValueError('init_cfg must be None, a dict or a list of '
                             f'dicts, got {init_cfg!r}.')

    def _check_arguments(self, in_channels, frozen_stages, norm_eval,
                         with_cp, drop_path_rate) -> None:
        """Check the arguments that do not depend on the network (called
        once the arch is parsed: the bound of ``frozen_stages`` does)."""
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

    def _parse_out_norm(self, out_norm: Union[str, dict, None]):
        """``'default'``: a copy of the family's ``default_out_norm``; a norm
        config dict (checked by building it) or None as given."""
        if isinstance(out_norm, str) and out_norm == _DEFAULT:
            return copy.deepcopy(self.default_out_norm)
        if out_norm is not None and not isinstance(out_norm, dict):
            raise ValueError(f"out_norm must be 'default', None or a norm "
                             f'config dict, got {out_norm!r}.')
        if out_norm is not None:
            try:
                build_norm(out_norm, 1)
            except ValueError as error:
                raise ValueError(f'out_norm: {error}') from None
        return out_norm

    @classmethod
    def _parse_out_indices(cls, out_indices) -> Tuple[int, ...]:
        if _is_int(out_indices):
            out_indices = (out_indices, )
        if not isinstance(out_indices, (list, tuple)) or not out_indices:
            raise ValueError('out_indices must be an int or a non-empty '
                             f'sequence of ints, got {out_indices!r}.')
        result = []
        for index in out_indices:
            if not _is_int(index) or not -NUM_LEVELS <= index < NUM_LEVELS:
                hint = ''
                if cls.mmpretrain_block_indices and _is_int(index) and all(
                        _is_int(i) and 0 <= i <= 2 * (NUM_LEVELS - 1)
                        and i % 2 == 0 for i in out_indices):
                    hint = (
                        ' (mmpretrain\'s PoolFormer numbers its network '
                        'blocks, stages at 0, 2, 4, 6; here the stages are '
                        f'0-{NUM_LEVELS - 1}: out_indices='
                        f'{tuple(i // 2 for i in out_indices)})')
                raise ValueError(
                    f'out_indices entries must be stage indices in '
                    f'[0, {NUM_LEVELS - 1}] (or negative from the end), got '
                    f'{index!r} in {out_indices!r}{hint}.')
            result.append(index % NUM_LEVELS)
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
            if klass is BaseModule:  # the mixins and families come first
                break
            if init is not None:
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
