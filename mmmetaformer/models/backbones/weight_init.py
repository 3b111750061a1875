"""Weight initialisation of the backbones: the family's ``init_rule`` (which
initialiser each layer type gets), then ``init_cfg`` (``Pretrained`` loads a
checkpoint with key conversion and a report)."""
import math
from typing import Callable, Dict, Tuple, Union

import torch.nn as nn
from mmengine.model import initialize
from mmengine.model.weight_init import trunc_normal_


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

#: The keys a ``Pretrained`` init_cfg entry may have besides ``type``.
PRETRAINED_KEYS = ('checkpoint', 'prefix', 'map_location', 'allow_partial')


class WeightInit:
    """``init_rule`` and ``init_weights`` (a part of
    :class:`~.base.MetaFormerBackbone`).

    ``init_rule``: ``{layer type(s): initialiser name}`` (see
    :data:`INITIALISERS`); other layers keep PyTorch's initialisation.
    """
    init_rule: Dict[Union[type, Tuple[type, ...]], str] = {
        nn.Linear: 'trunc_normal'}

    def _init_module(self, module: nn.Module) -> None:
        """Initialise ``module`` by the first ``init_rule`` entry whose layer
        type(s) it is an instance of."""
        for types, initialiser in self.init_rule.items():
            if isinstance(module, types):
                INITIALISERS[initialiser](module)
                return

    def init_weights(self) -> None:
        """Default init, then ``init_cfg`` (``Pretrained`` with conversion,
        by :meth:`load_pretrained`)."""
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
            unknown = set(args) - set(PRETRAINED_KEYS)
            if unknown or 'checkpoint' not in args:
                raise ValueError(
                    "init_cfg type='Pretrained' takes 'checkpoint' (required),"
                    " 'prefix', 'map_location' and 'allow_partial'; got "
                    f'{sorted(args)}.')
            self.load_pretrained(**args)
        self._is_init = True
