"""Numerical parity with the official implementations.

Implements the ``splitmix64-crc32-v1.1`` weight-filling rule (v1 plus three
rows for ResMLP's ``alpha``/``beta``/``gamma_*``; equal to v1 on every key v1
covers) and the input rule
of the parity data in ``tests/data/reference`` (a copy of the workplace's
``shared/reference``; see its README), and the
acceptance check of an output map against a stored reference. Written from
the rule's description.
"""
import json
import math
import os
import os.path as osp
import zlib
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

FILL_RULE_VERSION = 'splitmix64-crc32-v1.1'
#: Rule versions whose files :func:`fill_tensor` reproduces (v1.1 extends v1).
SUPPORTED_FILL_RULES = ('splitmix64-crc32-v1', 'splitmix64-crc32-v1.1')
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def reference_dir() -> Optional[str]:
    """``$MMMETAFORMER_REFERENCE``, else the repository's copy of the parity
    data (``tests/data/reference``); None if neither exists (an installed
    package without its repository)."""
    env = os.environ.get('MMMETAFORMER_REFERENCE')
    if env:
        return env
    here = osp.dirname(osp.abspath(__file__))
    repo = osp.dirname(osp.dirname(here))
    candidate = osp.join(repo, 'tests', 'data', 'reference')
    return candidate if osp.isdir(candidate) else None


def uniform_stream(name: str, n: int) -> np.ndarray:
    """``u_i`` in [0, 1) for i < n, seeded by the crc32 of ``name``."""
    seed = np.uint64(zlib.crc32(name.encode('utf-8')) & 0xFFFFFFFF)
    with np.errstate(over='ignore'):
        z = (seed << np.uint64(32)) + np.arange(n, dtype=np.uint64)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def cyclefc_offset(key: str, shape: Sequence[int]) -> torch.Tensor:
    """The official constant CycleFC offsets, shape (1, 2C, 1, 1)."""
    channels = shape[1] // 2
    offset = torch.zeros(tuple(shape), dtype=torch.float64)
    for i in range(channels):
        s = (i + 1) % 3 - 1
        if key.endswith('sfc_h.offset'):
            offset[0, 2 * i + 1] = s
        elif key.endswith('sfc_w.offset'):
            offset[0, 2 * i] = s
        else:
            raise KeyError(f'Unknown offset key {key!r}.')
    return offset


def fill_tensor(key: str, shape: Sequence[int]) -> torch.Tensor:
    """The value of state_dict entry ``key`` of ``shape`` under the rule."""
    shape = tuple(int(s) for s in shape)
    leaf = key.split('.')[-1]
    if leaf == 'num_batches_tracked':
        return torch.zeros(shape, dtype=torch.int64)
    if leaf == 'offset':
        return cyclefc_offset(key, shape)
    n = math.prod(shape)
    v = 2.0 * uniform_stream(key, n) - 1.0
    if leaf == 'running_mean':
        v = 0.1 * v
    elif leaf == 'running_var':
        v = 1.0 + 0.2 * v
    elif 'layer_scale' in key:
        v = 0.1 + 0.05 * v
    elif 'res_scale' in key:
        v = 1.0 + 0.1 * v
    elif leaf == 'alpha':  # v1.1 row 6a: ResMLP Affine scale
        v = 1.0 + 0.1 * v
    elif leaf == 'beta':  # v1.1 row 6b: ResMLP Affine shift
        v = 0.05 * v
    elif leaf.startswith('gamma_'):  # v1.1 row 6c: ResMLP layer scale
        v = 0.1 + 0.05 * v
    elif len(shape) >= 2:
        v = v * math.sqrt(3.0 / math.prod(shape[1:]))
    elif leaf in ('weight', 'scale'):
        v = 1.0 + 0.1 * v
    elif leaf == 'bias':
        v = 0.05 * v
    else:
        raise KeyError(f'The fill rule does not cover {key!r}.')
    return torch.from_numpy(v.reshape(shape))


