"""GPU check: one command that proves the package on a device, written and
run end to end on the CPU before any GPU has seen it.

Sections (``--sections``, default all), each a list of checks with a value
and ok / FAILED / skipped:

* ``parity``: every reference variant (``mmmetaformer.testing.parity``) in
  float64 on the device against the stored official outputs
  (``tests/data/reference``), worst error <= ``--parity-tol`` (1e-10, as
  the tests);
* ``amp``: one backbone per family (``bf16_check.DEFAULT_VARIANTS``, random
  init) with a 1x1 foreground head, ``--amp-steps`` training steps on demo
  scenes under float16 autocast with a ``torch.amp.GradScaler`` and under
  bfloat16 autocast: every loss finite and the last below the first;
* ``speed``: ours vs timm on the same weights (``speed.py``'s cases with a
  timm peer) at ``--size``, inference and training, float32, float16 AMP,
  bf16 AMP and (``--compile``) ``torch.compile``; skipped with a message
  when timm is not importable (``bash tools/benchmarks/setup_bench.sh``);
* ``mmdet``: one training iteration of RetinaNet PoolFormer-S12 and of Mask
  R-CNN CAFormer-S18 (the shipped configs, random init) on demo scenes at
  ``--size`` (batch ``--batch``): finite loss, backbone updated;
* ``memory``: peak memory of one CAFormer-S18 / PoolFormer-S12 training
  step at ``--size`` without and with ``with_cp`` (``speed.py``'s
  measurement: ``torch.cuda.max_memory_allocated`` on CUDA).

Prints a table and writes ``gpu_check.json``, ``gpu_check.md`` (a README
block) and ``gpu_check.png`` to ``--out-dir``. Exit code 1 if a check
failed.

Examples::

    # the full check on one GPU (800x1216, batch 2)
    python tools/benchmarks/gpu_check.py --device cuda --compile

    # the proof that the script runs (CI, a minute or two on 2 cores)
    python tools/benchmarks/gpu_check.py --device cpu --quick
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import bf16_check  # noqa: E402
import speed  # noqa: E402

SECTIONS = ('parity', 'amp', 'speed', 'mmdet', 'memory')
#: Quick mode (``--quick``): small inputs, few variants, one timing round.
QUICK = dict(size=(64, 96), batch=1, amp_steps=6, rounds=1,
             parity_variants=bf16_check.DEFAULT_VARIANTS,
             speed_cases=['poolformerv2_s12'],
             memory_cases=['poolformer_s12'])
FULL = dict(size=(800, 1216), batch=2, amp_steps=8, rounds=5,
            parity_variants=None,
            speed_cases=['poolformer_s12', 'poolformerv2_s12',
                         'convformer_s18', 'caformer_s18'],
            memory_cases=['caformer_s18', 'poolformer_s12'])
DETECTORS = {
    'retinanet_poolformer_s12': 'configs/retinanet_poolformer_s12.py',
    'mask_rcnn_caformer_s18': 'configs/mask_rcnn_caformer_s18.py',
}


def row(section: str, name: str, ok: Optional[bool], value: str,
        **extra) -> dict:
    """One check's result; ``ok`` None means skipped."""
    return dict(section=section, name=name, ok=ok, value=value, **extra)


