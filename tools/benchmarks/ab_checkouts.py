"""Before/after timing of two checkouts of this package, interleaved.

Each measurement runs in a fresh process that imports ``mmmetaformer`` from
the given checkout (asserted), builds the backbone, runs one untimed step
and prints the median of ``--steps`` timed steps; the two checkouts take
turns ``--alternations`` times per variant, so a drift of the machine's
load hits both alike. Prints each process's median in ms and the load
average before and after.

    git worktree add /tmp/before <commit>
    .venv/bin/python tools/benchmarks/ab_checkouts.py /tmp/before . \\
        --variants ConvFormer:s18:train:fp32 PoolFormer:s12:infer:bf16

A variant is ``TYPE:ARCH:MODE:PRECISION`` with MODE ``infer`` or
``train`` and PRECISION ``fp32`` or ``bf16`` (CPU autocast).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

MODES = ('infer', 'train')
PRECISIONS = ('fp32', 'bf16')


def time_variant(repo, typ, arch, mode, precision, size, steps, threads):
    """In this process: median ms of ``steps`` steps of one variant."""
    import torch
    torch.set_num_threads(threads)
    sys.path.insert(0, repo)
    import mmmetaformer
    from mmmetaformer.registry import MODELS
    assert mmmetaformer.__file__.startswith(os.path.abspath(repo)), \
        f'mmmetaformer imported from {mmmetaformer.__file__}, not {repo}'
    torch.manual_seed(0)
    model = MODELS.build(dict(type=typ, arch=arch)).train(mode == 'train')
    x = torch.randn(1, 3, size, size)
    autocast = torch.autocast('cpu', dtype=torch.bfloat16,
                              enabled=precision == 'bf16')

    def step():
        with torch.set_grad_enabled(mode == 'train'), autocast:
            outs = model(x)
        if mode == 'train':
            sum(o.float().square().mean() for o in outs).backward()
            model.zero_grad(set_to_none=True)

    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def parse_variant(text):
    parts = text.split(':')
    if len(parts) != 4 or parts[2] not in MODES or parts[3] not in PRECISIONS:
        raise argparse.ArgumentTypeError(
            f'--variants: {text!r} is not TYPE:ARCH:MODE:PRECISION with '
            f'MODE in {MODES} and PRECISION in {PRECISIONS}')
    return parts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('before', help='checkout timed first in each turn')
    parser.add_argument('after', help='the other checkout')
    parser.add_argument('--variants', nargs='+', type=parse_variant,
                        required=True, help='TYPE:ARCH:MODE:PRECISION')
    parser.add_argument('--size', type=int, default=512,
                        help='square input size (default 512)')
    parser.add_argument('--steps', type=int, default=3,
                        help='timed steps per process (default 3)')
    parser.add_argument('--alternations', type=int, default=3,
                        help='processes per checkout and variant (default 3)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_child(args, repo, variant):
    command = [sys.executable, __file__, repo, repo, '--child', '--variants',
               ':'.join(variant), '--size', str(args.size), '--steps',
               str(args.steps), '--threads', str(args.threads)]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        median = time_variant(args.before, *args.variants[0], args.size,
                              args.steps, args.threads)
        print(f'{median:.1f}')
        return
    print(f'load average at the start: {os.getloadavg()}')
    for variant in args.variants:
        results = {args.before: [], args.after: []}
        for _ in range(args.alternations):
            for repo in results:
                results[repo].append(run_child(args, repo, variant))
        print(f'{":".join(variant)} {args.size}x{args.size}: '
              + ' | '.join(f'{repo} ' + ' '.join(f'{t:.1f}' for t in times)
                           + f' (median {statistics.median(times):.1f})'
                           for repo, times in results.items()) + ' ms')
    print(f'load average at the end: {os.getloadavg()}')


if __name__ == '__main__':
    main()
