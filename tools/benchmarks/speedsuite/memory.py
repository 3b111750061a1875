"""The memory of one training step of ours: the peak (CUDA's allocator, or
glibc's bytes in use sampled around every aten operator), the growth of the
resident set, and the activations kept for the backward pass (counted).
Each setting runs in a fresh process (``speed.py --memory-child``)."""
import json
import os.path as osp
import subprocess
import sys
import time
from typing import Callable, List, Optional, Tuple

from .cases import CASES, Case, size_label

#: The command line the children run (``--memory-child``).
SPEED_SCRIPT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                        'speed.py')
MALLINFO2_LABEL = 'malloc in-use (glibc mallinfo2), sampled around aten ops'
RSS_LABEL = 'RSS high-water growth (no mallinfo2: not allocated bytes)'
CUDA_LABEL = 'torch.cuda.max_memory_allocated'


def _rss_bytes() -> int:
    """Resident set size of this process now (``/proc/self/statm``)."""
    import resource
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _max_rss_bytes() -> int:
    """The resident set size's high-water mark (``ru_maxrss``, KiB)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def malloc_in_use_reader() -> Optional[Callable[[], int]]:
    """A function returning the bytes glibc's ``malloc`` has handed out and
    not yet freed, or None without glibc's ``mallinfo2`` (glibc < 2.33,
    musl, macOS, Windows).

    In use = ``uordblks`` (bytes of allocated chunks in every arena) +
    ``hblkhd`` (bytes of chunks served by ``mmap``, large tensors). Unlike
    the resident set size, it drops as soon as a tensor is freed: glibc
    keeping freed pages resident does not count.
    """
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks',
            'fsmblks', 'uordblks', 'fordblks', 'keepcost')]

    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    mallinfo2.restype = MallInfo2
    mallinfo2.argtypes = []

    def in_use() -> int:
        info = mallinfo2()
        return info.uordblks + info.hblkhd

    return in_use


def _timed(step: Callable[[], None]) -> float:
    """Run ``step`` once; its wall time in seconds."""
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def _cuda_step_memory(step: Callable[[], None]) -> dict:
    """CUDA: the allocator's peak during ``step`` over the bytes before."""
    import torch
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    seconds = _timed(step)
    return dict(peak_MiB=(torch.cuda.max_memory_allocated() - base) / 2**20,
                peak_by=CUDA_LABEL, rss_growth_MiB=None, step_s=seconds)


