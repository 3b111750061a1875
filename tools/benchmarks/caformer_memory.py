"""Peak memory and time of CAFormer forward + backward at detection size,
with and without gradient checkpointing (``with_cp``).

At 1x3x800x1333 CAFormer's stage 2 holds 50x84 = 4,200 tokens and runs
global attention on them (PyTorch's fused scaled-dot-product attention, so
no 4,200 x 4,200 matrix per head is stored). Each setting runs in a fresh
process (train mode, default output norms, loss = sum of the mean of each
returned map) and reports:

* ``saved_MiB``: the activations kept for the backward pass, counted once
  per storage: the tensors autograd saves (``saved_tensors_hooks``; inside a
  checkpointed block nothing is saved) plus the input of every block (what a
  checkpointed block keeps to recompute itself); independent of the
  allocator;
* ``peak_MiB``: on CUDA ``torch.cuda.max_memory_allocated`` during the step
  minus the memory allocated before it; on CPU the growth of the process's
  peak resident set size (``ru_maxrss``) over the resident size just before
  the first step (includes allocator and temporary buffers);
* ``fwd_bwd_s``: wall time of one forward + backward, median of ``--repeats``
  runs after ``--warmup`` runs.

Example::

    python tools/benchmarks/caformer_memory.py               # s18, 800x1333
    python tools/benchmarks/caformer_memory.py --threads 2 --repeats 3
    python tools/benchmarks/caformer_memory.py --device cuda
"""
import argparse
import json
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize()


def run_one(args) -> dict:
    """Child process: measure one setting, print the result as JSON."""
    sys.path.insert(0, REPO)
    import torch

    from mmmetaformer.models.backbones import CAFormer

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = CAFormer(args.arch, with_cp=args.with_cp).to(device).train()
    x = torch.randn(args.batch, 3, *args.size, device=device)

    def step():
        outs = model(x)
        loss = sum(o.float().mean() for o in outs)
        loss.backward()
        model.zero_grad(set_to_none=True)

    # peak first, in the fresh process (on CPU, memory freed later stays
    # partly resident and would hide the next step's growth)
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        base = _rss_bytes()
        step()
        # ru_maxrss is in KiB on Linux
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base

    # activation memory kept for backward, counted once per storage: what
    # autograd saves outside checkpointed blocks, plus the block inputs
    # (what a checkpointed block keeps to recompute itself)
    storages = {}

    def count(t):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    hooks = [
        block.register_forward_pre_hook(lambda m, inputs: count(inputs[0]))
        for stage in model.stages for block in stage.blocks
    ]
    with torch.autograd.graph.saved_tensors_hooks(count, lambda t: t):
        outs = model(x)
    storages.pop(x.untyped_storage().data_ptr(), None)  # the input itself
    saved = sum(storages.values())
    for hook in hooks:
        hook.remove()
    del outs, storages
    times = []
    for i in range(args.warmup - 1 + args.repeats):  # the step above warmed up
        if device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        if i >= args.warmup - 1:
            times.append(time.perf_counter() - start)
    result = dict(
        arch=args.arch,
        with_cp=args.with_cp,
        device=str(device),
        threads=torch.get_num_threads(),
        input=[args.batch, 3, *args.size],
        saved_MiB=saved / 2**20,
        peak_MiB=peak / 2**20,
        fwd_bwd_s=statistics.median(times),
        times=times)
    print('RESULT ' + json.dumps(result))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', default='s18')
    parser.add_argument('--size', type=int, nargs=2, default=(800, 1333),
                        metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch threads (0: torch default)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--with-cp', action='store_true',
                        help=argparse.SUPPRESS)  # child process only
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warmup < 1 or args.repeats < 1:
        parser.error('--warmup and --repeats must be >= 1')
    if args.child:
        run_one(args)
        return

    results = []
    for with_cp in (False, True):
        cmd = [
            sys.executable, osp.abspath(__file__), '--child', '--arch',
            args.arch, '--size', *map(str, args.size), '--batch',
            str(args.batch), '--device', args.device, '--threads',
            str(args.threads), '--warmup', str(args.warmup), '--repeats',
            str(args.repeats)
        ] + (['--with-cp'] if with_cp else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        line = [ln for ln in out.stdout.splitlines()
                if ln.startswith('RESULT ')][-1]
        results.append(json.loads(line[len('RESULT '):]))

    head = (f'CAFormer-{args.arch.upper()} forward+backward, input '
            f'{args.batch}x3x{args.size[0]}x{args.size[1]}, {args.device}, '
            f'{results[0]["threads"]} threads')
    print(head)
    print(f'{"with_cp":>8} {"saved_MiB":>10} {"peak_MiB":>10} '
          f'{"fwd_bwd_s":>10}  runs_s')
    for r in results:
        runs = ', '.join(f'{t:.2f}' for t in r['times'])
        print(f'{str(r["with_cp"]):>8} {r["saved_MiB"]:10.0f} '
              f'{r["peak_MiB"]:10.0f} {r["fwd_bwd_s"]:10.2f}  [{runs}]')
    plain, ckpt = results
    print(f'with_cp: saved activations '
          f'x{ckpt["saved_MiB"] / plain["saved_MiB"]:.3f}'
          f', peak x{ckpt["peak_MiB"] / plain["peak_MiB"]:.3f}'
          f', time x{ckpt["fwd_bwd_s"] / plain["fwd_bwd_s"]:.2f}')


if __name__ == '__main__':
    main()
