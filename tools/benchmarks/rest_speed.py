"""CPU forward time of ResT / ResTV2 vs the official formulation.

Times, in the same run and on the same weights, the package's
:class:`~mmmetaformer.models.backbones.ResT` / ``ResTV2`` and
:mod:`mmmetaformer.testing.rest_official`, a literal re-implementation of the
official dense backbones (tokens (B, N, C), explicit ``softmax(q k^T) v``,
``nn.InstanceNorm2d`` on the attention maps, official bookkeeping). Rounds
alternate the order of the two models so that load changes on a shared
machine affect both alike. Each round times ``--repeat`` forwards of each
model (after ``--warmup``) and keeps the median; the script prints, per
model, the median and the lowest of the round medians, and the ratio
``ours / official`` of both (below 1: this implementation is faster). It
first checks that both give the same outputs.

Float32, eval mode, ``no_grad``, one image of ``--size`` x ``--size``
(default 512, where the official code runs).

Example::

    python tools/benchmarks/rest_speed.py --models rest:lite restv2:tiny \\
        --size 512 --threads 2 --rounds 7
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


def time_model(model, x, warmup: int, repeat: int) -> float:
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+',
                        default=['rest:lite', 'restv2:tiny'],
                        help='family:arch pairs, family in {rest, restv2}')
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(1, 3, args.size, args.size)
    print(f'torch {torch.__version__}, {args.threads} threads, input '
          f'1x3x{args.size}x{args.size}, float32, eval, no_grad; '
          f'{args.rounds} rounds x median of {args.repeat} '
          f'(after {args.warmup} warm-ups)')
    for spec in args.models:
        family, arch = spec.split(':')
        if family not in ('rest', 'restv2'):
            raise ValueError(f'family must be rest or restv2, got {family!r}')
        ours, official = build_pair(family, arch)
        with torch.no_grad():
            diff = max((a - b).abs().max().item() / b.abs().max().item()
                       for a, b in zip(ours(x), official(x)))
        rounds = {'ours': [], 'official': []}
        for r in range(args.rounds):
            order = ['ours', 'official'][::1 if r % 2 == 0 else -1]
            for name in order:
                model = ours if name == 'ours' else official
                rounds[name].append(
                    time_model(model, x, args.warmup, args.repeat))
        med = {k: statistics.median(v) for k, v in rounds.items()}
        low = {k: min(v) for k, v in rounds.items()}
        print(f'{family}_{arch}: max relative output difference {diff:.1e}')
        for name in ('ours', 'official'):
            print(f'  {name:9s} median of rounds {med[name]:.3f} s, lowest '
                  f'round {low[name]:.3f} s, rounds '
                  + ' '.join(f'{t:.3f}' for t in rounds[name]))
        ratio_med = med['ours'] / med['official']
        ratio_low = low['ours'] / low['official']
        print(f'  ratio ours/official: median of rounds {ratio_med:.3f}, '
              f'lowest rounds {ratio_low:.3f}')


if __name__ == '__main__':
    main()
