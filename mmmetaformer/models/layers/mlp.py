"""Channel MLP and the activations used by the MetaFormer families.

Also the two helpers the channel mixing layers share for speed:
:func:`channel_linear` (the channel projection of channels-last tokens,
through oneDNN's convolution on CPU float32) and :func:`grad_needed` (whether
an intermediate tensor may be overwritten in place).
"""
from functools import lru_cache, partial
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        if device_type == 'cpu':
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled()


def autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """The dtype autocast computes ``conv2d`` / ``linear`` in on
    ``device_type``, or None when autocast is off there."""
    if not _autocast_on(device_type):
        return None
    try:
        return torch.get_autocast_dtype(device_type)
    except AttributeError:  # torch < 2.4
        if device_type == 'cpu':
            return torch.get_autocast_cpu_dtype()
        return torch.get_autocast_gpu_dtype()


def _tracing() -> bool:
    """Whether the forward is being traced or compiled (ONNX export, FLOP
    counting, TorchScript, ``torch.compile``): those see plain operators."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    compiler = getattr(torch, 'compiler', None)
    is_compiling = getattr(compiler, 'is_compiling', None)
    return bool(is_compiling and is_compiling())


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
    CPU, bfloat16 autocast, float32 / bfloat16 operands (autocast leaves
    float64 alone), no gradient needed, not traced."""
    low = (torch.float32, torch.bfloat16)
    return (x.device.type == 'cpu' and x.dtype in low
            and weight.dtype in low
            and not (torch.is_grad_enabled() and
                     (x.requires_grad or weight.requires_grad))
            and autocast_dtype('cpu') == torch.bfloat16
            and not _tracing() and _onednn_bf16_linear())


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
    of tokens, by the fastest exact route for the case:

    * a contiguous float32 CPU map (B, H, W, C) outside autocast is an NCHW
      tensor in ``channels_last`` memory once permuted: it is computed as a
      1x1 convolution (``weight`` viewed as (out, in, 1, 1), no copy), which
      PyTorch runs through oneDNN, as timm runs these layers; the output
      permutes back to a contiguous (B, H, W, out) map;
    * under CPU bfloat16 autocast without gradients (inference, frozen
      layers), oneDNN's fused linear: the bias and the activation are
      applied to the float32 accumulator inside the GEMM (autocast's
      ``F.linear`` copies the bias into the output first and runs the
      activation as a further pass over the bfloat16 result);
    * everything else (float64, training under autocast, GPU, 3-D tokens,
      tracing / ``torch.compile``) is ``F.linear`` and the activation.

    All compute the same function; float32 results differ only by summation
    order, the fused bfloat16 one by rounding the activation once instead
    of twice.

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
    if (x.dim() == 4 and x.dtype == torch.float32 and x.device.type == 'cpu'
            and x.is_contiguous() and not _autocast_on('cpu')):
        out = F.conv2d(x.permute(0, 3, 1, 2), weight[:, :, None, None],
                       bias).permute(0, 2, 3, 1)
    else:
        out = F.linear(x, weight, bias)
    if activation == 'relu' and not grad_needed(out):
        return F.relu_(out)  # a fresh output nothing else holds
    return out if act is None else act(out)


def grad_needed(x: torch.Tensor) -> bool:
    """Whether autograd may need ``x``: if not (inference, ``no_grad``), an
    intermediate tensor that nothing else holds can be updated in place."""
    return torch.is_grad_enabled() and x.requires_grad


