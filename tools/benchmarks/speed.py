"""Speed suite: every backbone family against its peer, same weights, same run.

For each case (one arch per family, see ``CASES``) and each input size, the
suite builds this package's backbone ("ours") and its peer on the same
weights (``peers.py``: timm for PoolFormer v1/v2, ConvFormer and CAFormer;
the literal official formulation for ResT/ResTv2; CycleMLP with mmcv's
compiled ``deform_conv2d``; CAFormer-S18 of this package as a yard-stick for
families without an external implementation), and times

* ``infer``: one forward in eval mode under ``torch.no_grad``;
* ``train``: one training step, forward in train mode + backward of
  ``sum(mean(map))`` over the returned maps (gradients dropped after it),

each in float32 and under ``torch.autocast(<device>, dtype=torch.bfloat16)``
(``bf16``), optionally also ``torch.compile``-d (``--compile``, inductor).
All variants of one case and size take turns: ``--warmup`` runs each, then
``--rounds`` rounds in which every variant runs once (the starting variant
rotating), so load changes on a shared machine hit all of them alike. The
suite prints medians and minima of the wall time (and the median process CPU
time), the ratios ``peer / ours`` (above 1: ours is faster) and, next to
each figure, the output agreement: float32 ours vs the peer, and every
bf16 / compiled variant vs the same model in float32 (relative L2 error
``||a - b|| / ||b||`` of each map, the worst map). A bf16 variant that
returns maps of mixed dtypes is flagged.

``--memory`` adds the memory of one training step of ours at
``--memory-size`` (default 800x1216) without and with ``with_cp`` (fresh
process each, the step first in it):

* ``peak MiB``: the step's peak of allocated bytes over those allocated
  before it. On CUDA ``torch.cuda.max_memory_allocated``; on CPU the bytes in
  use by glibc's ``malloc`` (``mallinfo2``: ``uordblks + hblkhd``), read
  around every aten operator of the forward, backward and checkpoint
  recomputation (a ``TorchDispatchMode``). Without ``mallinfo2`` (not
  glibc) the column holds the RSS growth below instead, and ``measured by``
  says so.
* ``RSS growth MiB`` (CPU): the resident set size's high-water mark
  (``ru_maxrss``) over the RSS before the step. Not allocated bytes: glibc
  keeps freed pages resident and the build already raised the mark, so it
  barely tells ``with_cp`` apart.
* ``saved activations MiB``: a count, not a measurement: the tensors
  autograd keeps for the backward pass outside checkpointed blocks plus
  every block's input, once per storage, parameters excluded.

Outputs in ``--out-dir`` (default ``work_dirs/speed``): ``speed.json`` (all
runs), ``speed.md`` (the tables) and ``speed.png`` (a bar chart of the
speed-ups). ``--readme README.md`` also writes the tables into the README
between ``<!-- speed:start -->`` and ``<!-- speed:end -->`` and copies the
chart to ``tools/benchmarks/results/speed.png``.

Set-up (once; timm goes outside the virtual environment, nothing in it
changes)::

    bash tools/benchmarks/setup_bench.sh

Examples::

    # quick (about 5-10 minutes on 2 idle cores): two families, 512x512
    python tools/benchmarks/speed.py --cases poolformerv2_s12 convformer_s18 \\
        --sizes 512x512 --rounds 3

    # full (every case, both sizes, memory, compile; hours on 2 cores)
    python tools/benchmarks/speed.py --rounds 5 --memory --compile \\
        --readme README.md

    # training-step memory of CAFormer-S18 at 800x1216, with_cp off / on
    python tools/benchmarks/speed.py --cases caformer_s18 --memory-only

Timings are not tests: nothing here asserts a speed. Run the suite for
reporting only on a quiet machine; the header prints the load average at the
start and the end.
"""
import argparse
import contextlib
import datetime
import json
import os
import os.path as osp
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.dirname(osp.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

README_START = '<!-- speed:start -->'
README_END = '<!-- speed:end -->'
CHART_IN_REPO = 'tools/benchmarks/results/speed.png'


@dataclass(frozen=True)
class Case:
    """One backbone of this package and its peer.

    Attributes:
        name (str): Case name (``--cases``).
        ours (str): Registered backbone name.
        arch (str): Arch of ours.
        peer (str | None): Peer spec for :func:`peers.build_case_models`.
        peer_label (str): How the peer is named in tables.
        kwargs (dict): Constructor arguments of ours (``out_norm=None`` where
            the peer returns the raw stage outputs).
    """
    name: str
    ours: str
    arch: str
    peer: Optional[str]
    peer_label: str
    kwargs: dict = field(default_factory=dict)


_RAW = dict(out_norm=None)
_YARDSTICK = 'model:CAFormer:s18'
CASES = [
    Case('poolformer_s12', 'PoolFormer', 's12', 'timm:poolformer_s12', 'timm',
         _RAW),
    Case('poolformerv2_s12', 'PoolFormerV2', 's12', 'timm:poolformerv2_s12',
         'timm', _RAW),
    Case('convformer_s18', 'ConvFormer', 's18', 'timm:convformer_s18', 'timm',
         _RAW),
    Case('caformer_s18', 'CAFormer', 's18', 'timm:caformer_s18', 'timm',
         _RAW),
    Case('identityformer_s12', 'IdentityFormer', 's12', None, '-', _RAW),
    Case('randformer_s12', 'RandFormer', 's12', None, '-', _RAW),
    Case('rest_lite', 'ResT', 'lite', 'rest_official', 'official'),
    Case('restv2_tiny', 'ResTV2', 'tiny', 'rest_official', 'official'),
    Case('cyclemlp_b1', 'CycleMLP', 'b1', 'mmcv_deform', 'mmcv deform'),
    Case('pit_s', 'PiT', 's', _YARDSTICK, 'CAFormer-S18'),
    Case('mlpmixer_b16', 'MLPMixer', 'b16', _YARDSTICK, 'CAFormer-S18'),
    Case('resmlp_s12', 'ResMLP', 's12', _YARDSTICK, 'CAFormer-S18'),
]
CASE_NAMES = [c.name for c in CASES]
MODES = ('infer', 'train')
PRECISIONS = ('fp32', 'bf16', 'fp16')
#: The suite's default: float16 autocast is CUDA's AMP (``gpu_check.py``).
DEFAULT_PRECISIONS = ('fp32', 'bf16')


# ---------------------------------------------------------------- helpers
def parse_size(text: str) -> Tuple[int, int]:
    """``'512x512'`` or ``'512'`` -> (H, W)."""
    parts = text.lower().split('x')
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 32:
        raise argparse.ArgumentTypeError(
            f'a size is HxW (or S for SxS) with H, W >= 32, got {text!r}')
    return values[0], values[1]


def size_label(size: Sequence[int]) -> str:
    return f'{size[0]}x{size[1]}'


def rel_error(outs, refs) -> float:
    """Worst over the maps of the relative L2 error ``||a - b|| / ||b||``
    (float64)."""
    if len(outs) != len(refs):
        raise ValueError(f'{len(outs)} maps vs {len(refs)} reference maps')
    worst = 0.0
    for a, b in zip(outs, refs):
        if tuple(a.shape) != tuple(b.shape):
            raise ValueError(f'map shapes differ: {tuple(a.shape)} vs '
                             f'{tuple(b.shape)}')
        a, b = a.detach().double(), b.detach().double()
        scale = b.norm().item()
        diff = (a - b).norm().item()
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst


def summarize(times: Sequence[float]) -> dict:
    """Median and minimum of a list of seconds, in milliseconds."""
    return dict(median_ms=statistics.median(times) * 1e3,
                min_ms=min(times) * 1e3, runs=len(times))


def ratio(slow: Optional[dict], fast: Optional[dict]) -> Optional[dict]:
    """``slow / fast`` by medians and by minima (above 1: fast is faster)."""
    if not slow or not fast:
        return None
    return dict(median=slow['median_ms'] / fast['median_ms'],
                min=slow['min_ms'] / fast['min_ms'])


def load_average() -> Optional[Tuple[float, float, float]]:
    try:
        return tuple(round(v, 2) for v in os.getloadavg())
    except OSError:
        return None


def cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(threads: int, device: str) -> dict:
    """What the figures were measured on."""
    import torch
    info = dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC'),
        host=platform.node(),
        cpu=cpu_model(),
        cpu_count=os.cpu_count(),
        threads=threads,
        device=device,
        python=platform.python_version(),
        torch=torch.__version__,
        load_average_start=load_average())
    if device.startswith('cuda'):
        info['gpu'] = torch.cuda.get_device_name(device)
    for package in ('timm', 'mmcv'):
        try:
            if package == 'timm':
                from peers import import_timm
                info[package] = import_timm().__version__
            else:
                info[package] = __import__(package).__version__
        except ImportError as error:
            info[package] = f'missing ({error})'
    return info