def _sampled_peak(step: Callable[[], None],
                  in_use: Callable[[], int]) -> Tuple[float, float]:
    """Run ``step`` reading ``in_use()`` before and after every aten
    operator; (the maximum over the bytes before, in MiB; seconds)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    samples = [in_use()]

    class Sampler(TorchDispatchMode):

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            samples[0] = max(samples[0], in_use())
            out = func(*args, **(kwargs or {}))
            samples[0] = max(samples[0], in_use())
            return out

    base = samples[0]
    with Sampler():
        seconds = _timed(step)
    return (samples[0] - base) / 2**20, seconds


def step_memory(step: Callable[[], None], device_type: str) -> dict:
    """Run ``step`` once and measure its peak memory.

    * CUDA: ``torch.cuda.max_memory_allocated`` during the step minus the
      bytes allocated before it (``peak_by`` ``CUDA_LABEL``).
    * CPU with glibc: the bytes in use by ``malloc`` (see
      :func:`malloc_in_use_reader`; torch's CPU tensors are allocated
      there), read before and after every aten operator of the step,
      forward, backward and checkpoint recomputation alike (a
      ``TorchDispatchMode``); the maximum minus the bytes in use before the
      step (``peak_by`` ``MALLINFO2_LABEL``). A temporary buffer that an
      operator allocates and frees inside itself is not seen; everything
      that outlives one operator (activations, saved tensors, gradients)
      is, and so are one-off allocations of a process's first step (oneDNN
      kernels, thread pools: a few MiB).
    * CPU without ``mallinfo2``: the growth of the resident set size's
      high-water mark (``ru_maxrss``) over the resident set size before the
      step, labelled ``RSS_LABEL``. It is an upper bound only in a fresh
      process and hides memory reused after frees: not the same quantity.

    On CPU the RSS growth is reported as well (``rss_growth_MiB``); it
    depends on what the process did before and on glibc returning freed
    pages, so with and without ``with_cp`` it can look alike.

    Args:
        step (Callable[[], None]): One training step (``make_step``).
        device_type (str): ``'cpu'`` or ``'cuda'``.

    Returns:
        dict: ``peak_MiB`` (the step's peak over the memory before it),
        ``peak_by`` (how it was measured), ``rss_growth_MiB`` (CPU only,
        else None) and ``step_s`` (the wall time of the step, sampling
        included).
    """
    if device_type == 'cuda':
        return _cuda_step_memory(step)
    in_use = malloc_in_use_reader()
    rss_base = _rss_bytes()
    if in_use is None:
        peak, seconds = None, _timed(step)
    else:
        peak, seconds = _sampled_peak(step, in_use)
    rss_growth = (_max_rss_bytes() - rss_base) / 2**20
    peak_by = MALLINFO2_LABEL if peak is not None else RSS_LABEL
    return dict(peak_MiB=rss_growth if peak is None else peak,
                peak_by=peak_by, rss_growth_MiB=rss_growth, step_s=seconds)


def saved_activation_bytes(model, x) -> int:
    """Bytes of the activations one training forward of ``model`` keeps for
    the backward pass, once per storage: what autograd saves outside
    checkpointed blocks plus every block's input (what a checkpointed block
    keeps to recompute itself); the input ``x``, the parameters and the
    buffers (saved by linear layers and norms, but allocated before the
    step) not counted. A count, not a measurement of memory:
    :func:`step_memory` measures.

    Args:
        model (nn.Module): A backbone with ``stages``, each with ``blocks``.
        x (Tensor): The input.
    """
    import torch
    storages = {}

    def count(t):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    hooks = [
        block.register_forward_pre_hook(lambda m, inputs: count(inputs[0]))
        for stage in model.stages for block in stage.blocks
    ]
    try:
        with torch.autograd.graph.saved_tensors_hooks(count, lambda t: t):
            outs = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    del outs
    for t in (x, *model.parameters(), *model.buffers()):
        storages.pop(t.untyped_storage().data_ptr(), None)
    return sum(storages.values())


def memory_child(args) -> None:
    """Child process (``--memory-child CASE``): memory of one training step
    of ours (float32, gradients of every parameter) at ``--memory-size``,
    ``--with-cp`` or not. The step runs first, in the fresh process, and is
    measured by :func:`step_memory`; then the saved activations are counted
    (:func:`saved_activation_bytes`). Prints one ``RESULT {json}`` line:
    ``peak_MiB``, ``peak_by``, ``rss_growth_MiB``, ``saved_MiB``,
    ``step_s``."""
    import torch

    from peers import build_ours

    from .timing import make_step
    case = {c.name: c for c in CASES}[args.memory_child]
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = build_ours(case.ours, case.arch, with_cp=args.with_cp,
                       **case.kwargs).to(device).train()
    x = torch.randn(1, 3, *args.memory_size, device=device)
    measured = step_memory(make_step(model, x, 'train', 'fp32'), device.type)
    saved = saved_activation_bytes(model, x)
    print('RESULT ' + json.dumps(
        dict(case=case.name, with_cp=args.with_cp,
             size=size_label(args.memory_size), **measured,
             saved_MiB=saved / 2**20)))


def bench_memory(case: Case, args) -> List[dict]:
    """Training-step memory of ours at ``args.memory_size`` without and with
    ``with_cp``, each in a fresh process (:func:`memory_child`).

    Args:
        case (Case): The case (ours is measured, not the peer).
        args (argparse.Namespace): ``memory_size``, ``threads``, ``device``.

    Returns:
        list[dict]: Two results (``with_cp`` False, True): the child's
        ``RESULT`` (see :func:`memory_child`), or ``case``, ``with_cp`` and
        ``error`` (the child's last line of output) when the child failed.
    """
    results = []
    for with_cp in (False, True):
        cmd = [
            sys.executable, SPEED_SCRIPT, '--memory-child', case.name,
            '--memory-size', size_label(args.memory_size), '--threads',
            str(args.threads), '--device', args.device
        ] + (['--with-cp'] if with_cp else [])
        done = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in done.stdout.splitlines()
                 if ln.startswith('RESULT ')]
        if done.returncode or not lines:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            results.append(dict(case=case.name, with_cp=with_cp,
                                error=' '.join(tail)))
            continue
        results.append(json.loads(lines[-1][len('RESULT '):]))
    return results
