"""Timing one case: the output agreement, one step of a model, interleaved
rounds, profiles and graph breaks, and what the figures were measured on."""
import contextlib
import datetime
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .cases import Case, size_label


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


# ---------------------------------------------------------------- machine
def load_average() -> Optional[Tuple[float, float, float]]:
    """The 1, 5 and 15 minute load averages (None where unavailable)."""
    try:
        return tuple(round(v, 2) for v in os.getloadavg())
    except OSError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform``)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _peer_versions() -> Dict[str, str]:
    """timm's (from the benchmark site) and mmcv's versions, or why not."""
    versions = {}
    for package in ('timm', 'mmcv'):
        try:
            if package == 'timm':
                from peers import import_timm
                versions[package] = import_timm().__version__
            else:
                versions[package] = __import__(package).__version__
        except ImportError as error:
            versions[package] = f'missing ({error})'
    return versions


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
    info.update(_peer_versions())
    return info


# ---------------------------------------------------------------- steps
def autocast(precision: str, device_type: str):
    """``torch.autocast`` for ``'bf16'`` / ``'fp16'``, nothing for fp32."""
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
def _build_models(case: Case, size: Tuple[int, int], args):
    """Ours and (unless ``args.no_peer`` or none exists) the peer on the
    same weights, on ``args.device``, and a seeded input of ``size``.

    Returns:
        tuple: ``({'ours': ..., ['peer': ...]}, comparable, x)``.
    """
    import torch

    from peers import build_case_models
    device = torch.device(args.device)
    torch.manual_seed(0)
    ours, peer, comparable = build_case_models(
        case.ours, case.arch, case.kwargs,
        None if args.no_peer else case.peer)
    models = {'ours': ours.to(device)}
    if peer is not None:
        models['peer'] = peer.to(device)
    x = torch.randn(1, 3, *size, device=device)
    return models, comparable, x


def _check_agreement(result: dict, models: dict, x, reference: dict,
                     precisions: Sequence[str]) -> None:
    """Fill ``result['agreement']`` and ``result['dtypes']``: float32 ours
    vs the peer (when comparable), every lower precision vs the same model
    in float32."""
    if result['comparable']:
        result['agreement']['ours/fp32'] = rel_error(reference['ours'],
                                                     reference['peer'])
    for name, model in models.items():
        for precision in (p for p in precisions if p != 'fp32'):
            outs = run_outputs(model, x, precision)
            result['agreement'][f'{name}/{precision}'] = rel_error(
                outs, reference[name])
            result['dtypes'][f'{name}/{precision}'] = sorted(
                {str(o.dtype).replace('torch.', '') for o in outs})


def _compile_ours(result: dict, ours, x, reference, explain: bool):
    """``torch.compile`` of ours: its compile time, agreement with eager
    float32 and (``explain``) graph breaks go into ``result``."""
    import torch
    compiled = torch.compile(ours)
    start = time.perf_counter()
    outs = run_outputs(compiled, x, 'fp32')
    result['compile_s'] = time.perf_counter() - start
    result['agreement']['ours+compile/fp32'] = rel_error(outs, reference)
    if explain:
        result['graph_breaks'] = graph_breaks(ours, x)
    return compiled


def bench_case(case: Case, size: Tuple[int, int], args) -> dict:
    """Agreement and timings of every variant of ``case`` at ``size``.

    Args:
        args (argparse.Namespace): ``device``, ``no_peer``, ``precisions``,
            ``modes``, ``compile``, ``sizes`` (graph breaks at the first),
            ``rounds``, ``warmup`` and ``profile`` (rows, 0 for none).
    """
    models, comparable, x = _build_models(case, size, args)
    result = dict(case=case.name, size=size_label(size),
                  peer=case.peer_label if 'peer' in models else None,
                  comparable=comparable, agreement={}, dtypes={},
                  timings={})
    reference = {name: run_outputs(m, x, 'fp32') for name, m in
                 models.items()}
    _check_agreement(result, models, x, reference, args.precisions)
    if args.compile:
        models['ours+compile'] = _compile_ours(
            result, models['ours'], x, reference['ours'],
            explain=size == args.sizes[0])
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