# ---------------------------------------------------------------- steps
def autocast(precision: str, device_type: str):
    import torch
    if precision in ('bf16', 'fp16'):
        dtype = torch.bfloat16 if precision == 'bf16' else torch.float16
        return torch.autocast(device_type, dtype=dtype)
    return contextlib.nullcontext()


def run_outputs(model, x, precision: str):
    """Eval-mode outputs of ``model`` (a tuple of maps)."""
    import torch
    model.eval()
    with torch.no_grad(), autocast(precision, x.device.type):
        outs = model(x)
    return tuple(outs)


def make_step(model, x, mode: str, precision: str) -> Callable[[], None]:
    """One inference forward or one training step of ``model`` on ``x``."""
    import torch
    params = [p for p in model.parameters() if p.requires_grad]
    device_type = x.device.type

    if mode == 'infer':

        def step():
            model.eval()
            with torch.no_grad(), autocast(precision, device_type):
                model(x)
    else:

        def step():
            model.train()
            with autocast(precision, device_type):
                outs = model(x)
                loss = sum(o.float().mean() for o in outs)
            loss.backward()
            for p in params:
                p.grad = None

    if device_type != 'cuda':
        return step

    def synced():
        step()
        torch.cuda.synchronize()

    return synced


@dataclass
class Variant:
    """One timed configuration of one model."""
    model: str  # 'ours', 'peer' or 'ours+compile'
    precision: str
    mode: str
    step: Callable[[], None]
    wall: List[float] = field(default_factory=list)
    cpu: List[float] = field(default_factory=list)
    warmup_s: float = 0.0

    @property
    def key(self) -> str:
        return f'{self.model}/{self.precision}/{self.mode}'


