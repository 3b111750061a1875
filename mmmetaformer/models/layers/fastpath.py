"""Every speed route of the layers, and the one rule deciding where each runs.

The layers (``Mlp``, ``SepConv``, ``Pooling``, attention) are written as
their math and call the functions of this module for the operations that
have a faster route than the plain PyTorch op somewhere:

========================  ==================================================
fast path                 route (the plain op everywhere else)
========================  ==================================================
``conv1x1_linear``        :func:`channel_linear` of a contiguous (B, H, W,
                          C) map as a 1x1 convolution (oneDNN on CPU)
``onednn_bf16_linear``    :func:`channel_linear` under bfloat16 autocast
                          without gradients: oneDNN's fused linear
``depthwise_weight_grad`` :func:`depthwise_conv2d`'s weight gradient as one
                          grouped convolution (:class:`_DepthwiseConv2d`)
``neighbour_mean_grad``   :func:`neighbour_mean`'s gradient as one sum
                          pooling (:class:`_NeighbourMean`)
``in_place``              ReLU / StarReLU / squaring of a fresh intermediate
                          map in its own memory when autograd does not
                          need it (:func:`relu_`, :func:`square_`,
                          :func:`star_relu_`)
========================  ==================================================

:data:`MEASURED` lists, for each, the device types and dtypes it was
measured to win on; :func:`use_fast_path` is the rule: a fast path runs only
there, never while tracing or compiling (:func:`tracing`: exporters, FLOP
counters and compilers see the plain operators). All figures are from
torch 2.13 on CPU (a 2-core AMD EPYC, ``tools/benchmarks/speed.py``); no
GPU has measured any of them, so on CUDA (and the ``meta`` device) every
layer runs stock PyTorch operators: no oneDNN operator, no custom autograd
function, no host read of a tensor.

Also the device queries the layers share: :func:`autocast_dtype` and
:func:`autocast_disabled` (which accept any device, including those that
autocast does not know, such as ``meta``), and :func:`grad_needed`.
"""
import contextlib
import sys
from functools import lru_cache, partial
from typing import Dict, FrozenSet, Optional, Tuple

import torch
import torch.nn.functional as F

_CPU = frozenset({'cpu'})

#: Fast path -> (device types, dtypes) on which it was measured to win
#: (torch 2.13, CPU, 2-core AMD EPYC); ``None``: any dtype. The dtype is
#: the one the route computes in (the autocast dtype under autocast).
MEASURED: Dict[str, Tuple[FrozenSet[str], Optional[FrozenSet[torch.dtype]]]]
MEASURED = {
    # float32 CAFormer-S18 inference at 512x512: 456 -> 427 ms (the qkv
    # projection alone; all projections of every family take it)
    'conv1x1_linear': (_CPU, frozenset({torch.float32})),
    # bias and activation on the float32 accumulator inside the GEMM
    'onednn_bf16_linear': (_CPU, frozenset({torch.bfloat16})),
    # PyTorch's CPU depthwise weight gradient: 3-30x slower on the
    # ConvFormer / CAFormer shapes, bfloat16 up to 80x
    'depthwise_weight_grad': (_CPU, frozenset({torch.float32,
                                               torch.bfloat16})),
    # PyTorch's CPU avg_pool2d_backward in bfloat16: 4.6x slower on
    # PoolFormer's stage-1 maps (float32: as fast, so not taken)
    'neighbour_mean_grad': (_CPU, frozenset({torch.bfloat16})),
    # one allocation and pass fewer; same kernels, same values in any dtype
    'in_place': (_CPU, None),
}


