"""Input-size sweep of the real ResT / ResTV2 archs over [32, 1024].

Runs every named arch (random init, float32, eval, ``no_grad``) on square and
non-square sizes from 32 to 1024, odd ones included, and checks that each of
the four maps has size ``ceil(H / s) x ceil(W / s)`` and finite values. For
each size it also says whether the official code would have run
(ResT v1: ``ceil(H / 4)`` and ``ceil(W / 4)`` divisible by 8 and a stage-4 map
larger than 1x1; ResTv2: H and W multiples of 32; see
``shared/spec/rest.md``). Prints one line per arch and a summary; exits
with status 1 if any size fails.

Example::

    python tools/benchmarks/rest_size_sweep.py --threads 2
"""
import argparse
import math
import sys
import time

import torch

from mmmetaformer.models.backbones import ResT, ResTV2

SIDES = [32, 33, 47, 64, 97, 131, 200, 225, 319, 512, 513, 777, 1000, 1024]
PAIRS = [(32, 1024), (1024, 33), (97, 513), (600, 1000), (224, 225)]


def official_runs(family: str, h: int, w: int) -> bool:
    """Whether the official dense code accepts an h x w input."""
    if family == 'ResTV2':
        return h % 32 == 0 and w % 32 == 0
    h4, w4 = math.ceil(h / 4), math.ceil(w / 4)
    return h4 % 8 == 0 and w4 % 8 == 0 and h4 * w4 > 64


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--archs', nargs='+', default=[
        'ResT:lite', 'ResT:small', 'ResT:base', 'ResT:large', 'ResTV2:tiny',
        'ResTV2:small', 'ResTV2:base', 'ResTV2:large'
    ])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [(s, s) for s in SIDES] + PAIRS
    print(f'{len(sizes)} sizes: ' + ' '.join(f'{h}x{w}' for h, w in sizes))
    failures = []
    for spec in args.archs:
        family, arch = spec.split(':')
        model = {'ResT': ResT, 'ResTV2': ResTV2}[family](arch).eval()
        start = time.perf_counter()
        ok = official_ok = 0
        for h, w in sizes:
            torch.manual_seed(h * 10007 + w)
            try:
                with torch.no_grad():
                    outs = model(torch.randn(1, 3, h, w))
                good = len(outs) == 4 and all(
                    out.shape[2:] == (math.ceil(h / s), math.ceil(w / s))
                    and bool(torch.isfinite(out).all())
                    for out, s in zip(outs, (4, 8, 16, 32)))
            except Exception as error:  # report and go on with the sweep
                good = False
                print(f'  {spec} {h}x{w}: {type(error).__name__}: {error}')
            ok += good
            official_ok += official_runs(family, h, w)
            if not good:
                failures.append(f'{spec} {h}x{w}')
        print(f'{spec:14s} {ok}/{len(sizes)} sizes ok (official code: '
              f'{official_ok}/{len(sizes)}), '
              f'{time.perf_counter() - start:.1f} s')
    print('all sizes ok' if not failures else f'FAILED: {failures}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