def time_interleaved(variants: Sequence[Variant], rounds: int,
                     warmup: int) -> None:
    """Fill ``wall`` / ``cpu`` of every variant: ``warmup`` runs each, then
    ``rounds`` rounds of one run each, the starting variant rotating."""
    for v in variants:
        start = time.perf_counter()
        for _ in range(warmup):
            v.step()
        v.warmup_s = time.perf_counter() - start
    n = len(variants)
    for r in range(rounds):
        for k in range(n):
            v = variants[(r + k) % n]
            wall, cpu = time.perf_counter(), time.process_time()
            v.step()
            v.wall.append(time.perf_counter() - wall)
            v.cpu.append(time.process_time() - cpu)


def profile_table(step: Callable[[], None], rows: int) -> str:
    """``torch.profiler`` table of one ``step``: the ``rows`` operators with
    the most self CPU time (casts show up as ``aten::to`` / ``aten::copy_``,
    float32 fallbacks as float32 kernels in a bf16 step)."""
    import torch
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    return prof.key_averages().table(
        sort_by='self_cpu_time_total', row_limit=rows,
        max_name_column_width=40)


def graph_breaks(model, x) -> dict:
    """``torch._dynamo.explain`` of the eval forward: graphs, breaks and
    their reasons (deduplicated)."""
    import torch
    torch._dynamo.reset()
    model.eval()
    with torch.no_grad():
        explained = torch._dynamo.explain(model)(x)
    reasons = []
    for reason in explained.break_reasons:
        text = str(getattr(reason, 'reason', reason)).strip().splitlines()[0]
        if text not in reasons:
            reasons.append(text)
    torch._dynamo.reset()
    return dict(graphs=explained.graph_count,
                breaks=explained.graph_break_count, reasons=reasons)