def tracing() -> bool:
    """Whether the forward is being traced, scripted or compiled (ONNX
    export, FLOP counting, TorchScript, ``torch.fx``, ``torch.compile`` /
    ``torch.export``): those see plain operators only."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    compiler = getattr(torch, 'compiler', None)
    is_compiling = getattr(compiler, 'is_compiling', None)
    if is_compiling is not None and is_compiling():
        return True
    # torch.fx not imported: nothing is being fx-traced; old torch has no
    # is_fx_symbolic_tracing
    fx = sys.modules.get('torch.fx._symbolic_trace')
    fx_tracing = getattr(fx, 'is_fx_symbolic_tracing', None)
    return bool(fx_tracing is not None and fx_tracing())


def use_fast_path(name: str, device: torch.device,
                  dtype: torch.dtype) -> bool:
    """The rule: whether fast path ``name`` (a key of :data:`MEASURED`)
    runs for tensors of ``dtype`` on ``device``: only where it was
    measured to win, and not while tracing."""
    devices, dtypes = MEASURED[name]
    return (device.type in devices and (dtypes is None or dtype in dtypes)
            and not tracing())


def grad_needed(x: torch.Tensor) -> bool:
    """Whether autograd may need ``x``: if not (inference, ``no_grad``), an
    intermediate tensor that nothing else holds can be updated in place."""
    return torch.is_grad_enabled() and x.requires_grad


# --- autocast queries valid on every device ---------------------------------


def _autocast_available(device_type: str) -> bool:
    available = getattr(torch.amp, 'is_autocast_available', None)
    if available is None:  # torch < 2.4
        return device_type in ('cpu', 'cuda')
    return bool(available(device_type))


def _autocast_on(device_type: str) -> bool:
    if not _autocast_available(device_type):
        return False
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        if device_type == 'cpu':
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled()


def autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """The dtype autocast computes ``conv2d`` / ``linear`` in on
    ``device_type``, or None when autocast is off there or does not exist
    for it (``meta``, ...)."""
    if not _autocast_on(device_type):
        return None
    try:
        return torch.get_autocast_dtype(device_type)
    except AttributeError:  # torch < 2.4
        if device_type == 'cpu':
            return torch.get_autocast_cpu_dtype()
        return torch.get_autocast_gpu_dtype()


def autocast_disabled(device_type: str):
    """``torch.autocast(device_type, enabled=False)``, or a no-op context on
    a device type autocast does not support (``meta``: nothing to
    disable)."""
    if _autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _autocast_compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype autocast would compute a convolution of ``x`` in: the
    autocast dtype of its device for float32 / low-precision inputs, the
    input's own dtype otherwise (float64 is never cast)."""
    dtype = autocast_dtype(x.device.type)
    if dtype is None or x.dtype == torch.float64:
        return x.dtype
    return dtype


# --- channel projection -----------------------------------------------------


