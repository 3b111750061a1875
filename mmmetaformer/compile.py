"""``torch.compile`` for inputs whose height and width change (detection and
segmentation batches): one compile per shape class instead of one per size.

Dynamo specialises a compiled graph on its inputs' sizes. By default the
first call compiles for its exact size, a call with another height
recompiles with the height symbolic, one with another width once more: with
torch 2.13, PoolFormer-S12 (training step, ``aot_eager``) fed 6 sizes from
64 x 64 to 224 x 192 compiled 3 times (after each size: 1, 2, 3, 3, 3, 3),
as did the tiny archs of PoolFormer(V2), IdentityFormer, ConvFormer,
CAFormer, ResT(V2), CycleMLP and PiT; each inductor compile of PoolFormer-S12
took about 60 s on a 2-core machine. After
``torch._dynamo.config.recompile_limit`` (8) compiles, dynamo silently runs
the function eagerly.

:func:`compile_for_varying_sizes` marks the last two dimensions (height,
width) of every tensor input with at least 3 dimensions dynamic before each
call (:func:`mark_dynamic_sizes`), so the first compile is already for any
height and width: PoolFormer-S12 and those tiny archs compiled once for
the same 6 sizes. :func:`compile_backbone`
does this for the backbone of a detector or segmentor, where the padded
batch enters. What still recompiles is a new shape class: another number of
dimensions, batch size, channel count, dtype, device or ``requires_grad``;
a height or width of 0 or 1 (always specialised); a size on the other side
of PyTorch's own convolution-backend choice (its fake convolution guards on
the output size, seen at 256 x 384 for a tiny arch); and for the windowed
token mixing of RandFormer, MLPMixer and ResMLP
(``models.layers.token_mixing.mix_in_windows``), a number of windows of 1 or
more and the padding to whole windows (their tiny archs compiled 5 times for
the 6 sizes, marked or not). Nothing here runs at ``import mmmetaformer``.
"""
from typing import Callable, Sequence

import torch

#: The dimensions marked dynamic by default: height and width.
SPATIAL_DIMS = (-2, -1)


def mark_dynamic_sizes(inputs, dims: Sequence[int] = SPATIAL_DIMS):
    """Mark ``dims`` of every tensor in ``inputs`` with at least 3 dimensions
    as dynamic for ``torch.compile``
    (``torch._dynamo.maybe_mark_dynamic``: a graph that needs a fixed size
    recompiles instead of failing).

    Args:
        inputs: A tensor, or lists / tuples / dicts of them (other objects
            are left alone).
        dims (Sequence[int]): Dimensions to mark, negative ones from the
            end. Defaults to height and width.

    Returns:
        ``inputs`` (marked in place).
    """
    if isinstance(inputs, torch.Tensor):
        if inputs.dim() >= 3:
            for dim in dims:
                torch._dynamo.maybe_mark_dynamic(inputs, dim % inputs.dim())
    elif isinstance(inputs, dict):
        for value in inputs.values():
            mark_dynamic_sizes(value, dims)
    elif isinstance(inputs, (list, tuple)):
        for value in inputs:
            mark_dynamic_sizes(value, dims)
    return inputs


def compile_for_varying_sizes(fn: Callable,
                              dims: Sequence[int] = SPATIAL_DIMS,
                              **compile_kwargs) -> Callable:
    """``torch.compile(fn, **compile_kwargs)`` whose tensor inputs get their
    height and width marked dynamic before every call.

    Args:
        fn (Callable): A module or function (e.g. ``model``,
            ``model.train_step``).
        dims (Sequence[int]): The dimensions to mark
            (:func:`mark_dynamic_sizes`).
        **compile_kwargs: ``torch.compile`` arguments (``backend``,
            ``mode``, ...); ``dynamic`` is left to dynamo's default unless
            given.

    Returns:
        Callable: Calls the compiled ``fn``; the compiled object is its
        ``compiled`` attribute.
    """
    compiled = torch.compile(fn, **compile_kwargs)

    def call(*args, **kwargs):
        mark_dynamic_sizes(args, dims)
        mark_dynamic_sizes(kwargs, dims)
        return compiled(*args, **kwargs)

    call.compiled = compiled
    return call


def compile_backbone(model: torch.nn.Module,
                     dims: Sequence[int] = SPATIAL_DIMS,
                     **compile_kwargs) -> torch.nn.Module:
    """Compile the backbone of a detector / segmentor (``model.backbone``,
    inside a DDP-style ``module`` wrapper too) for changing input sizes:
    its ``forward`` is replaced, on the instance, by
    :func:`compile_for_varying_sizes` of it. The backbone gets the padded
    batch tensor itself, so its height and width are marked where they enter
    the compiled code (marks on the images given to ``train_step`` do not
    survive the data preprocessor's padding); the rest of the model stays
    eager. Parameters, ``state_dict`` and checkpoints are unchanged.

    Args:
        model (torch.nn.Module): The model (or a wrapper with ``module``).
        dims (Sequence[int]): The dimensions to mark.
        **compile_kwargs: ``torch.compile`` arguments.

    Returns:
        torch.nn.Module: The compiled backbone.

    Raises:
        AttributeError: The model has no ``backbone``.
    """
    inner = getattr(model, 'module', model)
    backbone = getattr(inner, 'backbone', None)
    if not isinstance(backbone, torch.nn.Module):
        raise AttributeError(
            f'compile_backbone: {type(inner).__name__} has no `backbone` '
            'module; compile the model with compile_for_varying_sizes(model) '
            'instead.')
    backbone.forward = compile_for_varying_sizes(backbone.forward, dims,
                                                 **compile_kwargs)
    return backbone


def compiled_graphs() -> int:
    """Graphs dynamo has compiled in this process (its ``unique_graphs``
    counter; 0 if this torch has no such counter)."""
    counters = getattr(getattr(torch, '_dynamo', None), 'utils', None)
    stats = getattr(counters, 'counters', {}).get('stats', {})
    return int(stats.get('unique_graphs', 0))
