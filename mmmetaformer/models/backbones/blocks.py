"""The MetaFormer block and stage, on channels-last tokens (B, H, W, C)."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp

from ..layers import DropPath, Scale


class MetaFormerBlock(nn.Module):
    """One MetaFormer block on channels-last tokens.

    Args:
        dim (int): Channels.
        token_mixer (nn.Module): Maps (B, H, W, C) to the same shape.
        mlp (nn.Module): Channel MLP on (B, H, W, C).
        norm1 (nn.Module): Norm before the token mixer.
        norm2 (nn.Module): Norm before the MLP.
        drop_path (float): Stochastic depth rate of both branches.
        layer_scale_init_value (float, optional): If set, each branch is
            multiplied by a learnable per-channel scale (``layer_scale1/2``).
        res_scale_init_value (float, optional): If set, each shortcut is
            multiplied by a learnable per-channel scale (``res_scale1/2``).
    """

    def __init__(self,
                 dim: int,
                 token_mixer: nn.Module,
                 mlp: nn.Module,
                 norm1: nn.Module,
                 norm2: nn.Module,
                 drop_path: float = 0.0,
                 layer_scale_init_value: Optional[float] = None,
                 res_scale_init_value: Optional[float] = None) -> None:
        super().__init__()

        def scale(value):
            return nn.Identity() if value is None else Scale(dim, value)

        self.norm1 = norm1
        self.token_mixer = token_mixer
        self.layer_scale1 = scale(layer_scale_init_value)
        self.res_scale1 = scale(res_scale_init_value)
        self.norm2 = norm2
        self.mlp = mlp
        self.layer_scale2 = scale(layer_scale_init_value)
        self.res_scale2 = scale(res_scale_init_value)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res_scale1(x) + self.drop_path(
            self.layer_scale1(self.token_mixer(self.norm1(x))))
        x = self.res_scale2(x) + self.drop_path(
            self.layer_scale2(self.mlp(self.norm2(x))))
        return x


class MetaFormerStage(nn.Module):
    """A downsampler followed by a sequence of blocks.

    Args:
        downsample (nn.Module): ``nn.Identity`` for the first stage.
        blocks (Sequence[nn.Module]): The blocks.
        with_cp (bool): Gradient checkpointing of every block during
            training (with gradients enabled). Defaults to False.
    """

    def __init__(self,
                 downsample: nn.Module,
                 blocks: Sequence[nn.Module],
                 with_cp: bool = False) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_blocks(self.downsample(x))

    def run_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """The blocks on ``x``, each checkpointed with ``with_cp`` during
        training (with gradients enabled)."""
        use_cp = self.with_cp and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            if use_cp:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x
