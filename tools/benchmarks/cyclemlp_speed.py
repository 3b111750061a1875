"""CPU speed of CycleMLP: Cycle FC as shift + projection vs mmcv's compiled
deformable convolution.

Times, in the same run and on the same weights, the package's
:class:`~mmmetaformer.models.backbones.CycleMLP` (Cycle FC as a zero-filled
per-channel shift followed by a 1x1 projection) and the same network with
every Cycle FC computed the official way: a 1x1 deformable convolution with
one constant (dy, dx) offset per input channel, expanded over the map, here
by mmcv's compiled ``deform_conv2d`` (``peers.MmcvDeformCycleFC``: what a
user of the official code runs on mmcv 2.x, since torchvision has no CPU
build for this torch). Rounds alternate between the models so that load
changes on a shared machine affect them alike; the script prints per-model
medians, minima and the speed ratio, and checks that the formulations give
the same outputs. For context it also times a copy without the shifts (a
floor for any exact formulation, not a correct model) and each stage's Cycle
FC alone. The whole-backbone comparison is also a case of the speed suite
(``speed.py --cases cyclemlp_b1``).

Example::

    python tools/benchmarks/cyclemlp_speed.py --arch b1 --size 512 \\
        --threads 2 --rounds 7
"""
import argparse
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from peers import (MmcvDeformCycleFC, build_ours,  # noqa: E402
                   replace_modules)


class UnshiftedCycleFC(nn.Module):
    """Only the projection of a :class:`CycleFC`, no shift: NOT the model,
    a lower bound on the cost of any exact Cycle FC formulation."""

    def __init__(self, cycle_fc: nn.Module) -> None:
        super().__init__()
        self.cycle_fc = cycle_fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.cycle_fc.weight, self.cycle_fc.bias)


def time_alternating(models: Dict[str, nn.Module], x: torch.Tensor,
                     rounds: int, warmup: int) -> Dict[str, List[float]]:
    """Seconds per forward of each model, the models taking turns."""
    times = {name: [] for name in models}
    with torch.no_grad():
        for _ in range(warmup):
            for model in models.values():
                model(x)
        for _ in range(rounds):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - start)
    return times


def report(times: Dict[str, List[float]], indent: str = '') -> None:
    for name, t in times.items():
        print(f'{indent}{name:>9}: median {statistics.median(t) * 1e3:9.1f} '
              f'ms, min {min(t) * 1e3:9.1f} ms over {len(t)} runs')


def ratio(times: Dict[str, List[float]], slow: str, fast: str) -> str:
    by_median = statistics.median(times[slow]) / statistics.median(
        times[fast])
    by_min = min(times[slow]) / min(times[fast])
    return f'{by_median:.2f}x by medians, {by_min:.2f}x by minima'


def max_abs_diff(a: Tuple[torch.Tensor, ...],
                 b: Tuple[torch.Tensor, ...]) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a, b))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='b1',
                        choices=['b1', 'b2', 'b3', 'b4', 'b5'])
    parser.add_argument('--size', type=int, default=512,
                        help='input height and width')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=7,
                        help='timed runs of each model (alternating)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--no-layers', action='store_true',
                        help='skip the per-stage Cycle FC timings')
    return parser.parse_args()


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shift_model = build_ours('CycleMLP', args.arch).eval()
    models = {
        'shift': shift_model,
        'deform': replace_modules(shift_model, 'CycleFC',
                                  MmcvDeformCycleFC).eval(),
        'no-shift': replace_modules(shift_model, 'CycleFC',
                                    UnshiftedCycleFC).eval(),
    }
    x = torch.randn(args.batch, 3, args.size, args.size)
    print(f'CycleMLP-{args.arch}, input {tuple(x.shape)}, fp32, '
          f'{torch.get_num_threads()} threads, torch {torch.__version__}')
    with torch.no_grad():
        outs = shift_model(x)
        diff = max_abs_diff(outs, models['deform'](x))
        scale = max(o.abs().max().item() for o in outs)
    print(f'max |shift - mmcv deform| over the 4 maps: {diff:.3e} '
          f'(largest |output| {scale:.3e})')
    if diff > 1e-3 * max(scale, 1.0):
        print('ERROR: the two formulations disagree', file=sys.stderr)
        sys.exit(1)

    times = time_alternating(models, x, args.rounds, args.warmup)
    print('Whole backbone:')
    report(times, '  ')
    print(f'  SPEED-UP shift vs deform: {ratio(times, "deform", "shift")}')
    print('  (no-shift drops the shift from every Cycle FC: not the model, '
          'but a floor for any exact formulation; deform / no-shift is the '
          f'largest reachable speed-up: {ratio(times, "deform", "no-shift")})')

    if args.no_layers:
        return
    print('Cycle FC layers alone (sfc_h of the first block of each stage):')
    for stage, (size, dim) in enumerate(
            zip([o.shape[-1] for o in outs], shift_model.embed_dims)):
        fc = shift_model.stages[stage].blocks[0].token_mixer.sfc_h
        y = torch.randn(args.batch, size, size, dim)
        layer_times = time_alternating(
            {'shift': fc, 'deform': MmcvDeformCycleFC(fc)}, y, args.rounds,
            args.warmup)
        print(f'  stage {stage}, tokens {tuple(y.shape)}: '
              f'deform / shift {ratio(layer_times, "deform", "shift")}')


if __name__ == '__main__':
    main()
