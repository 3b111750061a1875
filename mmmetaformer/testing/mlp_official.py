"""Functional transcriptions of the official MLP-Mixer (Flax,
``vit_jax/models_mixer.py``) and ResMLP (deit ``resmlp_models.py``)
networks, written from ``shared/spec/pit_mixer_resmlp.md``, for tests.

They follow the official formulation literally: tokens (B, N, C) flattened
row-major from the patch grid, the token-mixing layer applied to the
(B, C, N) transpose over the *whole* sequence, so -- like the official code
-- they only run when the token count equals the trained one (224 x 224).
:func:`run_on_tiles` applies one to each 224 x 224 tile of a larger image
and stitches the maps, which is what the windowed dense backbones must
equal at multiples of 224. Weights are official-key state_dicts (ResMLP:
deit names; Mixer: timm-style names, i.e. the Flax parameters transposed as
in the reference data's ``flax_param_map``). Not part of the package's API.
"""
from typing import Callable, Dict, Tuple

import torch
import torch.nn.functional as F

Maps = Tuple[torch.Tensor, torch.Tensor]


def _tokens(state_dict, stem: str, x: torch.Tensor, num_tokens: int
            ) -> torch.Tensor:
    weight = state_dict[f'{stem}.weight']
    patch = weight.shape[-1]
    x = F.conv2d(x, weight, state_dict[f'{stem}.bias'], stride=patch)
    tokens = x.flatten(2).transpose(1, 2)  # (B, N, C), row-major
    if tokens.shape[1] != num_tokens:
        raise ValueError(f'The official network takes {num_tokens} tokens, '
                         f'got {tokens.shape[1]} (input {tuple(x.shape)}).')
    return tokens


def _as_map(tokens: torch.Tensor) -> torch.Tensor:
    B, N, C = tokens.shape
    side = int(round(N**0.5))
    return tokens.transpose(1, 2).reshape(B, C, side, side)


def resmlp_official(state_dict: Dict[str, torch.Tensor],
                    x: torch.Tensor) -> Maps:
    """Official ResMLP trunk: (tokens after the last block, after ``norm``)
    as NCHW maps (``(B, N, C).transpose(1, 2).reshape(B, C, h, w)``)."""
    num_tokens = state_dict['blocks.0.attn.weight'].shape[0]
    x = _tokens(state_dict, 'patch_embed.proj', x, num_tokens)
    depth = 1 + max(int(k.split('.')[1]) for k in state_dict
                    if k.startswith('blocks.'))

    def affine(name, t):
        return state_dict[f'{name}.alpha'] * t + state_dict[f'{name}.beta']

    for i in range(depth):
        p = f'blocks.{i}.'
        y = affine(p + 'norm1', x).transpose(1, 2)  # (B, C, N)
        y = F.linear(y, state_dict[p + 'attn.weight'],
                     state_dict[p + 'attn.bias']).transpose(1, 2)
        x = x + state_dict[p + 'gamma_1'] * y
        y = affine(p + 'norm2', x)
        y = F.linear(
            F.gelu(
                F.linear(y, state_dict[p + 'mlp.fc1.weight'],
                         state_dict[p + 'mlp.fc1.bias'])),
            state_dict[p + 'mlp.fc2.weight'], state_dict[p + 'mlp.fc2.bias'])
        x = x + state_dict[p + 'gamma_2'] * y
    return _as_map(x), _as_map(affine('norm', x))


def mixer_official(state_dict: Dict[str, torch.Tensor],
                   x: torch.Tensor) -> Maps:
    """Official (Flax) MLP-Mixer trunk: (output of the last ``MixerBlock``,
    output of ``pre_head_layer_norm``) as NCHW maps. LayerNorm eps 1e-6
    with ``var = E[x^2] - E[x]^2`` (flax's fast variance), GELU with the
    tanh approximation (``jax.nn.gelu``'s default)."""
    num_tokens = state_dict['blocks.0.mlp_tokens.fc2.weight'].shape[0]
    x = _tokens(state_dict, 'stem.proj', x, num_tokens)
    depth = 1 + max(int(k.split('.')[1]) for k in state_dict
                    if k.startswith('blocks.'))

    def layer_norm(name, t):
        mean = t.mean(-1, keepdim=True)
        var = (t * t).mean(-1, keepdim=True) - mean * mean
        t = (t - mean) * torch.rsqrt(var + 1e-6)
        return t * state_dict[f'{name}.weight'] + state_dict[f'{name}.bias']

    def mlp(name, t):
        t = F.linear(t, state_dict[f'{name}.fc1.weight'],
                     state_dict[f'{name}.fc1.bias'])
        return F.linear(
            F.gelu(t, approximate='tanh'), state_dict[f'{name}.fc2.weight'],
            state_dict[f'{name}.fc2.bias'])

    for i in range(depth):
        p = f'blocks.{i}.'
        y = layer_norm(p + 'norm1', x).transpose(1, 2)  # (B, C, N)
        x = x + mlp(p + 'mlp_tokens', y).transpose(1, 2)
        x = x + mlp(p + 'mlp_channels', layer_norm(p + 'norm2', x))
    return _as_map(x), _as_map(layer_norm('norm', x))


def run_on_tiles(network: Callable[[Dict[str, torch.Tensor], torch.Tensor],
                                   Maps],
                 state_dict: Dict[str, torch.Tensor], x: torch.Tensor,
                 tile: int = 224) -> Maps:
    """Run ``network`` on each ``tile x tile`` crop of ``x`` (H, W multiples
    of ``tile``) and stitch its output maps in the same layout."""
    H, W = x.shape[2:]
    if H % tile or W % tile:
        raise ValueError(f'H and W must be multiples of {tile}, got {H}x{W}.')
    rows = []
    for top in range(0, H, tile):
        row = [
            network(state_dict, x[:, :, top:top + tile, left:left + tile])
            for left in range(0, W, tile)
        ]
        rows.append([torch.cat(maps, dim=3) for maps in zip(*row)])
    return tuple(torch.cat(maps, dim=2) for maps in zip(*rows))