# ---------------------------------------------------------------- one case
def bench_case(case: Case, size: Tuple[int, int], args) -> dict:
    """Agreement and timings of every variant of ``case`` at ``size``."""
    import torch

    from peers import build_case_models
    device = torch.device(args.device)
    torch.manual_seed(0)
    ours, peer, comparable = build_case_models(case.ours, case.arch,
                                               case.kwargs,
                                               None if args.no_peer else
                                               case.peer)
    ours.to(device)
    if peer is not None:
        peer.to(device)
    x = torch.randn(1, 3, *size, device=device)
    models = {'ours': ours}
    if peer is not None:
        models['peer'] = peer
    result = dict(case=case.name, size=size_label(size),
                  peer=case.peer_label if peer is not None else None,
                  comparable=comparable, agreement={}, dtypes={},
                  timings={})

    reference = {name: run_outputs(m, x, 'fp32') for name, m in
                 models.items()}
    if comparable:
        result['agreement']['ours/fp32'] = rel_error(reference['ours'],
                                                     reference['peer'])
    low = [p for p in args.precisions if p != 'fp32']
    for name, model in models.items():
        for precision in low:
            outs = run_outputs(model, x, precision)
            result['agreement'][f'{name}/{precision}'] = rel_error(
                outs, reference[name])
            result['dtypes'][f'{name}/{precision}'] = sorted(
                {str(o.dtype).replace('torch.', '') for o in outs})

    if args.compile:
        compiled = torch.compile(ours)
        start = time.perf_counter()
        outs = run_outputs(compiled, x, 'fp32')
        result['compile_s'] = time.perf_counter() - start
        result['agreement']['ours+compile/fp32'] = rel_error(
            outs, reference['ours'])
        if size == args.sizes[0]:
            result['graph_breaks'] = graph_breaks(ours, x)
        models['ours+compile'] = compiled

    variants = [
        Variant(name, precision, mode,
                make_step(model, x, mode, precision))
        for mode in args.modes for precision in args.precisions
        for name, model in models.items()
    ]
    time_interleaved(variants, args.rounds, args.warmup)
    if args.profile:
        for v in variants:
            print(f'  profile of {case.name} {size_label(size)} {v.key} '
                  '(one step, by self CPU time):')
            print(profile_table(v.step, args.profile))
    for v in variants:
        result['timings'][v.key] = dict(
            summarize(v.wall), cpu_median_ms=statistics.median(v.cpu) * 1e3,
            warmup_s=v.warmup_s)
    return result


# ---------------------------------------------------------------- memory
MALLINFO2_LABEL = 'malloc in-use (glibc mallinfo2), sampled around aten ops'
RSS_LABEL = 'RSS high-water growth (no mallinfo2: not allocated bytes)'
CUDA_LABEL = 'torch.cuda.max_memory_allocated'


