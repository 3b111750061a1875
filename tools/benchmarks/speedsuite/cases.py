"""The speed suite's cases, modes, precisions and input sizes."""
import argparse
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Case:
    """One backbone of this package and its peer.

    Attributes:
        name (str): Case name (``--cases``).
        ours (str): Registered backbone name.
        arch (str): Arch of ours.
        peer (str | None): Peer spec for :func:`peers.build_case_models`.
        peer_label (str): How the peer is named in tables.
        kwargs (dict): Constructor arguments of ours (``out_norm=None`` where
            the peer returns the raw stage outputs).
    """
    name: str
    ours: str
    arch: str
    peer: Optional[str]
    peer_label: str
    kwargs: dict = field(default_factory=dict)


_RAW = dict(out_norm=None)
_YARDSTICK = 'model:CAFormer:s18'
CASES = [
    Case('poolformer_s12', 'PoolFormer', 's12', 'timm:poolformer_s12', 'timm',
         _RAW),
    Case('poolformerv2_s12', 'PoolFormerV2', 's12', 'timm:poolformerv2_s12',
         'timm', _RAW),
    Case('convformer_s18', 'ConvFormer', 's18', 'timm:convformer_s18', 'timm',
         _RAW),
    Case('caformer_s18', 'CAFormer', 's18', 'timm:caformer_s18', 'timm',
         _RAW),
    Case('identityformer_s12', 'IdentityFormer', 's12', None, '-', _RAW),
    Case('randformer_s12', 'RandFormer', 's12', None, '-', _RAW),
    Case('rest_lite', 'ResT', 'lite', 'rest_official', 'official'),
    Case('restv2_tiny', 'ResTV2', 'tiny', 'rest_official', 'official'),
    Case('cyclemlp_b1', 'CycleMLP', 'b1', 'mmcv_deform', 'mmcv deform'),
    Case('pit_s', 'PiT', 's', _YARDSTICK, 'CAFormer-S18'),
    Case('mlpmixer_b16', 'MLPMixer', 'b16', _YARDSTICK, 'CAFormer-S18'),
    Case('resmlp_s12', 'ResMLP', 's12', _YARDSTICK, 'CAFormer-S18'),
]
CASE_NAMES = [c.name for c in CASES]
MODES = ('infer', 'train')
PRECISIONS = ('fp32', 'bf16', 'fp16')
#: The suite's default: float16 autocast is CUDA's AMP (``gpu_check.py``).
DEFAULT_PRECISIONS = ('fp32', 'bf16')


def select_cases(names: Optional[Sequence[str]]) -> List[Case]:
    """The cases named (all when None), in suite order.

    Raises:
        ValueError: An unknown name, with the valid ones.
    """
    if not names:
        return list(CASES)
    unknown = [n for n in names if n not in CASE_NAMES]
    if unknown:
        raise ValueError(f'Unknown case(s) {unknown}; valid choices are '
                         f'{CASE_NAMES}.')
    return [c for c in CASES if c.name in names]


def parse_size(text: str) -> Tuple[int, int]:
    """``'512x512'`` or ``'512'`` -> (H, W)."""
    parts = text.lower().split('x')
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 32:
        raise argparse.ArgumentTypeError(
            f'a size is HxW (or S for SxS) with H, W >= 32, got {text!r}')
    return values[0], values[1]


def size_label(size: Sequence[int]) -> str:
    """(H, W) -> ``'HxW'``."""
    return f'{size[0]}x{size[1]}'
