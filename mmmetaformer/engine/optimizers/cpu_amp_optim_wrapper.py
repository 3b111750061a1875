"""Mixed precision training on the CPU with mmengine's optimizer wrapper
interface (``tools/train.py --amp`` without CUDA).

mmengine's ``AmpOptimWrapper`` refuses to be built on a machine without a
GPU, and its ``autocast`` helper accepts only bfloat16 on the CPU; this
wrapper is ``AmpOptimWrapper`` (same loss scaling, state dict and gradient
accumulation) with ``torch.autocast('cpu', dtype)`` as its context.
"""
import contextlib

import torch
import torch.nn as nn
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmmetaformer.registry import OPTIM_WRAPPERS

#: Autocast dtype -> whether losses are scaled (float16's range needs it).
CPU_AMP_DTYPES = {'bfloat16': False, 'float16': True}


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(AmpOptimWrapper):
    """:class:`mmengine.optim.AmpOptimWrapper` for models on the CPU.

    Args:
        dtype (str): ``'bfloat16'`` (default: no loss scaling needed) or
            ``'float16'`` (losses scaled by a ``torch.amp.GradScaler``).
        loss_scale (str | float | dict): As for ``AmpOptimWrapper``:
            ``'dynamic'``, an initial scale, or ``GradScaler`` arguments.
            Used for float16 only.
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self,
                 dtype: str = 'bfloat16',
                 loss_scale='dynamic',
                 **kwargs) -> None:
        if dtype not in CPU_AMP_DTYPES:
            raise ValueError(f'CPUAmpOptimWrapper dtype must be one of '
                             f'{sorted(CPU_AMP_DTYPES)}, got {dtype!r}.')
        # AmpOptimWrapper.__init__ asserts that a GPU exists: skipped.
        OptimWrapper.__init__(self, **kwargs)
        self.cast_dtype = getattr(torch, dtype)
        self._scale_update_param = None
        scaler_args = dict(enabled=CPU_AMP_DTYPES[dtype])
        if isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            scaler_args['init_scale'] = loss_scale
        elif isinstance(loss_scale, dict):
            scaler_args.update(loss_scale)
        elif loss_scale != 'dynamic':
            raise TypeError('loss_scale must be "dynamic", a float or a '
                            f'dict, got {loss_scale!r}.')
        self.loss_scaler = torch.amp.GradScaler('cpu', **scaler_args)

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module):
        """``OptimWrapper``'s context (gradient accumulation) with CPU
        autocast in :attr:`cast_dtype`."""
        with OptimWrapper.optim_context(self, model), torch.autocast(
                'cpu', dtype=self.cast_dtype):
            yield