def _rss_bytes() -> int:
    """Resident set size of this process now (``/proc/self/statm``)."""
    import resource
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


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
        step (Callable[[], None]): One training step (see
            :func:`make_step`).
        device_type (str): ``'cpu'`` or ``'cuda'``.

    Returns:
        dict: ``peak_MiB`` (the step's peak over the memory before it),
        ``peak_by`` (how it was measured), ``rss_growth_MiB`` (CPU only,
        else None) and ``step_s`` (the wall time of the step, sampling
        included).
    """
    import resource

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    if device_type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        start = time.perf_counter()
        step()
        seconds = time.perf_counter() - start
        return dict(peak_MiB=(torch.cuda.max_memory_allocated() - base) /
                    2**20, peak_by=CUDA_LABEL, rss_growth_MiB=None,
                    step_s=seconds)

    in_use = malloc_in_use_reader()
    rss_base = _rss_bytes()
    if in_use is None:
        start = time.perf_counter()
        step()
        seconds = time.perf_counter() - start
        peak = peak_by = None
    else:
        samples = [in_use()]

        class Sampler(TorchDispatchMode):

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                samples[0] = max(samples[0], in_use())
                out = func(*args, **(kwargs or {}))
                samples[0] = max(samples[0], in_use())
                return out

        base = samples[0]
        start = time.perf_counter()
        with Sampler():
            step()
        seconds = time.perf_counter() - start
        peak, peak_by = (samples[0] - base) / 2**20, MALLINFO2_LABEL
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 -
                  rss_base) / 2**20
    if peak is None:
        peak, peak_by = rss_growth, RSS_LABEL
    return dict(peak_MiB=peak, peak_by=peak_by, rss_growth_MiB=rss_growth,
                step_s=seconds)


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
            sys.executable,
            osp.abspath(__file__), '--memory-child', case.name,
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


# ---------------------------------------------------------------- report
def _ms(timing: Optional[dict]) -> str:
    if not timing:
        return '-'
    return f'{timing["median_ms"]:.0f} ({timing["min_ms"]:.0f})'


def _x(r: Optional[dict]) -> str:
    if not r:
        return '-'
    return f'{r["median"]:.2f}x ({r["min"]:.2f}x)'


def _err(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.1e}'


def speedups(result: dict, mode: str) -> dict:
    """Ratios of one case / size / mode: baseline time over each variant's
    (the baseline is the peer in fp32, or ours in fp32 when the peer is not
    the same function)."""
    t = result['timings']
    base_key = 'peer/fp32/' if result['comparable'] else 'ours/fp32/'
    base = t.get(base_key + mode)
    return {
        key.rsplit('/', 1)[0]: ratio(base, timing)
        for key, timing in t.items() if key.endswith('/' + mode)
    }


def compiled_speedup(timings: dict, mode: str) -> Optional[dict]:
    """Eager float32 time of ours over its compiled float32 time."""
    return ratio(timings.get(f'ours/fp32/{mode}'),
                 timings.get(f'ours+compile/fp32/{mode}'))


def markdown_tables(env: dict, results: List[dict],
                    memory: List[dict]) -> str:
    """The report as markdown (what ``--readme`` writes)."""
    lines = []
    load_end = env.get('load_average_end')
    lines.append(
        f'Measured {env["date"]} on {env["cpu"]} ({env["cpu_count"]} '
        f'logical CPUs), {env["threads"]} threads, device {env["device"]}, '
        f'torch {env["torch"]}, timm {env["timm"]}, mmcv {env["mmcv"]}; '
        f'load average (1, 5, 15 min) {env["load_average_start"]} at the '
        f'start, {load_end} at the end. Batch 1. Times: median (minimum) '
        f'in ms over {env.get("rounds")} interleaved rounds. Speed-up: the '
        f'peer\'s float32 time over the variant\'s (above 1: faster than '
        f'the peer); for cases whose peer is another model, over our own '
        f'float32 time. Agreement: worst relative L2 error '
        f'`||a - b|| / ||b||` over the maps, float32 ours vs the peer, '
        f'bf16 vs the same model in float32.')
    lines.append('')
    lines.append('| case | size | step | peer | peer fp32 ms | ours fp32 ms '
                 '| speed-up fp32 | ours bf16 ms | speed-up bf16 | peer bf16 '
                 'ms | agreement fp32 / bf16 |')
    lines.append('|' + '---|' * 11)
    for r in results:
        if 'error' in r:
            lines.append(f'| {r["case"]} | {r.get("size", "-")} | - | - | '
                         f'{r["error"]} | | | | | | |')
            continue
        for mode in MODES:
            t = r['timings']
            if f'ours/fp32/{mode}' not in t and \
                    f'ours/bf16/{mode}' not in t:
                continue
            s = speedups(r, mode)
            comparable = r['comparable']
            peer_fp32 = t.get(f'peer/fp32/{mode}')
            lines.append(
                f'| {r["case"]} | {r["size"]} | {mode} | {r["peer"] or "-"} '
                f'| {_ms(peer_fp32)} | {_ms(t.get(f"ours/fp32/{mode}"))} | '
                f'{_x(s.get("ours/fp32")) if comparable else "-"} | '
                f'{_ms(t.get(f"ours/bf16/{mode}"))} | '
                f'{_x(s.get("ours/bf16"))} | '
                f'{_ms(t.get(f"peer/bf16/{mode}"))} | '
                f'{_err(r["agreement"].get("ours/fp32"))} / '
                f'{_err(r["agreement"].get("ours/bf16"))} |')
    compiled = [r for r in results if 'compile_s' in r]
    if compiled:
        lines += ['', '**torch.compile** (inductor) of ours, float32:', '',
                  '| case | size | compile s | infer speed-up vs eager | '
                  'train speed-up vs eager | agreement | graph breaks |',
                  '|---|---|---|---|---|---|---|']
        for r in compiled:
            t = r['timings']
            breaks = r.get('graph_breaks')
            text = '-' if not breaks else (
                f'{breaks["breaks"]} ({"; ".join(breaks["reasons"])})'
                if breaks['breaks'] else '0')
            lines.append(
                f'| {r["case"]} | {r["size"]} | {r["compile_s"]:.0f} | '
                f'{_x(compiled_speedup(t, "infer"))} | '
                f'{_x(compiled_speedup(t, "train"))} | '
                f'{_err(r["agreement"].get("ours+compile/fp32"))} | {text} |')
    if memory:
        lines += ['', '**Training-step memory** of ours, float32 (peak: '
                  'allocated bytes during the step over those before it; '
                  'RSS growth: resident high-water mark over the RSS before '
                  'the step, not allocated bytes; saved activations: '
                  'counted, not measured; first step s: its wall time, '
                  'sampling included):', '',
                  '| case | size | with_cp | peak MiB | measured by | RSS '
                  'growth MiB | saved activations MiB | first step s |',
                  '|' + '---|' * 8]
        for m in memory:
            if 'error' in m:
                lines.append(f'| {m["case"]} | - | {m["with_cp"]} | '
                             f'{m["error"]} | | | | |')
                continue
            rss = m.get('rss_growth_MiB')
            lines.append(f'| {m["case"]} | {m["size"]} | {m["with_cp"]} | '
                         f'{m["peak_MiB"]:.0f} | {m.get("peak_by", "-")} | '
                         f'{"-" if rss is None else f"{rss:.0f}"} | '
                         f'{m["saved_MiB"]:.0f} | {m["step_s"]:.1f} |')
    return '\n'.join(lines) + '\n'


def write_chart(results: List[dict], path: str) -> Optional[str]:
    """Bar chart of the speed-ups (medians), one panel per mode and size."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError as error:
        return f'no chart ({error})'
    panels = []
    for r in results:
        if 'error' in r:
            continue
        for mode in MODES:
            if any(k.endswith('/' + mode) for k in r['timings']):
                if (mode, r['size']) not in panels:
                    panels.append((mode, r['size']))
    if not panels:
        return 'no chart (no timings)'
    series = ['ours/fp32', 'ours/bf16', 'peer/bf16', 'ours+compile/fp32']
    colours = ['tab:blue', 'tab:orange', 'tab:gray', 'tab:green']
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(11, 3.2 * len(panels)), squeeze=False)
    for ax, (mode, size) in zip(axes[:, 0], panels):
        rows = [r for r in results if 'error' not in r and r['size'] == size]
        names = [r['case'] for r in rows]
        width = 0.8 / len(series)
        for k, (label, colour) in enumerate(zip(series, colours)):
            values = []
            for r in rows:
                s = speedups(r, mode).get(label)
                if label == 'ours/fp32' and not r['comparable']:
                    s = None
                values.append(s['median'] if s else 0.0)
            ax.bar([i + (k - 1.5) * width for i in range(len(rows))], values,
                   width, label=label, color=colour)
        ax.axhline(1.0, color='black', linewidth=0.8)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(names, rotation=20, fontsize=8)
        ax.set_ylabel('speed-up')
        ax.set_title(f'{mode}, {size}: peer fp32 time / variant time '
                     '(own fp32 where the peer is another model)',
                     fontsize=9)
        ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


