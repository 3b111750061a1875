"""Whole-pipeline speed: the official dense-prediction code vs this package.

RetinaNet PoolFormer-S12 (COCO, 1333 x 800) and Semantic FPN PoolFormer-S12
(ADE20K, 2048 x 512 with AlignResize), each run by

* the OFFICIAL code: sail-sg/poolformer's detection / segmentation folders
  on its own configs, in the official environment
  (``tools/references/setup_official_env.sh``: torch 2.0.1, mmcv-full 1.7.2,
  mmdet 2.28.2, mmseg 0.30.0) -- the only stack that code runs on;
* this package: the model-zoo row's config on mmdet 3 / mmseg 1 (this
  environment), with the official checkpoint converted by this package's
  converter.

Both load the same official-format checkpoint (every tensor filled by the
rule of ``tests/data/pipelines/<name>.keys.json``, the pipeline tests'
weights) and read the same photographs (``skimage.data`` rocket, 427 x 640,
and coffee, 400 x 600, written once by the official environment's
scikit-image).

Measured, per process (one warm-up call, then ``--iters`` timed calls):

* ``infer``: the framework's single-image inference call on the image file
  (``inference_detector`` / ``inference_segmentor`` of mmdet 2 / mmseg 0.x;
  ``mmdet.apis.inference_detector`` / ``mmseg.apis.inference_model``):
  loading, the config's test pipeline, the model, post-processing;
* ``train``: one training iteration of the model on a prepared batch at the
  published training size (RetinaNet: 2 images of 800 x 1199 padded to
  800 x 1216, 3 boxes each; Semantic FPN: 4 crops of 512 x 512 with a label
  map): forward with losses, backward, AdamW step. Data loading and
  augmentation are not timed (the same tensors enter both models).

The two sides run in alternating fresh processes (``--rounds``), with
``--threads`` intra-op threads each; the table gives the median seconds per
call of each side and official / ours (above 1: this package is faster).
The official side also runs an older torch (2.0.1 against this
environment's): that is the stack a user of the official code has.

Usage (a quiet machine; the official environment and a checkout of
github.com/sail-sg/poolformer must exist)::

    .venv/bin/python tools/benchmarks/pipeline_speed.py \\
        --poolformer /path/to/poolformer [--rounds 2] [--iters 3] \\
        [--out results.json] [--chart chart.png]
    # the table and chart again from stored figures, timing nothing:
    .venv/bin/python tools/benchmarks/pipeline_speed.py \\
        --from tools/benchmarks/results/pipeline_speed.json \\
        --chart tools/benchmarks/results/pipeline_speed.png
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DATA = osp.join(REPO, 'tests', 'data', 'pipelines')
OFFICIAL_PYTHON = osp.expanduser(
    '~/.cache/mmmetaformer/official-env/bin/python')
#: case -> (pipeline reference / zoo row, official config, image, kind)
CASES = {
    'retinanet_poolformer_s12': (
        'detection/configs/retinanet_poolformer_s12_fpn_1x_coco.py',
        'rocket', 'det'),
    'semfpn_poolformer_s12': (
        'segmentation/configs/sem_fpn/PoolFormer/'
        'fpn_poolformer_s12_ade20k_40k.py', 'coffee', 'seg'),
}
MODES = ('infer', 'train')
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
#: the training batch: (images, height, width, padded width)
TRAIN_SHAPE = {'det': (2, 800, 1199, 1216), 'seg': (4, 512, 512, 512)}
GT_BOXES = [[100., 100., 400., 500.], [600., 200., 900., 700.],
            [50., 600., 300., 780.]]
GT_LABELS = [0, 2, 5]


# ------------------------------------------------------------------ inputs
def train_batch(image: str, kind: str):
    """The normalised training batch (N, 3, H, W) and, for segmentation,
    the label map (N, H, W): the same arithmetic in both environments."""
    import cv2
    import numpy as np
    import torch
    n, h, w, pad_w = TRAIN_SHAPE[kind]
    rgb = cv2.imread(image)[..., ::-1].astype(np.float32)
    if kind == 'det':
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
    else:  # the short side to 512, then the top-left 512 x 512 crop
        scale = 512 / min(rgb.shape[:2])
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)[:h, :w]
    rgb = (rgb - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    img = torch.zeros(n, 3, h, pad_w)
    img[..., :w] = torch.from_numpy(rgb.transpose(2, 0, 1).copy())
    rows = torch.arange(h)[:, None] // 32
    cols = torch.arange(pad_w)[None] // 32
    labels = ((rows + cols) % 150).expand(n, h, pad_w).clone()
    return img, labels


def write_images(python: str, out_dir: str) -> dict:
    """skimage.data photographs as PNG files (official environment)."""
    code = ('import sys, cv2, skimage.data as d\n'
            'for name in ("rocket", "coffee"):\n'
            '    cv2.imwrite(f"{sys.argv[1]}/{name}.png",'
            ' getattr(d, name)()[..., ::-1])\n')
    subprocess.run([python, '-c', code, out_dir], check=True)
    return {name: osp.join(out_dir, f'{name}.png')
            for name in ('rocket', 'coffee')}


def official_checkpoint(name: str, path: str) -> str:
    """The pipeline test's official-format checkpoint of ``name``."""
    import torch

    from mmmetaformer.testing import parity
    with open(osp.join(DATA, f'{name}.keys.json')) as f:
        record = json.load(f)
    state = parity.pipeline_state_dict(record)
    torch.save({'state_dict': state, 'meta': {}}, path)
    return path


