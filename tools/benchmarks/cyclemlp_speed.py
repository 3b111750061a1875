"""CPU speed of CycleMLP: Cycle FC as shift + projection vs deformable conv.

Times, in the same run and on the same weights, the package's
:class:`~mmmetaformer.models.backbones.CycleMLP` (Cycle FC as a zero-filled
per-channel shift followed by a 1x1 projection) and the same network with
every Cycle FC computed the official way: a 1x1 deformable convolution with
one (dy, dx) offset per input channel, expanded over the map, bilinear
sampling and an im2col-then-GEMM product, as ``torchvision.ops.deform_conv2d``
does on CPU (written here in vectorised PyTorch, since no CPU torchvision
exists for this torch; torchvision's own CPU im2col is a single-threaded
scalar loop, so this port is, if anything, the faster baseline). Rounds alternate between the two models so that load
changes on a shared machine affect both alike; the script prints per-model
medians, minima and the speed ratio, and checks that both give the same
outputs. For context it also times a copy without the shifts (a floor for
any exact formulation, not a correct model) and each stage's Cycle FC alone.

Example::

    python tools/benchmarks/cyclemlp_speed.py --arch b1 --size 512 \\
        --threads 2 --rounds 7
"""
import argparse
import copy
import statistics
import sys
import time
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmmetaformer.models.backbones.cyclemlp import CycleFC, CycleMLP


def deform_conv2d_1x1(x: torch.Tensor, offset: torch.Tensor,
                      weight: torch.Tensor,
                      bias: torch.Tensor = None) -> torch.Tensor:
    """``deform_conv2d`` with a 1x1 kernel, stride 1, no padding and one
    offset group per input channel.

    Follows torchvision's CPU kernel: for every input channel c and output
    position (y, x) the sample point is ``(y + offset[:, 2c], x +
    offset[:, 2c + 1])``; it is 0 when ``h <= -1``, ``h >= H``, ``w <= -1``
    or ``w >= W``, else the bilinear mix of its four neighbours with
    out-of-map neighbours contributing 0. The samples form the im2col
    ``columns`` (B, C, H * W), multiplied by the (out, C) weight.

    Args:
        x (Tensor): (B, C, H, W).
        offset (Tensor): (B, 2C, H, W).
        weight (Tensor): (out, C, 1, 1) or (out, C).
        bias (Tensor, optional): (out, ).

    Returns:
        Tensor: (B, out, H, W).
    """
    # torchvision's kernel starts with input.contiguous() and
    # offset.contiguous(): the official module passes an expanded offset
    # view, which is materialised here as there.
    x = x.contiguous()
    offset = offset.contiguous()
    batch, channels, height, width = x.shape
    off = offset.view(batch, channels, 2, height, width)
    ys = torch.arange(height, dtype=x.dtype).view(1, 1, height, 1)
    xs = torch.arange(width, dtype=x.dtype).view(1, 1, 1, width)
    h = ys + off[:, :, 0]
    w = xs + off[:, :, 1]
    inside = (h > -1) & (h < height) & (w > -1) & (w < width)
    h_low_f, w_low_f = h.floor(), w.floor()
    lh, lw = h - h_low_f, w - w_low_f
    hh, hw = 1 - lh, 1 - lw
    h_low, w_low = h_low_f.long(), w_low_f.long()
    h_high, w_high = h_low + 1, w_low + 1
    flat = x.reshape(batch, channels, height * width)

    def corner(hi, wi):
        ok = inside & (hi >= 0) & (hi < height) & (wi >= 0) & (wi < width)
        index = hi.clamp(0, height - 1) * width + wi.clamp(0, width - 1)
        values = torch.gather(flat, 2, index.view(batch, channels, -1))
        return values.view_as(h) * ok

    columns = (hh * hw * corner(h_low, w_low) + hh * lw *
               corner(h_low, w_high) + lh * hw * corner(h_high, w_low) +
               lh * lw * corner(h_high, w_high))
    out = torch.matmul(
        weight.reshape(weight.shape[0], channels),
        columns.reshape(batch, channels, height * width))
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return out.view(batch, -1, height, width)


class DeformCycleFC(nn.Module):
    """The official Cycle FC formulation on the weights of a :class:`CycleFC`
    (shared, not copied): channels-last in and out, NCHW inside, the
    ``offset`` buffer expanded over the map as the official module does."""

    def __init__(self, cycle_fc: CycleFC) -> None:
        super().__init__()
        self.cycle_fc = cycle_fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fc = self.cycle_fc
        x = x.permute(0, 3, 1, 2)
        batch, _, height, width = x.shape
        offset = fc.offset.expand(batch, -1, height, width)
        out = deform_conv2d_1x1(x, offset, fc.weight, fc.bias)
        return out.permute(0, 2, 3, 1)


class UnshiftedCycleFC(nn.Module):
    """Only the projection of a :class:`CycleFC`, no shift: NOT the model,
    a lower bound on the cost of any exact Cycle FC formulation."""

    def __init__(self, cycle_fc: CycleFC) -> None:
        super().__init__()
        self.cycle_fc = cycle_fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.cycle_fc.weight, self.cycle_fc.bias)


def replace_cycle_fc(model: nn.Module, wrapper) -> nn.Module:
    """A copy of ``model`` whose Cycle FCs are wrapped by ``wrapper``."""
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, CycleFC):
                setattr(module, name, wrapper(child))
    return model


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
                        choices=sorted(CycleMLP.arch_settings))
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
    shift_model = CycleMLP(args.arch)
    shift_model.init_weights()
    shift_model.eval()
    models = {
        'shift': shift_model,
        'deform': replace_cycle_fc(shift_model, DeformCycleFC).eval(),
        'no-shift': replace_cycle_fc(shift_model, UnshiftedCycleFC).eval(),
    }
    x = torch.randn(args.batch, 3, args.size, args.size)
    print(f'CycleMLP-{args.arch}, input {tuple(x.shape)}, fp32, '
          f'{torch.get_num_threads()} threads, torch {torch.__version__}')
    with torch.no_grad():
        outs = shift_model(x)
        diff = max_abs_diff(outs, models['deform'](x))
        scale = max(o.abs().max().item() for o in outs)
    print(f'max |shift - deform| over the 4 maps: {diff:.3e} '
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
            {'shift': fc, 'deform': DeformCycleFC(fc)}, y, args.rounds,
            args.warmup)
        print(f'  stage {stage}, tokens {tuple(y.shape)}: '
              f'deform / shift {ratio(layer_times, "deform", "shift")}')


if __name__ == '__main__':
    main()