def update_readme(readme: str, body: str) -> None:
    """Replace the text between the speed markers of ``readme``.

    Raises:
        ValueError: The markers are missing or out of order.
    """
    with open(readme) as f:
        text = f.read()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f'{readme} has no {README_START} ... {README_END} '
                         'block to replace.')
    generated = (f'{README_START}\n<!-- Generated by tools/benchmarks/'
                 f'speed.py --readme; do not edit by hand. -->\n\n{body}\n')
    with open(readme, 'w') as f:
        f.write(text[:start] + generated + text[end:])


def print_result(r: dict) -> None:
    if 'error' in r:
        print(f'  {r["case"]} {r.get("size", "")}: SKIPPED: {r["error"]}')
        return
    agree = r['agreement']
    print(f'  {r["case"]} {r["size"]} (peer: {r["peer"]}):')
    for mode in MODES:
        s = speedups(r, mode)
        for key, timing in r['timings'].items():
            if not key.endswith('/' + mode):
                continue
            variant = key.rsplit('/', 1)[0]
            note = ''
            if variant in agree:
                note = f'agreement {agree[variant]:.1e}'
                if variant == 'ours/fp32':
                    note += ' vs peer'
                elif variant != 'peer/fp32':
                    note += ' vs own fp32'
            if variant in r['dtypes'] and len(r['dtypes'][variant]) > 1:
                note += f' MIXED DTYPES {r["dtypes"][variant]}'
            sp = s.get(variant)
            print(f'    {mode:5s} {variant:18s} median '
                  f'{timing["median_ms"]:8.1f} ms  min '
                  f'{timing["min_ms"]:8.1f} ms  cpu '
                  f'{timing["cpu_median_ms"]:8.1f} ms  '
                  f'speed-up {_x(sp):18s} {note}')
    if 'graph_breaks' in r:
        g = r['graph_breaks']
        print(f'    torch.compile: {r["compile_s"]:.0f} s to compile; '
              f'{g["graphs"]} graph(s), {g["breaks"]} break(s) '
              f'{g["reasons"]}')


