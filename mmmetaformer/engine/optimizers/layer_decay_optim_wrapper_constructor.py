"""Layer-wise / stage-wise learning-rate decay for the package's backbones.

Registered into :data:`mmmetaformer.registry.OPTIM_WRAPPER_CONSTRUCTORS` (a
child of mmengine's root registry), so any OpenMMLab config selects it with
``optim_wrapper=dict(constructor=
'mmmetaformer.LayerDecayOptimWrapperConstructor', ...)``; mmdet and mmseg
configs may also use the unscoped name (see
:func:`mmmetaformer.models.register_into_downstream`).

Unlike mmseg's ``LearningRateDecayOptimizerConstructor``, which recognises
backbones by their class names, the depth of a parameter comes from the
backbone itself: :meth:`MetaFormerBackbone.get_layer_depth` (block-wise) or
:meth:`MetaFormerBackbone.get_stage_depth` (stage-wise).
"""
from typing import List, Optional

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor

from mmmetaformer.registry import OPTIM_WRAPPER_CONSTRUCTORS

DECAY_TYPES = ('layer_wise', 'stage_wise')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Learning rates decaying from the model's head down to the stem.

    A parameter with layer id ``i`` out of ``n`` (from the backbone, see
    below) gets ``lr * decay_rate ** (n - 1 - i)``; everything outside the
    backbone (neck, heads) has id ``n - 1`` and the base lr. As in the
    ConvNeXt / BEiT constructors that the official configs of ResTv2 and
    others used, 1-D parameters (norm weights, biases) get no weight decay.

    * ``decay_type='layer_wise'``: ids from ``backbone.get_layer_depth``:
      the stem 0, block k (over all stages) k + 1, ``n = sum(depths) + 2``.
    * ``decay_type='stage_wise'``: ids from ``backbone.get_stage_depth``: the
      stem 0, stage i (downsampler and blocks) i + 1, ``n = len(depths) +
      2`` (6 for the 4-stage families, 5 for PiT, 3 for the single-stage
      MLPMixer / ResMLP).

    Args:
        optim_wrapper_cfg (dict): The optimizer wrapper config (with
            ``optimizer=dict(type=..., lr=..., weight_decay=...)``).
        paramwise_cfg (dict): ``decay_rate`` (float in (0, 1], required) and
            ``decay_type`` (``'layer_wise'`` or ``'stage_wise'``; default
            ``'layer_wise'``). No other keys.
    """

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        unknown = set(paramwise_cfg) - {'decay_rate', 'decay_type'}
        if unknown:
            raise ValueError(
                f'paramwise_cfg of LayerDecayOptimWrapperConstructor takes '
                f'"decay_rate" and "decay_type" only, got {sorted(unknown)}.')
        rate = paramwise_cfg.get('decay_rate')
        if not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise ValueError('paramwise_cfg["decay_rate"] must be a number in '
                             f'(0, 1], got {rate!r}.')
        decay_type = paramwise_cfg.setdefault('decay_type', 'layer_wise')
        if decay_type not in DECAY_TYPES:
            raise ValueError(f'paramwise_cfg["decay_type"] must be one of '
                             f'{DECAY_TYPES}, got {decay_type!r}.')
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        self.decay_rate = float(rate)
        self.decay_type = decay_type

    def add_params(self, params: List[dict], module: nn.Module,
                   prefix: str = '', **kwargs) -> None:
        """Fill ``params`` with one group per (layer id, decay / no decay).

        Args:
            params (list[dict]): Param groups, filled in place.
            module (nn.Module): The whole model; it must have a ``backbone``
                with ``get_layer_depth`` / ``get_stage_depth``.
            prefix (str): Unused (the model is not traversed recursively).
        """
        backbone = getattr(module, 'backbone', None)
        method = ('get_layer_depth' if self.decay_type == 'layer_wise' else
                  'get_stage_depth')
        depth_of = getattr(backbone, method, None)
        if depth_of is None:
            raise ValueError(
                f'LayerDecayOptimWrapperConstructor needs model.backbone.'
                f'{method}() (the backbones of mmmetaformer have it); '
                f'got a backbone of type {type(backbone).__name__}.')
        base_lr = self.optimizer_cfg['lr']
        weight_decay = self.optimizer_cfg.get('weight_decay', 0.0)
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            layer_id, num_layers = depth_of(name, 'backbone.')
            no_decay = param.ndim == 1 or name.endswith('.bias')
            key = (layer_id, no_decay)
            if key not in groups:
                groups[key] = dict(
                    params=[],
                    lr=base_lr * self.decay_rate**(num_layers - 1 - layer_id),
                    weight_decay=0.0 if no_decay else weight_decay,
                    layer_id=layer_id)
            groups[key]['params'].append(param)
        params.extend(groups[key] for key in sorted(groups))