def our_checkpoint(name: str, official: str, path: str) -> str:
    from mmmetaformer import reproduce
    from mmmetaformer import zoo as model_zoo
    row = model_zoo.find_row(name)
    return reproduce.convert_checkpoint(
        row, official, osp.join(REPO, row['Config']), path, None)


# ------------------------------------------------------------ the workers
def official_model(args):
    """The official model of ``args.case`` with the checkpoint loaded."""
    import torch
    config, _, kind = CASES[args.case]
    sys.path.insert(0, args.poolformer)
    import models  # noqa: F401  (the official backbones register)
    path = osp.join(args.poolformer, config)
    if kind == 'det':
        import mmcv
        from mmdet.apis import init_detector
        from mmdet.models import build_detector
        os.environ['FORK_LAST3'] = '1'  # the official RetinaNet setting
        cfg = mmcv.Config.fromfile(path)
        cfg.model.backbone.init_cfg = None
        # init_detector drops train_cfg (the anchor assigner) for testing
        model = init_detector(cfg, None, device='cpu') \
            if args.mode == 'infer' else build_detector(cfg.model)
    else:
        import mmcv
        from mmcv.cnn.utils import revert_sync_batchnorm
        from mmseg.apis import init_segmentor
        sys.path.insert(0, osp.join(args.poolformer, 'segmentation'))
        import align_resize  # noqa: F401  (registers AlignResize)
        cfg = mmcv.Config.fromfile(path)
        cfg.model.pretrained = None
        cfg.model.backbone.init_cfg = None
        model = revert_sync_batchnorm(init_segmentor(cfg, None, 'cpu'))
    state = torch.load(args.checkpoint, map_location='cpu')['state_dict']
    model.load_state_dict(state, strict=True)
    return model, kind


def official_call(args):
    """The callable one timed iteration runs (official code)."""
    import torch
    model, kind = official_model(args)
    if args.mode == 'infer':
        if kind == 'det':
            from mmdet.apis import inference_detector as infer
        else:
            from mmseg.apis import inference_segmentor as infer
        model.eval()
        return lambda: infer(model, args.image)
    img, labels = train_batch(args.image, kind)
    n, h, w, _ = TRAIN_SHAPE[kind]
    metas = [dict(img_shape=(h, w, 3), pad_shape=tuple(img.shape[2:]) + (3,),
                  ori_shape=(h, w, 3), scale_factor=1.0, flip=False)] * n
    if kind == 'det':
        extra = dict(gt_bboxes=[torch.tensor(GT_BOXES)] * n,
                     gt_labels=[torch.tensor(GT_LABELS)] * n)
    else:
        extra = dict(gt_semantic_seg=labels[:, None])
    return train_step(model, lambda: model._parse_losses(
        model.forward_train(img, metas, **extra))[0])


