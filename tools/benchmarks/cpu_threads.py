"""Training speed on CPU with and without
:func:`mmmetaformer.launch.configure_cpu_threads`.

Trains a config (default: RetinaNet + PoolFormer-S12, random init) on
generated demo data for a few iterations, once per setting, each in a fresh
process:

* ``as-configured``: torch's default threads (all CPUs) and the config's
  own dataloader workers (mmdet/mmseg: 2, persistent), what a plain
  ``Runner`` does;
* ``configured``: threads and workers from ``configure_cpu_threads`` (what
  ``tools/train.py`` and the demo use).

Prints the median and mean seconds per iteration (after warm-up
iterations) for each, and the ratio. Settings alternate over ``--rounds`` so
that load changes on a shared machine affect both alike.

Example::

    python tools/benchmarks/cpu_threads.py --iters 12 --rounds 2
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_one(args) -> None:
    """Child process: train and print per-iteration times as JSON."""
    sys.path.insert(0, REPO)
    from mmengine.runner import Runner

    import mmmetaformer  # noqa: F401
    from mmmetaformer.runner.cpu_setup import configure_cpu_threads
    from tests.test_configs.utils import tiny_config

    cfg = tiny_config(
        args.config,
        args.data,
        args.work_dir,
        scale=tuple(args.scale),
        crop=tuple(args.scale),
        batch_size=args.batch_size)
    cfg.train_dataloader.update(
        num_workers=args.workers, persistent_workers=args.workers > 0)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.iters)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1000)
    cfg.log_level = 'WARNING'
    if args.setting == 'configured':
        info = configure_cpu_threads(cfg)
    else:
        import torch
        info = dict(num_threads=torch.get_num_threads())
    runner = Runner.from_cfg(cfg)
    runner.train()
    times = runner.message_hub.get_scalar('train/time').data[0].tolist()
    print('RESULT ' + json.dumps(
        dict(
            setting=args.setting,
            threads=info['num_threads'],
            workers=cfg.train_dataloader.num_workers,
            times=times)))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--config', default='configs/retinanet_poolformer_s12.py',
        help='config trained, relative to the repository (default: '
        'configs/retinanet_poolformer_s12.py)')
    parser.add_argument('--iters', type=int, default=12,
                        help='training iterations per run (default: 12)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='iterations left out of the statistics '
                        '(default: 2)')
    parser.add_argument('--rounds', type=int, default=2,
                        help='runs of each setting, alternating (default: '
                        '2)')
    parser.add_argument('--scale', type=int, nargs=2, default=(320, 256),
                        help='train image scale and crop in pixels (w h) '
                        '(default: 320 256)')
    parser.add_argument('--batch-size', type=int, default=2,
                        help='images per iteration (default: 2)')
    parser.add_argument('--workers', type=int, default=2,
                        help='the config\'s dataloader workers (mmdet/mmseg '
                        'default: 2)')
    parser.add_argument('--setting', choices=['as-configured', 'configured'],
                        help=argparse.SUPPRESS)
    parser.add_argument('--data', help=argparse.SUPPRESS)
    parser.add_argument('--work-dir', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_setting(args, setting: str, data: str, work_dir: str) -> dict:
    """One child process training with ``setting``; its ``RESULT`` with
    the warm-up iterations dropped. Exits with the child's output if it
    failed."""
    cmd = [
        sys.executable, __file__, '--setting', setting, '--data', data,
        '--work-dir', work_dir, '--config', args.config, '--iters',
        str(args.iters), '--scale', *map(str, args.scale), '--batch-size',
        str(args.batch_size), '--workers', str(args.workers)
    ]
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                         text=True)
    line = [x for x in out.stdout.splitlines() if x.startswith('RESULT ')]
    if out.returncode or not line:
        sys.exit(f'{setting} failed:\n{out.stdout[-3000:]}\n'
                 f'{out.stderr[-3000:]}')
    res = json.loads(line[0][len('RESULT '):])
    res['times'] = res['times'][args.warmup:]
    return res


def print_summary(results: dict) -> None:
    """Median and mean seconds per iteration of each setting, the ratio."""
    summary = {}
    for setting, runs in results.items():
        times = [t for run in runs for t in run['times']]
        summary[setting] = statistics.median(times)
        print(f'{setting:13s} threads={runs[0]["threads"]} '
              f'workers={runs[0]["workers"]}: median '
              f'{statistics.median(times):.3f} s/iter, mean '
              f'{statistics.mean(times):.3f} s/iter over {len(times)} iters')
    print(f'as-configured / configured = '
          f'{summary["as-configured"] / summary["configured"]:.2f}x')


def main(argv=None):
    args = parse_args(argv)
    if args.setting:
        run_one(args)
        return

    sys.path.insert(0, REPO)
    from mmmetaformer.demo import generate_demo_data
    tmp = tempfile.mkdtemp(prefix='cpu_threads_')
    data = osp.join(tmp, 'data')
    generate_demo_data(data, num_train=64, num_val=2, datasets=['coco', 'ade'])
    print(f'CPUs available: {len(os.sched_getaffinity(0))}, load average: '
          f'{os.getloadavg()}')
    results = {'as-configured': [], 'configured': []}
    for r in range(args.rounds):
        for setting in results:
            res = run_setting(args, setting, data,
                              osp.join(tmp, f'{setting}{r}'))
            results[setting].append(res)
            print(f'round {r} {setting:13s} threads={res["threads"]} '
                  f'workers={res["workers"]}: median '
                  f'{statistics.median(res["times"]):.3f} s/iter')
    print_summary(results)


if __name__ == '__main__':
    main()