class StarReLU(nn.Module):
    """StarReLU: ``scale * relu(x) ** 2 + bias`` with learnable scalars.

    The scalars are applied in the input's dtype (under bfloat16 autocast the
    map stays bfloat16 instead of being promoted to float32 by the float32
    parameters).

    Args:
        scale_value (float): Initial scale. Defaults to 1.0.
        bias_value (float): Initial bias. Defaults to 0.0.
    """

    def __init__(self, scale_value: float = 1.0,
                 bias_value: float = 0.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1, ), float(scale_value)))
        self.bias = nn.Parameter(torch.full((1, ), float(bias_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.square_relu_output(F.relu(x))

    def square_relu_output(self, r: torch.Tensor) -> torch.Tensor:
        """``scale * r ** 2 + bias`` for a map ``r`` that is already
        ``relu(x)`` (e.g. the output of a projection with a fused ReLU)."""
        return torch.addcmul(
            self.bias.to(r.dtype), r * r, self.scale.to(r.dtype))

    def forward_(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` computed in ``x``'s memory (``x`` is overwritten
        and returned) for an intermediate map nothing else holds, when no
        gradient is needed (see :func:`grad_needed`; otherwise out of
        place)."""
        return self.square_relu_output_(F.relu_(x))

    def square_relu_output_(self, r: torch.Tensor) -> torch.Tensor:
        """:meth:`square_relu_output` in ``r``'s memory, in one pass, for a
        map that nothing else holds. Where autograd needs ``r`` or the
        scalars (or while tracing: no Python number is taken from a
        parameter) it is :meth:`square_relu_output`, out of place."""
        if _tracing() or (torch.is_grad_enabled() and any(
                t.requires_grad for t in (r, self.scale, self.bias))):
            return self.square_relu_output(r)
        return torch.addcmul(self.bias.to(r.dtype), r, r,
                             value=float(self.scale), out=r)


# 'GELUTanh': the tanh approximation, JAX's default (official MLP-Mixer).
ACTIVATIONS = {'GELU': nn.GELU, 'StarReLU': StarReLU, 'ReLU': nn.ReLU,
               'GELUTanh': partial(nn.GELU, approximate='tanh')}


def build_activation(name: str) -> nn.Module:
    """Build an activation by name (``'GELU'``, ``'GELUTanh'``,
    ``'StarReLU'``, ``'ReLU'``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f'Unknown activation {name!r}; valid choices are '
                         f'{sorted(ACTIVATIONS)}.')
    return ACTIVATIONS[name]()


def _fused_name(act: nn.Module) -> Optional[str]:
    """The :func:`channel_linear` activation computing ``act``, if any."""
    if isinstance(act, nn.ReLU):
        return 'relu'
    if isinstance(act, nn.GELU):
        return {'none': 'gelu', 'tanh': 'gelu_tanh'}[act.approximate]
    return None


class Mlp(nn.Module):
    """Two-layer channel MLP on channels-last tensors: fc1 -> act -> fc2.

    The projections go through :func:`channel_linear`. With ``StarReLU`` the
    activation's scalars are applied after ``fc2``, on the ``out_dim``
    outputs instead of the ``hidden_dim`` hidden values (``fc2(s * r + b) =
    s * fc2(r) + b * fc2.weight.sum(1)``, with ``r = relu(fc1(x)) ** 2``):
    the same function and parameters, two passes fewer over the widest
    tensor. ReLU, GELU and StarReLU's ReLU are computed by ``fc1``'s
    :func:`channel_linear` (fused into the GEMM where it can be); such an
    ``act`` is not called as a module (no forward hooks on it).

    Args:
        dim (int): Input and output channels.
        hidden_dim (int): Hidden channels.
        act (str): Activation name, see :func:`build_activation`.
        bias (bool): Whether the linear layers have biases.
        out_dim (int, optional): Output channels. Defaults to ``dim``.
    """

    def __init__(self, dim: int, hidden_dim: int, act: str = 'GELU',
                 bias: bool = True, out_dim: Optional[int] = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.act = build_activation(act)
        self.fc2 = nn.Linear(hidden_dim, out_dim or dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.act
        if not isinstance(act, StarReLU):
            fused = _fused_name(act)
            hidden = channel_linear(x, self.fc1.weight, self.fc1.bias, fused)
            if fused is None:
                hidden = act(hidden)
            return channel_linear(hidden, self.fc2.weight, self.fc2.bias)
        hidden = channel_linear(x, self.fc1.weight, self.fc1.bias, 'relu')
        if grad_needed(hidden):
            hidden = hidden * hidden
        else:  # the fresh fc1 output is overwritten in place
            hidden.mul_(hidden)
        out = channel_linear(hidden, self.fc2.weight)
        shift = act.bias * self.fc2.weight.sum(1)
        if self.fc2.bias is not None:
            shift = shift + self.fc2.bias
        return torch.addcmul(
            shift.to(out.dtype), out, act.scale.to(out.dtype))