# ---------------------------------------------------------------- main
def select_cases(names: Optional[Sequence[str]]) -> List[Case]:
    """The cases named (all when None), in suite order.

    Raises:
        ValueError: An unknown name, with the valid ones.
    """
    if not names:
        return list(CASES)
    unknown = [n for n in names if n not in CASE_NAMES]
    if unknown:
        raise ValueError(f'Unknown case(s) {unknown}; valid choices are '
                         f'{CASE_NAMES}.')
    return [c for c in CASES if c.name in names]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cases', nargs='+', metavar='CASE',
                        help=f'cases to run (default all): {CASE_NAMES}')
    parser.add_argument('--sizes', nargs='+', type=parse_size,
                        default=[(512, 512), (800, 1216)],
                        help='input sizes HxW (default 512x512 800x1216)')
    parser.add_argument('--modes', nargs='+', choices=MODES,
                        default=list(MODES))
    parser.add_argument('--precisions', nargs='+', choices=PRECISIONS,
                        default=list(DEFAULT_PRECISIONS))
    parser.add_argument('--rounds', type=int, default=5,
                        help='interleaved timed rounds (default 5)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed runs of each variant first (default 1)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch\'s default)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    parser.add_argument('--no-peer', action='store_true',
                        help='time ours only')
    parser.add_argument('--compile', action='store_true',
                        help='also time torch.compile (inductor) of ours in '
                        'float32 and report graph breaks')
    parser.add_argument('--freezing', action='store_true',
                        help='with --compile: inductor\'s weight freezing '
                        '(constant-folded, prepacked weights; inference)')
    parser.add_argument('--first-size-only', nargs='+', default=[],
                        metavar='CASE', help='cases timed at the first '
                        '--sizes entry only (keeps a full run short)')
    parser.add_argument('--memory-cases', nargs='+', metavar='CASE',
                        help='with --memory: the cases measured (default: '
                        'every selected case)')
    parser.add_argument('--profile', type=int, default=0, metavar='ROWS',
                        help='after timing, print a torch.profiler table '
                        '(ROWS operators) of one step of every variant')
    parser.add_argument('--memory', action='store_true',
                        help='peak training-step memory with and without '
                        'with_cp (fresh process each)')
    parser.add_argument('--memory-only', action='store_true',
                        help='only the memory measurement (no timings)')
    parser.add_argument('--memory-size', type=parse_size, default=(800, 1216))
    parser.add_argument('--out-dir', default=osp.join(REPO, 'work_dirs',
                                                       'speed'))
    parser.add_argument('--readme', metavar='README.md',
                        help='write the tables into this README\'s speed '
                        f'block and the chart to {CHART_IN_REPO} next to it')
    parser.add_argument('--memory-child', help=argparse.SUPPRESS)
    parser.add_argument('--with-cp', action='store_true',
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error('--rounds must be >= 1 and --warmup >= 0')
    try:
        args.selected = select_cases(args.cases)
        for option in ('first_size_only', 'memory_cases'):
            select_cases(getattr(args, option) or None)
    except ValueError as error:
        parser.error(str(error))
    if args.freezing and not args.compile:
        parser.error('--freezing needs --compile')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    if args.memory_child:
        memory_child(args)
        return 0

    env = environment(args.threads, args.device)
    env['rounds'] = args.rounds
    print('Speed suite: ' + ', '.join(f'{k} {v}' for k, v in env.items()))
    results, memory = [], []
    if args.memory_only:
        args.memory, args.sizes = True, []
    if args.freezing:
        import torch._inductor.config as inductor_config
        inductor_config.freezing = True
    env['compile_freezing'] = args.freezing
    for case in args.selected:
        sizes = (args.sizes[:1] if case.name in args.first_size_only else
                 args.sizes)
        for size in sizes:
            start = time.perf_counter()
            try:
                result = bench_case(case, size, args)
            except Exception as error:  # a case that cannot run is reported
                result = dict(case=case.name, size=size_label(size),
                              error=f'{type(error).__name__}: {error}'
                              .splitlines()[0])
            result['elapsed_s'] = time.perf_counter() - start
            results.append(result)
            print_result(result)
            print(f'    ({result["elapsed_s"]:.0f} s)', flush=True)
        if args.memory and (args.memory_cases is None
                            or case.name in args.memory_cases):
            memory += bench_memory(case, args)
            for m in memory[-2:]:
                print(f'  memory {m}', flush=True)
    env['load_average_end'] = load_average()
    print(f'load average at the end: {env["load_average_end"]}')

    os.makedirs(args.out_dir, exist_ok=True)
    body = markdown_tables(env, results, memory)
    with open(osp.join(args.out_dir, 'speed.json'), 'w') as f:
        json.dump(dict(environment=env, results=results, memory=memory), f,
                  indent=1)
    with open(osp.join(args.out_dir, 'speed.md'), 'w') as f:
        f.write(body)
    chart = osp.join(args.out_dir, 'speed.png')
    problem = write_chart(results, chart)
    print(f'wrote {args.out_dir}/speed.{{json,md' +
          (',png}' if problem is None else f'}} ({problem})'))
    if args.readme:
        if problem is None:
            target = osp.join(osp.dirname(osp.abspath(args.readme)),
                              CHART_IN_REPO)
            os.makedirs(osp.dirname(target), exist_ok=True)
            shutil.copyfile(chart, target)
            body += f'\n![speed-ups]({CHART_IN_REPO})\n'
        update_readme(args.readme, body)
        print(f'updated {args.readme}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
