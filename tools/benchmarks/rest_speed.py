"""CPU forward time of ResT / ResTV2 vs the official formulation.

Times, in the same run and on the same weights, the package's
:class:`~mmmetaformer.models.backbones.ResT` / ``ResTV2`` and
:mod:`mmmetaformer.testing.rest_official`, a literal re-implementation of the
official dense backbones (tokens (B, N, C), explicit ``softmax(q k^T) v``,
``nn.InstanceNorm2d`` on the attention maps, official bookkeeping). After
``--warmup`` forwards each, the two models run in ``--pairs`` adjacent pairs
(the order alternating), so that load changes on a shared machine affect
both alike; each forward's wall time and process CPU time (all threads) are
taken. The script prints per model the median and minimum, and the ratio
``ours / official`` as the median of the per-pair ratios and as the ratio
of the minima (below 1: this implementation is faster). It first checks
that both give the same outputs.

Float32, eval mode, ``no_grad``, one image of ``--size`` x ``--size``
(default 512, where the official code runs).

Example::

    python tools/benchmarks/rest_speed.py --models rest:lite restv2:tiny \\
        --size 512 --threads 2 --pairs 15
"""
import argparse
import statistics
import time

import torch

from mmmetaformer.models.backbones import ResT, ResTV2
from mmmetaformer.testing.rest_official import OfficialResT, OfficialResTV2



def build_pair(family: str, arch: str):
    """(ours, official) with the same random weights, eval mode."""
    cls = ResT if family == 'rest' else ResTV2
    ours = cls(arch).eval()
    settings = cls.parse_arch(arch)
    heads = settings['num_heads']
    official_cls = OfficialResT if family == 'rest' else OfficialResTV2
    official = official_cls(settings['embed_dims'], settings['depths'],
                            heads).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for name, tensor in official.state_dict().items():
            if name.endswith('num_batches_tracked'):
                continue
            if name.endswith('running_var'):
                tensor.uniform_(0.5, 1.5)
            elif tensor.dim() >= 2:
                fan_in = tensor[0].numel()
                tensor.uniform_(-1, 1).mul_((3.0 / fan_in)**0.5)
            else:
                tensor.uniform_(-0.1, 0.1).add_(
                    1.0 if name.endswith('weight') else 0.0)
    report = ours.load_converted(official.state_dict(), source='official')
    if not report.clean or report.missing:
        raise RuntimeError(report.summary())
    return ours, official


def time_pairs(ours, official, x, warmup: int, pairs: int) -> dict:
    """Forward times of both models in adjacent pairs (order alternating).

    Returns:
        dict: ``'ours'`` / ``'official'`` -> list of (wall, cpu) seconds.
    """
    models = {'ours': ours, 'official': official}
    times = {'ours': [], 'official': []}
    with torch.no_grad():
        for model in models.values():
            for _ in range(warmup):
                model(x)
        for i in range(pairs):
            order = ['ours', 'official'][::1 if i % 2 == 0 else -1]
            for name in order:
                wall, cpu = time.perf_counter(), time.process_time()
                models[name](x)
                times[name].append((time.perf_counter() - wall,
                                    time.process_time() - cpu))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+',
                        default=['rest:lite', 'restv2:tiny'],
                        help='family:arch pairs, family in {rest, restv2}')
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--pairs', type=int, default=15)
    parser.add_argument('--warmup', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(1, 3, args.size, args.size)
    print(f'torch {torch.__version__}, {args.threads} threads, input '
          f'1x3x{args.size}x{args.size}, float32, eval, no_grad; '
          f'{args.pairs} timed pairs after {args.warmup} warm-ups; wall '
          f'and process CPU time')
    for spec in args.models:
        family, arch = spec.split(':')
        if family not in ('rest', 'restv2'):
            raise ValueError(f'family must be rest or restv2, got {family!r}')
        ours, official = build_pair(family, arch)
        with torch.no_grad():
            diff = max((a - b).abs().max().item() / b.abs().max().item()
                       for a, b in zip(ours(x), official(x)))
        times = time_pairs(ours, official, x, args.warmup, args.pairs)
        print(f'{family}_{arch}: max relative output difference {diff:.1e}')
        for k, kind in enumerate(('wall', 'cpu')):
            ours_t = [t[k] for t in times['ours']]
            official_t = [t[k] for t in times['official']]
            ratios = [a / b for a, b in zip(ours_t, official_t)]
            print(f'  {kind:4s} time: ours median '
                  f'{statistics.median(ours_t):.3f} s (min '
                  f'{min(ours_t):.3f}), official median '
                  f'{statistics.median(official_t):.3f} s (min '
                  f'{min(official_t):.3f}); ratio ours/official: median of '
                  f'pairs {statistics.median(ratios):.3f}, of minima '
                  f'{min(ours_t) / min(official_t):.3f}')


if __name__ == '__main__':
    main()