def make_input(name: str, shape: Sequence[int]) -> torch.Tensor:
    """The reference input ``name``: ``2 * u - 1`` in float64."""
    n = math.prod(shape)
    return torch.from_numpy(
        (2.0 * uniform_stream(name, n) - 1.0).reshape(tuple(shape)))


def load_keys(variant: str, ref_dir: Optional[str] = None) -> dict:
    """The ``<variant>.keys.json`` record."""
    ref_dir = ref_dir or reference_dir()
    with open(osp.join(ref_dir, f'{variant}.keys.json')) as f:
        return json.load(f)


def load_reference(variant: str, ref_dir: Optional[str] = None) -> dict:
    """The ``<variant>.ref.pt`` record (read with ``weights_only=True``)."""
    ref_dir = ref_dir or reference_dir()
    return torch.load(
        osp.join(ref_dir, f'{variant}.ref.pt'), weights_only=True)


def filled_state_dict(entries: Sequence) -> Dict[str, torch.Tensor]:
    """Fill ``[key, shape, dtype]`` entries (a ``keys.json`` list)."""
    return {key: fill_tensor(key, shape) for key, shape, _ in entries}


def pipeline_state_dict(record: dict) -> Dict[str, torch.Tensor]:
    """The official-format checkpoint of a whole-pipeline reference
    (``tests/data/pipelines/<name>.keys.json``): every key filled by the
    rule, times its factor in ``scaled_keys``, in its stored dtype."""
    if record['fill_rule'] not in SUPPORTED_FILL_RULES:
        raise ValueError(f'fill_rule {record["fill_rule"]!r} is not one of '
                         f'{SUPPORTED_FILL_RULES}')
    state_dict = {}
    for key, shape, dtype in record['keys']:
        value = record['scaled_keys'].get(key, 1.0) * fill_tensor(key, shape)
        state_dict[key] = value.to(getattr(torch, dtype.split('.')[-1]))
    return state_dict


def official_dense_state_dict(variant: str,
                              ref_dir: Optional[str] = None,
                              with_imagenet_only: bool = False) -> dict:
    """The filled official state_dict of the dense backbone of ``variant``.

    With ``with_imagenet_only`` the ImageNet-only keys (the classifier) are
    added too, as an official ImageNet file plus dense norms would have them.
    """
    record = load_keys(variant, ref_dir)
    state_dict = filled_state_dict(record['keys'])
    if with_imagenet_only:
        extra = {k for k in record['imagenet_only_keys']}
        state_dict.update(
            filled_state_dict([
                e for e in record['imagenet_checkpoint_keys'] if e[0] in extra
            ]))
    return state_dict


def compare_output(out: torch.Tensor, ref: dict) -> Dict[str, float]:
    """Errors of one output map against its reference dict.

    Returns:
        dict: ``sum_err`` (relative, per the acceptance criterion),
        ``sumsq_err`` (relative), ``slice_err`` (max absolute over both
        slices), and ``shape_ok``.
    """
    out = out.detach().to(torch.float64)
    shape_ok = list(out.shape) == list(ref['shape'])
    if not shape_ok:
        return dict(shape_ok=False, sum_err=math.inf, sumsq_err=math.inf,
                    slice_err=math.inf)
    total = out.sum().item()
    sum_err = abs(total - ref['sum']) / (abs(ref['sum']) +
                                         out.abs().sum().item())
    sumsq_err = abs(out.square().sum().item() / ref['sumsq'] - 1.0)
    first = out[0, 0:4, 0:2, 0:3]
    last = out[-1, -4:, -2:, -3:]
    slice_err = max((first - ref['slice_first']).abs().max().item(),
                    (last - ref['slice_last']).abs().max().item())
    return dict(shape_ok=True, sum_err=sum_err, sumsq_err=sumsq_err,
                slice_err=slice_err)


