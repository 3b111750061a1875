"""FLOP counting for the backbones with mmengine's analyzer.

mmengine's :class:`~mmengine.analysis.FlopAnalyzer` (and
:func:`~mmengine.analysis.get_model_complexity_info`, which builds one) has
no handle for ``aten::scaled_dot_product_attention``, the fused attention
that CAFormer and ResT/ResTv2 use: it skips the op with a log line only, and
the attention products (about 105 G MACs of CAFormer-S18 at 800 x 1333,
more than half of the backbone) are missing from the total.

This module provides the handle, and two explicit ways to use it. Importing
``mmmetaformer`` (or this module) changes nothing in mmengine.

* :func:`flop_analyzer` -- a ``FlopAnalyzer`` with the handle set on that
  instance only (what ``tools/analysis_tools/get_flops.py`` uses);
* :func:`extra_flop_handles` -- a context manager that adds the handle to
  mmengine's defaults while it is open, for code that builds its own
  analyzer (mmengine's ``get_model_complexity_info``, mmdet's or mmseg's
  ``get_flops.py``), and puts the defaults back on exit.

Counts follow mmengine (and fvcore): a "flop" is one multiply-accumulate.
"""
import contextlib
from typing import Any, Iterator, List

import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis import complexity_analysis
from mmengine.analysis.jit_handles import get_shape


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """MACs of ``aten::scaled_dot_product_attention(q, k, v, ...)``.

    With ``q`` of shape ``(*batch, L, E)``, ``k`` ``(*batch, S, E)`` and
    ``v`` ``(*batch, S, Ev)``: ``batch * L * S * E`` for ``q @ k^T`` plus
    ``batch * L * S * Ev`` for the weighted sum of ``v``. The softmax and
    the scaling are not counted (mmengine counts no element-wise op), nor
    is a mask; ``is_causal`` is counted as the full product (what the
    unfused computation does).

    Args:
        inputs (list[torch._C.Value]): The op's inputs (query, key, value,
            then the optional arguments).
        outputs (list[torch._C.Value]): The op's outputs (unused).

    Returns:
        int: The number of multiply-accumulates.
    """
    q_shape, k_shape, v_shape = (get_shape(v) for v in inputs[:3])
    if q_shape is None or k_shape is None or v_shape is None:
        raise ValueError('scaled_dot_product_attention: the shapes of query, '
                         'key and value must be known to count its FLOPs.')
    *batch, length, dim = q_shape
    source_length, value_dim = k_shape[-2], v_shape[-1]
    batch_size = 1
    for size in batch:
        batch_size *= size
    return batch_size * length * source_length * (dim + value_dim)


#: mmengine op name -> FLOP handle, for the ops mmengine does not count.
FLOP_HANDLES = {'aten::scaled_dot_product_attention': sdpa_flop_jit}


def flop_analyzer(model: nn.Module, inputs: Any) -> FlopAnalyzer:
    """mmengine's ``FlopAnalyzer`` for ``model(*inputs)``, with the handles
    of :data:`FLOP_HANDLES` set on this instance only.

    Args:
        model (nn.Module): The model to analyse.
        inputs (torch.Tensor | tuple): Its forward inputs.

    Returns:
        FlopAnalyzer: The analyzer (call ``.total()``, ``.by_operator()``,
        ``.unsupported_ops()``, ...).
    """
    return FlopAnalyzer(model, inputs).set_op_handle(**FLOP_HANDLES)


@contextlib.contextmanager
def extra_flop_handles() -> Iterator[None]:
    """Add :data:`FLOP_HANDLES` to mmengine's default FLOP handles while the
    context is open; the previous defaults are restored on exit.

    Example:
        >>> from mmengine.analysis import get_model_complexity_info
        >>> with extra_flop_handles():
        ...     info = get_model_complexity_info(model, (3, 224, 224))
    """
    defaults = complexity_analysis._DEFAULT_SUPPORTED_FLOP_OPS
    saved = dict(defaults)
    defaults.update(FLOP_HANDLES)
    try:
        yield
    finally:
        defaults.clear()
        defaults.update(saved)