def our_call(args):
    """The callable one timed iteration runs (this package)."""
    import mmmetaformer  # noqa: F401  (registers the backbones)
    from mmmetaformer import zoo as model_zoo
    kind = CASES[args.case][2]
    config = osp.join(REPO, model_zoo.find_row(args.case)['Config'])
    if kind == 'det':
        from mmdet.apis import inference_detector as infer
        from mmdet.apis import init_detector as init
    else:
        from mmseg.apis import inference_model as infer
        from mmseg.apis import init_model as init
    model = init(config, args.checkpoint, device='cpu')
    if args.mode == 'infer':
        model.eval()
        return lambda: infer(model, args.image)
    img, labels = train_batch(args.image, kind)
    samples = our_samples(kind, img, labels)
    return train_step(model, lambda: model.parse_losses(
        model.loss(img, samples))[0])


def our_samples(kind: str, img, labels) -> list:
    import torch
    n, h, w, _ = TRAIN_SHAPE[kind]
    meta = dict(img_shape=(h, w), pad_shape=tuple(img.shape[2:]),
                ori_shape=(h, w), batch_input_shape=tuple(img.shape[2:]),
                scale_factor=(1.0, 1.0))
    samples = []
    for i in range(n):
        if kind == 'det':
            from mmdet.structures import DetDataSample
            from mmengine.structures import InstanceData
            sample = DetDataSample(metainfo=meta)
            sample.gt_instances = InstanceData(
                bboxes=torch.tensor(GT_BOXES), labels=torch.tensor(GT_LABELS))
        else:
            from mmengine.structures import PixelData
            from mmseg.structures import SegDataSample
            sample = SegDataSample(metainfo=meta)
            sample.gt_sem_seg = PixelData(data=labels[i][None])
        samples.append(sample)
    return samples


def train_step(model, loss_fn):
    """One iteration: forward with losses, backward, AdamW step."""
    import torch
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        return loss.detach()
    return step


def worker(args):
    import torch
    torch.set_num_threads(args.threads)
    call = (official_call if args.side == 'official' else our_call)(args)
    first = call()  # warm-up
    if torch.is_tensor(first):  # the same weights and batch: the same loss
        print(f'LOSS {float(first):.6f}')
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    print('RESULT ' + json.dumps(times))


# ------------------------------------------------------------- the driver
def run_worker(args, side, case, mode, checkpoint, image) -> list:
    python = args.official_python if side == 'official' else sys.executable
    cmd = [python, osp.abspath(__file__), '--worker', side, '--case', case,
           '--mode', mode, '--checkpoint', checkpoint, '--image', image,
           '--iters', str(args.iters), '--threads', str(args.threads),
           '--poolformer', args.poolformer]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith('RESULT ')]
    for line in out.stdout.splitlines():
        if line.startswith('LOSS '):  # the first training loss of each side
            print(f'{side} {case}: first loss {line[5:]}')
    if out.returncode or not lines:
        raise SystemExit(f'{side} {case} {mode} failed (exit '
                         f'{out.returncode}):\n{out.stderr[-3000:]}')
    return json.loads(lines[-1][len('RESULT '):])


def prepare(args, tmp: str) -> dict:
    """case -> {side: checkpoint path, 'image': path}."""
    images = write_images(args.official_python, tmp)
    files = {}
    for case in args.cases:
        official = official_checkpoint(case, osp.join(tmp, f'{case}.pth'))
        ours = our_checkpoint(case, official, osp.join(tmp, f'{case}.ours.pth'))
        files[case] = dict(official=official, ours=ours,
                           image=images[CASES[case][1]])
    return files


def measure(args, files: dict) -> dict:
    """(case, mode, side) -> seconds of every timed call, the sides in
    alternating order from round to round."""
    times = {}
    for r in range(args.rounds):
        sides = ('official', 'ours') if r % 2 == 0 else ('ours', 'official')
        for case in args.cases:
            for mode in args.modes:
                for side in sides:
                    key = (case, mode, side)
                    times.setdefault(key, []).extend(run_worker(
                        args, side, case, mode, files[case][side],
                        files[case]['image']))
                    print(f'round {r + 1}: {case} {mode} {side}: '
                          f'{times[key][-args.iters:]}', flush=True)
    return times


def medians(times: dict) -> list:
    """``(case, mode, official median, our median)`` rows."""
    rows = []
    for case in CASES:
        for mode in MODES:
            if (case, mode, 'official') in times:
                rows.append((case, mode,
                             statistics.median(times[(case, mode, 'official')]),
                             statistics.median(times[(case, mode, 'ours')])))
    return rows


