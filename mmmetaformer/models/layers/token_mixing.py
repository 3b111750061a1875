"""Token-mixing layers of the MLP-Mixer / ResMLP families."""
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .mlp import Mlp


class Affine(nn.Module):
    """ResMLP's "norm": ``alpha * x + beta`` per channel, no statistics.

    Args:
        dim (int): Channels (the last dimension).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in the input's dtype (under autocast: bf16 in, bf16 out)
        return self.alpha.to(x.dtype) * x + self.beta.to(x.dtype)

    def extra_repr(self) -> str:
        return f'{self.alpha.numel()}'


def window_tokens(window: int) -> int:
    """Tokens in a ``window x window`` window; ``window`` is checked.

    Raises:
        ValueError: If ``window`` is not a positive int.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f'window must be a positive int, got {window!r}.')
    return window * window


def mix_in_windows(
        x: torch.Tensor, window: int,
        mix: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Apply ``mix`` to the row-major token vectors of every channel in each
    non-overlapping ``window x window`` window of a channels-last map.

    The map (B, H, W, C) is zero-padded at the bottom/right to whole windows
    (no branch on the size: zero pads on whole windows, so a traced export
    with dynamic H, W stays correct at every size), split into windows,
    ``mix`` maps (..., window**2) -> (..., window**2) (the tokens of one
    channel of one window, row-major), and the result is merged and cropped
    back to (B, H, W, C).

    Args:
        x (Tensor): (B, H, W, C).
        window (int): Window side.
        mix (callable): Acts on the last dimension.

    Returns:
        Tensor: (B, H, W, C), contiguous.
    """
    B, H, W, C = x.shape
    s = window
    x = F.pad(x, (0, 0, 0, -W % s, 0, -H % s))
    nh, nw = x.shape[1] // s, x.shape[2] // s
    # (B, nh, s, nw, s, C) -> (B, nh, nw, C, s * s): tokens last
    windows = x.reshape(B, nh, s, nw, s, C).permute(0, 1, 3, 5, 2, 4)
    out = mix(windows.reshape(B, nh, nw, C, s * s))
    out = out.reshape(B, nh, nw, C, s, s).permute(0, 1, 4, 2, 5, 3)
    return out.reshape(B, nh * s, nw * s, C)[:, :H, :W].contiguous()


class WindowTokenMixing(nn.Module):
    """A token-mixing MLP (or linear layer) applied in non-overlapping
    ``window x window`` windows of a channels-last map (B, H, W, C).

    Inside a window the tokens are flattened row-major into a sequence of
    ``N = window**2`` and every channel is mixed across them independently:
    ``out[:, c] = mix(in[:, c])`` with ``mix`` a Linear(N, N) (ResMLP) or
    ``Linear(N, hidden) -> act -> Linear(hidden, N)`` (MLP-Mixer). This is
    the official MLP-Mixer / ResMLP token mixing when the map is exactly one
    window (the 14 x 14 grid of a 224 x 224 image). Other sizes are tiled
    from the top-left corner; the map is zero-padded at the bottom and right
    to whole windows (the input is the *normalised* tokens, so padding adds
    zeros after the norm) and the result cropped back. At multiples of the
    window the network is therefore the official one applied to each tile.

    Args:
        window (int): Window side.
        hidden_dim (int, optional): Hidden width of the token MLP; None: a
            single Linear(N, N) (ResMLP). Defaults to None.
        act (str): Activation of the token MLP (see
            :func:`~mmmetaformer.models.layers.build_activation`).
    """

    def __init__(self, window: int, hidden_dim: Optional[int] = None,
                 act: str = 'GELU') -> None:
        super().__init__()
        num_tokens = window_tokens(window)
        self.window = window
        if hidden_dim is None:
            self.mix = nn.Linear(num_tokens, num_tokens)
        else:
            self.mix = Mlp(num_tokens, hidden_dim, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mix_in_windows(x, self.window, self.mix)

    def extra_repr(self) -> str:
        return f'window={self.window}'