def parity_errors(model: torch.nn.Module, reference: dict,
                  inputs: Optional[Sequence[str]] = None,
                  ref_outputs: Optional[Sequence[int]] = None) -> List[dict]:
    """Run ``model`` (float64, eval) on the stored inputs and compare.

    Args:
        model (nn.Module): Returns a tuple of NCHW maps.
        reference (dict): A ``<variant>.ref.pt`` record.
        inputs (Sequence[str], optional): Names of the stored inputs to run
            (default: all).
        ref_outputs (Sequence[int], optional): Indices of the reference
            outputs that the model's outputs are compared with, in order
            (default: all). E.g. ``[1]`` for a model returning only the
            post-norm tap of the MLP-Mixer / ResMLP references.

    Returns:
        list[dict]: One :func:`compare_output` dict per input and output map,
        with ``input`` and ``stride`` (and ``tap`` where the reference names
        it) added.
    """
    model = model.double().eval()
    results = []
    for spec in reference['inputs']:
        if inputs is not None and spec['name'] not in inputs:
            continue
        x = make_input(spec['name'], spec['shape'])
        if abs(x.sum().item() - spec['sum']) > 1e-9 * abs(spec['sum']) + 1e-9:
            raise AssertionError(f'input rule mismatch for {spec["name"]}')
        with torch.no_grad():
            outs = model(x)
        refs = reference['outputs'][spec['name']]
        if ref_outputs is not None:
            refs = [refs[i] for i in ref_outputs]
        if len(outs) != len(refs):
            raise AssertionError(f'{len(outs)} outputs, reference has '
                                 f'{len(refs)}')
        for out, ref in zip(outs, refs):
            err = compare_output(out, ref)
            err.update(input=spec['name'], stride=ref['stride'])
            if 'tap' in ref:
                err['tap'] = ref['tap']
            results.append(err)
    return results


def worst_error(results: Sequence[dict]) -> float:
    """The largest of all sum/sumsq/slice errors (inf on a shape mismatch)."""
    return max(
        max(r['sum_err'], r['sumsq_err'], r['slice_err']) for r in results)


#: The reference variants: backbone class name, arch, constructor arguments
#: that match the reference's output convention, and the container the
#: official ImageNet release wraps its state_dict in. A *list* of argument
#: dicts means one model per reference output (MLP-Mixer / ResMLP: [0] the
#: pre-norm tap, [1] the post-norm tap), compared with ``ref_outputs=[i]``.
_SINGLE_MAP_TAPS = [
    dict(simple_fpn=False, out_indices=2, out_norm=None),  # pre-norm
    dict(simple_fpn=False, out_indices=2, out_norm='default'),  # post-norm
]
REFERENCE_VARIANTS = {
    'poolformer_s12': ('PoolFormer', 's12', {}, None),
    'poolformer_m36': ('PoolFormer', 'm36', {}, None),
    'poolformerv2_s12': ('PoolFormerV2', 's12', dict(out_norm=None), None),
    'identityformer_s12': ('IdentityFormer', 's12', dict(out_norm=None),
                           None),
    'randformer_s12': ('RandFormer', 's12', dict(out_norm=None), None),
    'convformer_s18': ('ConvFormer', 's18', dict(out_norm=None), None),
    'caformer_s18': ('CAFormer', 's18', dict(out_norm=None), None),
    'caformer_m36': ('CAFormer', 'm36', dict(out_norm=None), None),
    'rest_lite': ('ResT', 'lite', {}, 'model'),
    'rest_small': ('ResT', 'small', {}, 'model'),
    'restv2_tiny': ('ResTV2', 'tiny', {}, 'model'),
    'CycleMLP_B1': ('CycleMLP', 'b1', {}, 'model'),
    'CycleMLP_B2': ('CycleMLP', 'b2', {}, 'model'),
    'pit_s': ('PiT', 's', dict(out_indices=(1, 2, 3), out_norm=None), None),
    'pit_ti': ('PiT', 'ti', dict(out_indices=(1, 2, 3), out_norm=None),
               None),
    'resmlp_12': ('ResMLP', 's12', _SINGLE_MAP_TAPS, None),
    'resmlp_24': ('ResMLP', 's24', _SINGLE_MAP_TAPS, None),
    'mixer_b16': ('MLPMixer', 'b16', _SINGLE_MAP_TAPS, None),
}