def table(times: dict) -> str:
    lines = ['| pipeline | call | official (s) | this package (s) | '
             'official / ours |', '|---|---|---:|---:|---:|']
    for case, mode, off, ours in medians(times):
        lines.append(f'| {case} | {mode} | {off:.2f} | {ours:.2f} | '
                     f'{off / ours:.2f} |')
    return '\n'.join(lines)


def chart(results: dict, path: str) -> None:
    """One bar per pipeline and call: official seconds / ours (above the
    dashed 1.0 line: this package is faster)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = medians(results['times'])
    labels = [f'{case.split("_")[0]}\n{mode}' for case, mode, _, _ in rows]
    ratios = [off / ours for _, _, off, ours in rows]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bars = ax.bar(labels, ratios, color=['#1f77b4', '#e6550d'] * len(rows))
    ax.bar_label(bars, fmt='%.2f')
    ax.axhline(1.0, ls='--', c='k', lw=1, label='1.0: as fast as official')
    ax.set_ylabel('official time / our time')
    ax.set_ylim(0, max(ratios) * 1.2)
    meta = results['meta']
    ax.set_title('Whole pipeline, PoolFormer-S12: official code vs this '
                 f'package\n{meta["date"]}, {meta["threads"]} threads, '
                 'median of alternating processes', fontsize=9)
    ax.legend(loc='lower right', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='See the module docstring for what is timed.')
    parser.add_argument('--poolformer', help='checkout of '
                        'github.com/sail-sg/poolformer (needed to time)')
    parser.add_argument('--official-python', default=OFFICIAL_PYTHON,
                        help='python of the official environment '
                        '(default: %(default)s)')
    parser.add_argument('--cases', nargs='+', choices=sorted(CASES),
                        default=sorted(CASES), help='pipelines (default: all)')
    parser.add_argument('--modes', nargs='+', choices=MODES, default=MODES,
                        help='what to time (default: both)')
    parser.add_argument('--rounds', type=int, default=2,
                        help='alternating process pairs per measurement '
                        '(default: %(default)s)')
    parser.add_argument('--iters', type=int, default=3,
                        help='timed calls per process after one warm-up '
                        '(default: %(default)s)')
    parser.add_argument('--threads', type=int, default=2,
                        help='intra-op threads of each side (default: '
                        '%(default)s)')
    parser.add_argument('--out', help='also write the figures as JSON here')
    parser.add_argument('--chart', help='also draw the chart (PNG) here')
    parser.add_argument('--from', dest='results', help='time nothing: '
                        'print the table (and --chart) of a JSON file '
                        'written by --out')
    parser.add_argument('--worker', choices=('official', 'ours'),
                        dest='side', help=argparse.SUPPRESS)
    for name in ('--case', '--mode', '--checkpoint', '--image'):
        parser.add_argument(name, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.side:
        return worker(args)
    if args.results:
        return report(args, load_results(args.results))
    if not args.poolformer or not osp.isdir(args.poolformer):
        raise SystemExit(f'--poolformer: {args.poolformer!r} is not a '
                         'checkout of github.com/sail-sg/poolformer')
    if not osp.isfile(args.official_python):
        raise SystemExit(f'--official-python: {args.official_python} does not '
                         'exist (run tools/references/setup_official_env.sh)')
    load = os.getloadavg()[0]
    date = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    with tempfile.TemporaryDirectory() as tmp:
        times = measure(args, prepare(args, tmp))
    meta = dict(date=date, threads=args.threads, rounds=args.rounds,
                iters=args.iters, load_before=round(load, 2),
                load_after=round(os.getloadavg()[0], 2))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(meta=meta, times={' '.join(k): v for k, v in
                                             times.items()}), f, indent=1)
    report(args, dict(meta=meta, times=times))


def load_results(path: str) -> dict:
    with open(path) as f:
        results = json.load(f)
    results['times'] = {tuple(k.split(' ')): v
                        for k, v in results['times'].items()}
    return results


def report(args, results: dict) -> None:
    meta = results['meta']
    print(f'{meta["date"]}: load average before {meta["load_before"]}, '
          f'after {meta["load_after"]}; {meta["threads"]} threads per side, '
          f'{meta["rounds"]} rounds x {meta["iters"]} calls')
    print(table(results['times']))
    if args.chart:
        chart(results, args.chart)
        print(f'wrote {args.chart}')


if __name__ == '__main__':
    main()