class OnDevice(nn.Module):
    """Runs ``model`` on ``device``, inputs moved there and outputs back to
    the CPU (where the parity comparison runs)."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.model = model
        self.device = device

    def forward(self, x):
        self.model.to(self.device)
        return [o.cpu() for o in self.model(x.to(self.device))]


def guarded(section: str, name: str,
            check: Callable[[], List[dict]]) -> List[dict]:
    """``check()``'s rows, or one failed row naming the error it raised
    (a check that cannot run is reported, the others still run)."""
    try:
        return check()
    except Exception as error:
        text = f'{type(error).__name__}: {error}'.splitlines()[0]
        return [row(section, name, False, text[:200])]


def parity_row(variant: str, args) -> List[dict]:
    """Float64 parity of one reference variant on the device."""
    from mmmetaformer.registry import MODELS
    from mmmetaformer.testing import parity
    name, arch, kwargs, _ = parity.REFERENCE_VARIANTS[variant]
    taps = kwargs if isinstance(kwargs, list) else [kwargs]
    worst = 0.0
    for i, tap_kwargs in enumerate(taps):
        model = MODELS.build(dict(type=name, arch=arch, **tap_kwargs))
        model.double()  # before loading: the filled values are float64
        model.load_converted(parity.official_dense_state_dict(variant),
                             source=f'{variant} fill')
        results = parity.parity_errors(
            OnDevice(model, args.device), parity.load_reference(variant),
            ref_outputs=[i] if len(taps) > 1 else None)
        worst = max(worst, parity.worst_error(results))
    return [row('parity', variant, worst <= args.parity_tol, f'{worst:.1e}',
                worst=worst)]


def check_parity(args) -> List[dict]:
    """Float64 parity of every reference variant on the device."""
    import mmmetaformer  # noqa: F401
    from mmmetaformer.testing import parity
    rows = []
    for variant in args.parity_variants or sorted(parity.REFERENCE_VARIANTS):
        rows += guarded('parity', variant,
                        lambda: parity_row(variant, args))
    return rows


def demo_batch(num: int, size, device) -> tuple:
    """Demo scenes as a normalised (num, 3, H, W) batch and their
    (num, 1, H, W) foreground masks."""
    from mmmetaformer.demo import scene_batch
    images, scenes = scene_batch(num, *size)
    masks = np.zeros((num, *size), np.float32)
    for mask, shapes in zip(masks, scenes):
        for shape in shapes:
            mask[shape.mask] = 1.0
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x.to(device), torch.from_numpy(masks)[:, None].to(device)


def amp_losses(model: nn.Module, x, mask, dtype, steps: int) -> tuple:
    """Losses of ``steps`` AdamW steps of ``model`` + a 1x1 head on its
    first map, predicting the foreground ``mask`` at that map's size, under
    ``dtype`` autocast (float16 with a GradScaler: steps whose scaled
    gradients overflow are skipped and the scale halved, as in AMP
    training; RandFormer-S12 at 96x128 skipped its first 4, from 65536 to
    4096), and the final loss scale (1 for bfloat16)."""
    head = nn.Conv2d(model.out_channels[0], 1, 1).to(x.device)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    scaler = torch.amp.GradScaler(x.device.type,
                                  enabled=dtype == torch.float16)
    losses = []
    model.train()
    for _ in range(steps):
        with torch.autocast(x.device.type, dtype=dtype):
            logits = head(model(x)[0]).float()
        target = F.adaptive_avg_pool2d(mask, logits.shape[-2:]) > 0.5
        loss = F.binary_cross_entropy_with_logits(logits, target.float())
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(loss.item())
    return losses, scaler.get_scale()


def amp_rows(variant: str, x, mask, args) -> List[dict]:
    """float16 and bfloat16 AMP training steps of one variant's arch."""
    from mmmetaformer.registry import MODELS
    from mmmetaformer.testing import parity
    name, arch, kwargs, _ = parity.REFERENCE_VARIANTS[variant]
    kwargs = {} if isinstance(kwargs, list) else kwargs
    rows = []
    for dtype in (torch.float16, torch.bfloat16):
        torch.manual_seed(0)
        model = MODELS.build(dict(type=name, arch=arch, **kwargs))
        losses, scale = amp_losses(model.to(args.device), x, mask, dtype,
                                   args.amp_steps)
        ok = all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
        rows.append(row('amp', f'{variant} {str(dtype)[6:]}', ok,
                        f'{losses[0]:.3f} -> {losses[-1]:.3f}, scale '
                        f'{scale:g}', losses=losses, scale=scale))
    return rows


def check_amp(args) -> List[dict]:
    """float16 and bfloat16 AMP training steps of one model per family."""
    import mmmetaformer  # noqa: F401
    x, mask = demo_batch(args.batch, args.size, args.device)
    rows = []
    for variant in bf16_check.DEFAULT_VARIANTS:
        rows += guarded('amp', variant,
                        lambda: amp_rows(variant, x, mask, args))
    return rows


def check_speed(args) -> List[dict]:
    """Ours vs timm (``speed.bench_case``), or one skipped row."""
    from peers import import_timm
    try:
        import_timm()
    except ImportError as error:
        return [row('speed', 'vs timm', None, f'skipped: {error}')]
    options = argparse.Namespace(
        device=str(args.device), no_peer=False, compile=args.compile,
        sizes=[args.size], precisions=list(speed.PRECISIONS),
        modes=list(speed.MODES), rounds=args.rounds, warmup=1, profile=0)
    cases = {c.name: c for c in speed.CASES}
    rows = []
    for name in args.speed_cases:
        result = speed.bench_case(cases[name], args.size, options)
        for key, timing in sorted(result['timings'].items()):
            rows.append(row('speed', f'{name} {key}', True,
                            f'{timing["median_ms"]:.1f} ms',
                            median_ms=timing['median_ms']))
        for mode in options.modes:
            ratio = speed.ratio(result['timings'].get(f'peer/fp32/{mode}'),
                                result['timings'].get(f'ours/fp32/{mode}'))
            if ratio is not None:
                rows.append(row('speed', f'{name} timm/ours fp32 {mode}',
                                True, f'{ratio["median"]:.2f}x'))
    return rows