@lru_cache(maxsize=None)
def _onednn_bf16_linear() -> bool:
    """Whether oneDNN's fused linear (``mkldnn::_linear_pointwise``) runs
    bfloat16 natively on this CPU (a private operator of PyTorch's CPU
    build, used by inductor; absent or unsupported: False)."""
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and hasattr(torch.ops.mkldnn, '_linear_pointwise')
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _fused_bf16_inference(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`channel_linear` takes oneDNN's fused bfloat16 linear:
    bfloat16 autocast on the tensors' device where :func:`use_fast_path`
    allows it (CPU), float32 / bfloat16 operands (autocast leaves float64
    alone), no gradient needed."""
    low = (torch.float32, torch.bfloat16)
    return (x.dtype in low and weight.dtype in low
            and not (grad_needed(x) or grad_needed(weight))
            and autocast_dtype(x.device.type) == torch.bfloat16
            and use_fast_path('onednn_bf16_linear', x.device, torch.bfloat16)
            and _onednn_bf16_linear())


#: ``channel_linear`` activations: name -> (oneDNN post-op, algorithm, the
#: same function for every other path).
LINEAR_ACTIVATIONS = {
    'relu': ('relu', '', F.relu),
    'gelu': ('gelu', 'none', F.gelu),
    'gelu_tanh': ('gelu', 'tanh', partial(F.gelu, approximate='tanh')),
}


def channel_linear(x: torch.Tensor,
                   weight: torch.Tensor,
                   bias: Optional[torch.Tensor] = None,
                   activation: Optional[str] = None) -> torch.Tensor:
    """``act(F.linear(x, weight, bias))`` over the last (channel) dimension
    of tokens; where :func:`use_fast_path` allows:

    * ``conv1x1_linear``: a contiguous float32 map (B, H, W, C) outside
      autocast is an NCHW tensor in ``channels_last`` memory once permuted:
      it is computed as a 1x1 convolution (``weight`` viewed as (out, in, 1,
      1), no copy), which PyTorch's CPU build runs through oneDNN, as timm
      runs these layers; the output permutes back to a contiguous
      (B, H, W, out) map;
    * ``onednn_bf16_linear``: under bfloat16 autocast without gradients,
      oneDNN's fused linear: the bias and the activation are applied to the
      float32 accumulator inside the GEMM;
    * ``in_place``: the ReLU applied to the fresh output in its memory.

    Everything else is ``F.linear`` and the activation. All compute the same
    function; float32 results differ only by summation order, the fused
    bfloat16 one by rounding the activation once instead of twice.

    Args:
        x (Tensor): Tokens (..., C).
        weight (Tensor): (out, C), a ``nn.Linear`` weight.
        bias (Tensor, optional): (out, ).
        activation (str, optional): ``'relu'``, ``'gelu'`` (erf) or
            ``'gelu_tanh'`` applied to the output. Defaults to None.

    Returns:
        Tensor: (..., out).
    """
    if activation is not None and activation not in LINEAR_ACTIVATIONS:
        raise ValueError(f'Unknown activation {activation!r}; valid choices '
                         f'are {sorted(LINEAR_ACTIVATIONS)} or None.')
    post_op, algorithm, act = LINEAR_ACTIVATIONS.get(
        activation, ('none', '', None))
    if _fused_bf16_inference(x, weight):
        dtype = torch.bfloat16
        return torch.ops.mkldnn._linear_pointwise(
            x.to(dtype), weight.to(dtype),
            None if bias is None else bias.to(dtype), post_op, [], algorithm)
    if (x.dim() == 4 and x.is_contiguous()
            and autocast_dtype(x.device.type) is None
            and use_fast_path('conv1x1_linear', x.device, x.dtype)):
        out = F.conv2d(x.permute(0, 3, 1, 2), weight[:, :, None, None],
                       bias).permute(0, 2, 3, 1)
    else:
        out = F.linear(x, weight, bias)
    if activation == 'relu':
        return relu_(out)  # a fresh output nothing else holds
    return out if act is None else act(out)


# --- in-place elementwise routes --------------------------------------------


def _in_place(x: torch.Tensor) -> bool:
    return not grad_needed(x) and use_fast_path('in_place', x.device,
                                                x.dtype)


def relu_(x: torch.Tensor) -> torch.Tensor:
    """``relu(x)``, in ``x``'s memory where the ``in_place`` route runs
    (``x`` must be a fresh map nothing else holds)."""
    return F.relu_(x) if _in_place(x) else F.relu(x)


def square_(x: torch.Tensor) -> torch.Tensor:
    """``x * x``, in ``x``'s memory where the ``in_place`` route runs."""
    return x.mul_(x) if _in_place(x) else x * x


def star_relu(r: torch.Tensor, scale: torch.Tensor,
              bias: torch.Tensor) -> torch.Tensor:
    """``scale * r ** 2 + bias`` (StarReLU after its ReLU), the scalars
    applied in the dtype of ``r`` (under autocast float32 scalars would
    promote the map)."""
    return torch.addcmul(bias.to(r.dtype), r * r, scale.to(r.dtype))


def star_relu_(r: torch.Tensor, scale: torch.Tensor,
               bias: torch.Tensor) -> torch.Tensor:
    """``scale * r ** 2 + bias`` (StarReLU after its ReLU) in the dtype of
    ``r``; in ``r``'s memory, in one pass, where the ``in_place`` route runs
    and autograd needs neither ``r`` nor the scalars. That pass takes the
    scale as a Python number: a read of CPU memory, which the rule allows
    on CPU only (on a GPU it would be a device-to-host sync)."""
    if not (_in_place(r) and not grad_needed(scale)
            and not grad_needed(bias)):
        return star_relu(r, scale, bias)
    return torch.addcmul(bias.to(r.dtype), r, r, value=float(scale),
                         out=r)


# --- depthwise convolution --------------------------------------------------


class _DepthwiseConv2d(torch.autograd.Function):
    """Depthwise stride-1 convolution whose weight gradient is itself one
    depthwise convolution: that of channel c is the correlation of the
    padded input of c with the output gradient of c, i.e. a convolution of
    the padded input with the output gradient as kernel (groups = channels,
    batch folded into each group). PyTorch's CPU weight gradient of a
    depthwise convolution was 3-30x slower (bfloat16 worst, up to 80x) on
    the ConvFormer / CAFormer shapes (torch 2.13, CPU, 2-core AMD EPYC);
    never measured on a GPU, where the kernel would be the whole
    output-gradient map. The input gradient is PyTorch's own."""

    @staticmethod
    def forward(ctx, x, weight, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight, None, 1, padding, 1, x.shape[1])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        pad = ctx.padding
        channels = x.shape[1]
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [1, 1], [pad, pad], [1, 1], False,
                [0, 0], channels, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            batch = x.shape[0]
            padded = F.pad(x, (pad, pad, pad, pad))
            if batch > 1:  # channel-major groups of `batch` inputs each
                padded = padded.transpose(0, 1).reshape(
                    1, channels * batch, *padded.shape[2:])
            kernel = grad.transpose(0, 1)  # (C, B, H, W)
            grad_w = F.conv2d(padded, kernel.to(padded.dtype), None, 1, 0,
                              1, channels).view_as(weight)
        return grad_x, grad_w, None


def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor,
                     padding: int) -> torch.Tensor:
    """``F.conv2d(x, weight, padding=padding, groups=C)`` (stride 1, no
    bias), with the weight gradient of :class:`_DepthwiseConv2d` when
    autograd needs it and the ``depthwise_weight_grad`` route runs for the
    dtype the convolution computes in.

    Args:
        x (Tensor): (B, C, H, W), any memory format.
        weight (Tensor): (C, 1, k, k).
        padding (int): Zero padding on each side.

    Returns:
        Tensor: (B, C, H + 2 * padding - k + 1, ...).
    """
    device_type = x.device.type
    dtype = _autocast_compute_dtype(x)
    if not (grad_needed(weight) and use_fast_path(
            'depthwise_weight_grad', x.device, dtype)):
        return F.conv2d(x, weight, None, 1, padding, 1, x.shape[1])
    if dtype != x.dtype or dtype != weight.dtype:  # as autocast would
        x, weight = x.to(dtype), weight.to(dtype)
    with autocast_disabled(device_type):
        return _DepthwiseConv2d.apply(x, weight, padding)


