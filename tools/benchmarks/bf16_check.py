"""bfloat16 autocast check of every family at detection size, on the parity
weights.

For one reference variant per family (``--variants``, default
``DEFAULT_VARIANTS``), builds the backbone with the official state_dict
filled by the parity rule (``mmmetaformer.testing.parity``, real-scale
weights), runs one ``--size`` input (default 800x1333, uniform in [-1, 1))
in float32 and under ``torch.autocast(<device>, dtype=torch.bfloat16)``, and
prints per output map: the relative L2 error ``||bf16 - fp32|| / ||fp32||``,
whether it is finite and its dtype, and the *float32 sensitivity* ``S`` of
the same network on the same input: the error of float32 against float64 in
units of float32's roundoff (2^-24), i.e. how much this network, with these
weights, amplifies rounding. bfloat16's roundoff is 2^-9, so a correct bf16
path lands near ``S * 2^-9``; a network that amplifies float32 rounding
a thousandfold (ResT v1 on the parity weights) cannot stay within 1e-2 of
float32 in bfloat16, whatever is computed in float32 inside.

Exits 1 if a map is not finite, if one model returns maps of different
dtypes, or if an error exceeds ``max(--tol, S * 2^-9)`` (see
:func:`error_bounds`; ``tests/test_models/test_bf16.py`` uses the same bound
at its small size).

This is a benchmark-script check (minutes on 2 cores), not part of the test
suite; the fast test is ``tests/test_models/test_bf16.py``.

Example::

    python tools/benchmarks/bf16_check.py                  # all, 800x1333
    python tools/benchmarks/bf16_check.py --variants rest_lite --size 512x512
"""
import argparse
import sys
from typing import List, Sequence, Tuple

import torch

#: One parity variant per family.
DEFAULT_VARIANTS = [
    'poolformer_s12', 'poolformerv2_s12', 'identityformer_s12',
    'randformer_s12', 'convformer_s18', 'caformer_s18', 'rest_lite',
    'rest_small', 'restv2_tiny', 'CycleMLP_B1', 'pit_s', 'resmlp_12',
    'mixer_b16'
]


def build_parity_model(variant: str) -> torch.nn.Module:
    """The backbone of a parity variant with its filled official weights
    (float32, eval mode), built with the variant's default outputs."""
    import mmmetaformer  # noqa: F401  (registers the backbones)
    from mmmetaformer.registry import MODELS
    from mmmetaformer.testing import parity
    name, arch, kwargs, _ = parity.REFERENCE_VARIANTS[variant]
    if isinstance(kwargs, list):  # one model per reference tap: the default
        kwargs = {}
    model = MODELS.build(dict(type=name, arch=arch, **kwargs))
    report = model.load_converted(
        parity.official_dense_state_dict(variant), source=f'{variant} fill')
    if not report.clean:
        raise RuntimeError(report.summary())
    return model.float().eval()


def relative_errors(outs: Sequence[torch.Tensor],
                    refs: Sequence[torch.Tensor]) -> List[float]:
    """``||a - b|| / ||b||`` per map (float64)."""
    errors = []
    for a, b in zip(outs, refs):
        a, b = a.detach().double(), b.detach().double()
        errors.append(((a - b).norm() / b.norm()).item())
    return errors


def bf16_errors(model: torch.nn.Module, x: torch.Tensor
                ) -> Tuple[List[float], List[torch.dtype], bool]:
    """Per-map relative error of bf16 autocast vs float32, the bf16 maps'
    dtypes, and whether every bf16 map is finite."""
    with torch.no_grad():
        refs = model(x)
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            outs = model(x)
    finite = all(bool(torch.isfinite(o).all()) for o in outs)
    return relative_errors(outs, refs), [o.dtype for o in outs], finite


def fp32_sensitivity(model: torch.nn.Module, x: torch.Tensor) -> List[float]:
    """Per-map error of float32 vs float64 in units of float32's roundoff
    (the model is float32 again afterwards)."""
    with torch.no_grad():
        refs = model.double()(x.double())
        outs = model.float()(x)
    return [e / FP32_ROUNDOFF for e in relative_errors(outs, refs)]


#: Absolute part of the bound: every map may differ by this much.
DEFAULT_TOLERANCE = 1e-2
#: Unit roundoff of bfloat16 (8 significant bits) and float32 (24).
BF16_ROUNDOFF = 2.0**-9
FP32_ROUNDOFF = 2.0**-24


def error_bounds(sensitivities: Sequence[float],
                 tolerance: float = DEFAULT_TOLERANCE) -> List[float]:
    """Accepted bf16 error per map: ``max(tolerance, S * 2^-9)``.

    ``S`` (:func:`fp32_sensitivity`) is the float32-vs-float64 error of the
    same network on the same input in units of float32's roundoff: how much
    the network amplifies rounding. A correct bf16 path then lands near
    ``S * 2^-9`` (measured 0.1-0.8 times it on every family, 96x160 to
    800x1333); an op computed in too low a precision, or rounded twice,
    pushes it above. Well-conditioned networks are held to ``tolerance``.
    """
    return [max(tolerance, s * BF16_ROUNDOFF) for s in sensitivities]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--variants', nargs='+', default=DEFAULT_VARIANTS)
    parser.add_argument('--size', default='800x1333', help='HxW')
    parser.add_argument('--tol', type=float, default=DEFAULT_TOLERANCE,
                        help='absolute part of the bound (default 1e-2)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    from mmmetaformer.testing import parity
    unknown = set(args.variants) - set(parity.REFERENCE_VARIANTS)
    if unknown:
        parser.error(f'unknown variants {sorted(unknown)}; valid: '
                     f'{sorted(parity.REFERENCE_VARIANTS)}')
    height, width = (int(v) for v in args.size.lower().split('x'))
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, height, width, generator=generator) * 2 - 1
    x = x.to(args.device)
    print(f'bf16 autocast vs float32, input 1x3x{height}x{width}, '
          f'{args.device}, {torch.get_num_threads()} threads, torch '
          f'{torch.__version__}')
    failed = []
    for variant in args.variants:
        model = build_parity_model(variant).to(args.device)
        errors, dtypes, finite = bf16_errors(model, x)
        sens = fp32_sensitivity(model, x)
        bounds = error_bounds(sens, args.tol)
        scaled = [v * BF16_ROUNDOFF for v in sens]
        ok = finite and len(set(dtypes)) == 1 and all(
            e <= b for e, b in zip(errors, bounds))
        print(f'{variant:20s} bf16 error per map '
              f'{" ".join(f"{e:.4f}" for e in errors)} | fp32 sensitivity '
              f'{" ".join(f"{v:.0f}" for v in sens)} | error / (S * 2^-9) '
              f'{" ".join(f"{e / b:.2f}" for e, b in zip(errors, scaled))}'
              f' | dtypes {sorted({str(d)[6:] for d in dtypes})} finite '
              f'{finite}' + ('' if ok else '  FAILED'), flush=True)
        if not ok:
            failed.append(variant)
    if failed:
        print(f'failed: {failed}')
        return 1
    print(f'all {len(args.variants)} variants passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