def detector_batch(batch: int, size) -> dict:
    """A detection batch of demo scenes (boxes, labels, masks) as mmdet's
    data preprocessor takes it."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    from mmmetaformer.demo import mask_to_bbox, scene_batch
    height, width = size
    images, scenes = scene_batch(batch, height, width)
    samples = []
    for shapes in scenes:
        boxes = [mask_to_bbox(s.mask) for s in shapes]
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[x, y, x + w, y + h]
                                 for x, y, w, h in boxes]),
            labels=torch.tensor([s.label for s in shapes]),
            masks=BitmapMasks(np.stack([s.mask for s in shapes]).astype(
                np.uint8), height, width))
        samples.append(sample)
    inputs = [torch.from_numpy(img).permute(2, 0, 1).contiguous()
              for img in images]
    return dict(inputs=inputs, data_samples=samples)


def check_mmdet(args) -> List[dict]:
    """One training iteration of each of :data:`DETECTORS` (the shipped
    config's model and optimizer; ``init_weights`` without the ImageNet
    checkpoint: random backbone, heads as configured)."""
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS as ROOT_MODELS
    from mmengine.registry import DefaultScope

    import mmmetaformer  # noqa: F401
    from mmmetaformer.runner.pretrained import drop_pretrained
    # the current logger: init_weights' parameter table at WARNING is quiet
    MMLogger.get_instance('gpu_check', log_level='WARNING')
    rows = []
    for name, path in DETECTORS.items():
        cfg = Config.fromfile(osp.join(REPO, path))
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            torch.manual_seed(0)
            model = ROOT_MODELS.build(drop_pretrained(cfg.model))
            model.init_weights()  # the heads' initialisation (prior bias)
            model.to(args.device).train()
            wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
            before = [p.detach().clone() for p in model.backbone.parameters()]
            start = time.perf_counter()
            log_vars = model.train_step(
                detector_batch(args.batch, args.size), wrapper)
            seconds = time.perf_counter() - start
        loss = log_vars['loss'].item()
        moved = any(not torch.equal(a, p.detach()) for a, p in zip(
            before, model.backbone.parameters()))
        rows.append(row('mmdet', name, math.isfinite(loss) and moved,
                        f'loss {loss:.3f}, {seconds:.1f} s'
                        + ('' if moved else ', backbone not updated'),
                        loss=loss, seconds=seconds))
    return rows


def check_memory(args) -> List[dict]:
    """Training-step memory without / with ``with_cp``
    (``speed.bench_memory``: a fresh process each)."""
    cases = {c.name: c for c in speed.CASES}
    options = argparse.Namespace(memory_size=args.size, device=str(
        args.device), threads=torch.get_num_threads())
    rows = []
    for name in args.memory_cases:
        results = speed.bench_memory(cases[name], options)
        for result in results:
            label = f'{name} with_cp={result["with_cp"]}'
            if 'error' in result:
                rows.append(row('memory', label, False, result['error']))
                continue
            rows.append(row('memory', label, True,
                            f'peak {result["peak_MiB"]:.0f} MiB, saved '
                            f'{result["saved_MiB"]:.0f} MiB', **result))
        if all('error' not in r for r in results):
            saved = [r['saved_MiB'] for r in results]
            rows.append(row('memory', f'{name} with_cp saves', saved[1] <
                            saved[0], f'{saved[0]:.0f} -> {saved[1]:.0f} '
                            'MiB saved activations'))
    return rows


CHECKS: Dict[str, Callable[[argparse.Namespace], List[dict]]] = {
    'parity': check_parity, 'amp': check_amp, 'speed': check_speed,
    'mmdet': check_mmdet, 'memory': check_memory}


def _status(ok: Optional[bool]) -> str:
    return 'skipped' if ok is None else ('ok' if ok else 'FAILED')


def markdown(env: dict, rows: List[dict]) -> str:
    """The README block: environment and one table of every check."""
    lines = [f'GPU check ({env["mode"]}) on {env["device_name"]}, torch '
             f'{env["torch"]}, input {env["size"]}, batch {env["batch"]}, '
             f'{env["elapsed_s"]:.0f} s.', '',
             '| section | check | value | result |', '|---|---|---|---|']
    lines += [f'| {r["section"]} | {r["name"]} | {r["value"]} | '
              f'{_status(r["ok"])} |' for r in rows]
    return '\n'.join(lines) + '\n'


def write_chart(rows: List[dict], path: str) -> Optional[str]:
    """Bar chart of the parity errors (log scale); returns why not, or
    None when written."""
    parity_rows = [r for r in rows if r['section'] == 'parity']
    if not parity_rows:
        return 'no parity results'
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return 'matplotlib is not installed'
    fig, ax = plt.subplots(figsize=(8, 3.5))
    values = [max(r['worst'], 1e-18) for r in parity_rows]
    ax.bar(range(len(values)), values)
    ax.set_yscale('log')
    ax.set_xticks(range(len(values)),
                  [r['name'] for r in parity_rows], rotation=60, ha='right',
                  fontsize=7)
    ax.set_ylabel('worst float64 parity error')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda',
                        help='cuda (default), cuda:N or cpu')
    parser.add_argument('--quick', action='store_true',
                        help=f'small and few: {QUICK}')
    parser.add_argument('--sections', nargs='+', choices=SECTIONS,
                        default=list(SECTIONS))
    parser.add_argument('--size', type=speed.parse_size, default=None,
                        help="HxW (default 800x1216; --quick: 64x96)")
    parser.add_argument('--batch', type=int, default=None,
                        help='batch of the amp and mmdet sections (default '
                        '2; --quick: 1)')
    parser.add_argument('--amp-steps', type=int, default=None,
                        help='AMP training steps per model (default 8; '
                        '--quick: 6)')
    parser.add_argument('--compile', action='store_true',
                        help='speed: also torch.compile (inductor)')
    parser.add_argument('--parity-tol', type=float, default=1e-10)
    parser.add_argument('--parity-variants', nargs='+', metavar='VARIANT',
                        help='parity: these reference variants (default '
                        'all; --quick: one per family)')
    parser.add_argument('--out-dir', default=osp.join(REPO, 'work_dirs',
                                                       'gpu_check'))
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.batch < 1 or args.amp_steps < 2:
        parser.error('--batch must be >= 1 and --amp-steps >= 2')
    from mmmetaformer.testing.parity import REFERENCE_VARIANTS
    unknown = set(args.parity_variants or ()) - set(REFERENCE_VARIANTS)
    if unknown:
        parser.error(f'--parity-variants: unknown {sorted(unknown)}; valid: '
                     f'{sorted(REFERENCE_VARIANTS)}')
    try:
        args.device = torch.device(args.device)
    except RuntimeError as error:
        parser.error(f'--device: {error}')
    if args.device.type == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: this torch sees no CUDA device (use '
                     '--device cpu --quick to check the script itself)')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    rows = []
    for section in args.sections:
        t0 = time.perf_counter()
        rows += guarded(section, 'error', lambda: CHECKS[section](args))
        print(f'[{section}: {time.perf_counter() - t0:.0f} s]', flush=True)
        for r in rows:
            if r['section'] == section:
                print(f'  {r["name"]:45s} {r["value"]:40s} '
                      f'{_status(r["ok"])}', flush=True)
    env = dict(mode='quick' if args.quick else 'full',
               device=str(args.device), torch=torch.__version__,
               device_name=(torch.cuda.get_device_name(args.device)
                            if args.device.type == 'cuda' else 'CPU'),
               size=speed.size_label(args.size), batch=args.batch,
               elapsed_s=time.perf_counter() - start)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'gpu_check.json'), 'w') as f:
        json.dump(dict(environment=env, checks=rows), f, indent=1)
    with open(osp.join(args.out_dir, 'gpu_check.md'), 'w') as f:
        f.write(markdown(env, rows))
    problem = write_chart(rows, osp.join(args.out_dir, 'gpu_check.png'))
    print(f'wrote {args.out_dir}/gpu_check.{{json,md' +
          (',png}' if problem is None else f'}} ({problem})'))
    failed = [f'{r["section"]}/{r["name"]}' for r in rows if r['ok'] is False]
    print(f'failed: {failed}' if failed else
          f'all {len(rows)} checks passed or skipped')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
