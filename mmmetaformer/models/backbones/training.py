"""What training sees of a backbone: frozen stages, ``norm_eval`` and the
layer / stage ids of layer-wise learning-rate decay.

The contract, the same for every family (a part of
:class:`~.base.MetaFormerBackbone`); the numbers follow each family's real
structure (``len(depths)`` stages, ``sum(depths)`` blocks):

* **PoolFormer, PoolFormerV2, IdentityFormer, RandFormer, ConvFormer,
  CAFormer, ResT, ResTV2, CycleMLP**: 4 stages. ``frozen_stages`` counts
  stages (-1..4). Stage-wise ids: stem 0, stages 1-4, the rest 5 (6 ids).
* **PiT**: 3 stages (levels 1-3; level 0 is a learned upsample of stage 0).
  ``frozen_stages`` counts stages (-1..3; stage s with the norm of level
  s + 1). Stage-wise ids: stem 0, stages 1-3, the rest 4 (5 ids).
* **MLPMixer, ResMLP**: 1 stage of ``depth`` blocks. ``frozen_stages``
  counts blocks (-1..depth). Stage-wise ids: stem 0, the blocks 1, the rest
  2 (3 ids; layer-wise decay separates the blocks).
* Layer-wise ids, every family: stem 0, block k (over all stages) k + 1, a
  downsampler with its stage's first block, the rest ``sum(depths) + 1``
  (``sum(depths) + 2`` ids).

"rest" is every parameter after the blocks (output norms, PiT's
``upsample``, the MLP trunks' final ``norm`` and ``pyramid``) and, with a
``prefix``, every parameter outside the backbone (neck, heads).

``frozen_stages`` counts blocks in the single-stage MLP trunks (MLPMixer,
ResMLP), as OpenMMLab's plain single-scale backbones (mmpretrain's
VisionTransformer) count their layers: in stages, ``frozen_stages=1`` -- the
usual detection setting taken from ResNet configs -- would freeze the whole
pretrained trunk; in blocks it freezes the stem and the first block.
"""
import re
from typing import List, Tuple

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


class TrainingControls:
    """Freezing, ``norm_eval`` and layer-decay ids (see the module
    docstring for every family's values).

    Class attributes: ``frozen_unit`` (what ``frozen_stages`` counts:
    ``'stage'`` or ``'block'``) and ``stage_levels`` (the output level of each
    stage's map: its output norm ``norm{level}`` is frozen with the stage).
    The instance has ``stem``, ``stages`` (each with ``blocks``),
    ``depths``, ``frozen_stages`` and ``norm_eval``.
    """
    frozen_unit: str = 'stage'
    stage_levels: Tuple[int, ...] = (0, 1, 2, 3)

    def max_frozen_stages(self) -> int:
        """The largest valid ``frozen_stages``: the number of stages (or of
        blocks, for ``frozen_unit='block'``). Called by ``__init__`` after
        the arch is parsed."""
        if self.frozen_unit == 'block':
            return sum(self.depths)
        return len(self.depths)

    def frozen_stages_help(self) -> str:
        """What each ``frozen_stages`` value freezes, for messages."""
        if self.frozen_unit == 'block':
            return ('it counts blocks, not stages: -1 nothing, 0 the stem, k '
                    f'the stem and the first k of the {sum(self.depths)} '
                    'blocks')
        return '-1: nothing, 0: the stem, k: the stem and stages 0..k-1'

    def _frozen_modules(self) -> List[nn.Module]:
        """The stem and the first ``frozen_stages`` stages with the output
        norms of their levels (``frozen_unit='block'``: the stem and the
        first ``frozen_stages`` blocks)."""
        if self.frozen_stages < 0:
            return []
        if self.frozen_unit == 'block':
            blocks = [b for stage in self.stages for b in stage.blocks]
            return [self.stem] + blocks[:self.frozen_stages]
        modules = [self.stem]
        for stage, level in zip(self.stages[:self.frozen_stages],
                                self.stage_levels):
            modules.append(stage)
            norm = getattr(self, f'norm{level}', None)
            if norm is not None:
                modules.append(norm)
        return modules

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
        num_ids = (sum(self.depths) if block_wise else len(self.depths)) + 2
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
        outside the backbone) is the last layer. The same for every family
        (see the module docstring).

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
        outside the backbone) is the last id, the number of stages + 1:
        5 of 6 ids for the 4-stage families, 4 of 5 for PiT (3 stages), 2 of
        3 for MLPMixer and ResMLP (one stage of blocks: use
        ``decay_type='layer_wise'`` to decay per block).

        Args:
            param_name (str): Parameter name.
            prefix (str): Prefix of the backbone's parameters in the model.

        Returns:
            tuple[int, int]: The stage id and the number of ids
            (``len(depths) + 2``).
        """
        return self._depth_id(param_name, prefix, block_wise=False)