# --- neighbour mean (PoolFormer) --------------------------------------------


def _avg_pool_valid(x: torch.Tensor, pool_size: int) -> torch.Tensor:
    """Stride-1 mean of the valid neighbours (``count_include_pad=False``)."""
    return F.avg_pool2d(x, pool_size, 1, pool_size // 2,
                        count_include_pad=False)


class _NeighbourMean(torch.autograd.Function):
    """``avg_pool2d(x, k, 1, k // 2, count_include_pad=False)`` whose
    gradient is itself one pooling: each output is the mean of the ``c_i``
    valid neighbours of pixel i, and for a centred odd window j is in the
    window of i exactly when i is in the window of j, so ``dx[j] = sum over
    the window of j of g[i] / c_i``: a sum pooling of ``g / c`` (zero
    padding). PyTorch's CPU ``avg_pool2d_backward`` in bfloat16 was 4.6x
    slower than this on PoolFormer's stage-1 maps (channels last, 128 x 128
    x 64; torch 2.13, CPU, 2-core AMD EPYC) and 2.6x less accurate; the
    gradient is computed in float32 and rounded once."""

    @staticmethod
    def forward(ctx, x, pool_size):
        ctx.pool_size = pool_size
        return _avg_pool_valid(x, pool_size)

    @staticmethod
    def backward(ctx, grad):
        k = ctx.pool_size
        dtype = torch.promote_types(grad.dtype, torch.float32)
        count = F.avg_pool2d(
            grad.new_ones((1, 1, *grad.shape[2:]), dtype=dtype), k, 1,
            k // 2, divisor_override=1)
        summed = F.avg_pool2d(grad.to(dtype) / count, k, 1, k // 2,
                              divisor_override=1)
        return summed.to(grad.dtype), None


def neighbour_mean(x: torch.Tensor, pool_size: int) -> torch.Tensor:
    """``F.avg_pool2d(x, pool_size, 1, pool_size // 2,
    count_include_pad=False)`` (odd ``pool_size``), with the gradient of
    :class:`_NeighbourMean` when autograd needs one and the
    ``neighbour_mean_grad`` route runs (bfloat16 on CPU).

    Args:
        x (Tensor): (B, C, H, W), any memory format.
        pool_size (int): Odd window side.

    Returns:
        Tensor: Same shape as ``x``.
    """
    if grad_needed(x) and use_fast_path('neighbour_mean_grad', x.device,
                                        x.dtype):
        return _NeighbourMean.apply(x, pool_size)
    return _avg_pool_valid(x, pool_size)
