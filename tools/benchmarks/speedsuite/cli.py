"""The speed suite's command line (``tools/benchmarks/speed.py``): the
options, what runs, and the files written."""
import argparse
import json
import os
import os.path as osp
import re
import shutil
import time

from .cases import (CASE_NAMES, DEFAULT_PRECISIONS, MODES, PRECISIONS,
                    parse_size, select_cases, size_label)
from .chart import load_rows, measured_note, render_chart, write_chart
from .memory import bench_memory, memory_child
from .report import (CHART_IN_REPO, RESULTS_IN_REPO, markdown_tables,
                     print_result, update_readme)
from .timing import bench_case, environment, load_average

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

DESCRIPTION = """\
Speed suite: every backbone family against its peer, same weights, same run.

For each case (one arch per family) and input size (batch 1) it builds this
package's backbone ("ours") and its peer on the same weights: timm for
PoolFormer v1/v2, ConvFormer and CAFormer; the literal official formulation
for ResT/ResTv2; mmcv's compiled deform_conv2d for CycleMLP; CAFormer-S18 as
a yard-stick for families without one (ratios there are to our own float32).
It times inference (eval, no_grad) and a training step (forward + backward),
in float32 and under torch.autocast (bf16), optionally torch.compile-d. All
variants take turns (--warmup runs each, then --rounds rounds with the
starting variant rotating); it prints medians and minima, the ratios
peer / ours (above 1: ours is faster) and the output agreement (relative L2
error: float32 ours vs the peer, bf16 vs the same model in float32).
Nothing is asserted: run it for reporting only on a quiet machine (the load
average is printed at the start and the end)."""

EPILOG = """\
outputs (in --out-dir):
  speed.json  every run (environment, results, memory)
  speed.md    the tables (median (minimum) ms, speed-ups, agreement)
  speed.png   the speed-ups, one panel per question: float32 vs the peer's
              float32, bf16 vs the peer's float32, and bf16 vs our own
              float32 for cases without a peer computing the same function
  with --readme FILE: the tables between <!-- speed:start --> and
  <!-- speed:end --> of FILE; speed.json and the chart copied to
  RESULTS and CHART of FILE's repository
  (the chart's data: --chart-from RESULTS redraws it)

set-up (once; timm outside the virtual environment):
  bash tools/benchmarks/setup_bench.sh

examples:
  # quick (about 5-10 minutes on 2 idle cores): two families, 512x512
  python tools/benchmarks/speed.py --cases poolformerv2_s12 convformer_s18 \\
      --sizes 512x512 --rounds 3
  # full (every case, both sizes, memory, compile; hours on 2 cores)
  python tools/benchmarks/speed.py --threads 2 --rounds 5 --memory \\
      --compile --readme README.md
  # training-step memory of CAFormer-S18 at 800x1216, with_cp off / on
  python tools/benchmarks/speed.py --cases caformer_s18 --memory-only
  # the chart again from the table in README.md, timing nothing
  python tools/benchmarks/speed.py --chart-from README.md \\
      --out-dir tools/benchmarks/results""".replace(
          'CHART', CHART_IN_REPO).replace('RESULTS', RESULTS_IN_REPO)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('what is timed')
    group.add_argument('--cases', nargs='+', metavar='CASE',
                       help='cases to run, in suite order whatever the '
                       f'order given (default: all): {", ".join(CASE_NAMES)}')
    group.add_argument('--sizes', nargs='+', type=parse_size,
                       default=[(512, 512), (800, 1216)], metavar='HxW',
                       help='input sizes in pixels, HxW or S for SxS, each '
                       'side >= 32 (default: 512x512 800x1216)')
    group.add_argument('--first-size-only', nargs='+', default=[],
                       metavar='CASE', help='cases timed at the first '
                       '--sizes entry only, to keep a full run short '
                       '(default: none)')
    group.add_argument('--modes', nargs='+', choices=MODES,
                       default=list(MODES), help='infer: one eval forward '
                       'under no_grad; train: forward + backward of the sum '
                       'of the maps\' means (default: infer train)')
    group.add_argument('--precisions', nargs='+', choices=PRECISIONS,
                       default=list(DEFAULT_PRECISIONS), help='fp32, or '
                       'torch.autocast to bfloat16 (bf16) / float16 (fp16, '
                       'CUDA\'s AMP) (default: fp32 bf16)')
    group.add_argument('--no-peer', action='store_true',
                       help='time ours only (default: ours and the peer)')
    group.add_argument('--compile', action='store_true',
                       help='also time torch.compile (inductor) of ours in '
                       'float32 and report graph breaks (default: off)')
    group.add_argument('--freezing', action='store_true',
                       help='with --compile: inductor\'s weight freezing '
                       '(constant-folded, prepacked weights; inference) '
                       '(default: off)')


def _add_timing_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('how it is timed')
    group.add_argument('--rounds', type=int, default=5,
                       help='interleaved timed rounds, every variant once a '
                       'round, the first one rotating (>= 1, default: 5)')
    group.add_argument('--warmup', type=int, default=1,
                       help='untimed runs of each variant before the rounds '
                       '(>= 0, default: 1)')
    group.add_argument('--threads', type=int, default=None,
                       help='torch threads, of the memory children too '
                       '(>= 1, default: torch\'s default)')
    group.add_argument('--device', default='cpu', metavar='DEVICE',
                       help='cpu, cuda or cuda:<index> (default: cpu)')
    group.add_argument('--profile', type=int, default=0, metavar='ROWS',
                       help='after timing, print a torch.profiler table of '
                       'one step of every variant: its ROWS operators with '
                       'the most self CPU time (default: 0, no profile)')


def _add_memory_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('training-step memory of ours')
    group.add_argument('--memory', action='store_true',
                       help='peak memory of one float32 training step '
                       'without and with with_cp, a fresh process each '
                       '(default: off)')
    group.add_argument('--memory-only', action='store_true',
                       help='the memory measurement only, no timings '
                       '(default: off; implies --memory)')
    group.add_argument('--memory-cases', nargs='+', metavar='CASE',
                       help='with --memory: the cases measured (default: '
                       'every selected case)')
    group.add_argument('--memory-size', type=parse_size, default=(800, 1216),
                       metavar='HxW', help='input size of the memory step in '
                       'pixels (default: 800x1216)')
    group.add_argument('--memory-child', help=argparse.SUPPRESS)
    group.add_argument('--with-cp', action='store_true',
                       help=argparse.SUPPRESS)


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('outputs')
    group.add_argument('--out-dir', default=osp.join(REPO, 'work_dirs',
                                                      'speed'),
                       help='folder of speed.{json,md,png} (default: '
                       'work_dirs/speed of the repository)')
    group.add_argument('--readme', metavar='README.md',
                       help='also write the tables into this file\'s speed '
                       'block, and speed.json and the chart to '
                       f'{RESULTS_IN_REPO} and {CHART_IN_REPO} of its '
                       'repository (default: off)')
    group.add_argument('--chart-from', metavar='FILE',
                       help='time nothing: draw --out-dir/speed.png again '
                       'from stored results, a speed.json of this suite or '
                       'a markdown file holding its table (e.g. README.md) '
                       '(default: off, run the suite)')


def build_parser() -> argparse.ArgumentParser:
    """The suite's options, every one with its unit, default and choices."""
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_options(parser)
    _add_timing_options(parser)
    _add_memory_options(parser)
    _add_output_options(parser)
    return parser


def _check(parser: argparse.ArgumentParser, args) -> None:
    """Errors (naming the option) for values the parser cannot check."""
    if args.rounds < 1 or args.warmup < 0:
        parser.error('--rounds must be >= 1 and --warmup >= 0')
    if args.threads is not None and args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    if args.profile < 0:
        parser.error(f'--profile must be >= 0 rows, got {args.profile}')
    if not re.fullmatch(r'cpu|cuda(:\d+)?', args.device):
        parser.error(f'--device must be cpu, cuda or cuda:<index>, got '
                     f'{args.device!r}')
    if args.freezing and not args.compile:
        parser.error('--freezing needs --compile')
    clashes = [option for option, value in (
        ('--readme', args.readme), ('--memory', args.memory),
        ('--memory-only', args.memory_only), ('--compile', args.compile))
               if value]
    if args.chart_from and clashes:
        parser.error(f'--chart-from times nothing: it does not go with '
                     f'{", ".join(clashes)}')


def parse_args(argv=None):
    """The options, checked; ``selected`` holds the cases to run."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    try:
        args.selected = select_cases(args.cases)
        for option in ('first_size_only', 'memory_cases'):
            select_cases(getattr(args, option) or None)
    except ValueError as error:
        parser.error(str(error))
    return args


def run_cases(args) -> tuple:
    """Time every selected case at its sizes (and its memory with
    ``--memory``), printing as it goes; (results, memory)."""
    results, memory = [], []
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
    return results, memory


def repository_of(readme: str) -> str:
    """The nearest folder at or above ``readme``'s that holds
    ``tools/benchmarks`` (the repository, also for a page in ``docs/``),
    else ``readme``'s own folder."""
    folder = start = osp.dirname(osp.abspath(readme))
    while not osp.isdir(osp.join(folder, 'tools', 'benchmarks')):
        if osp.dirname(folder) == folder:
            return start
        folder = osp.dirname(folder)
    return folder


def write_outputs(args, env: dict, results: list, memory: list) -> None:
    """speed.{json,md,png} in ``--out-dir``; with ``--readme``, the README's
    speed block, and speed.json and the chart in ``tools/benchmarks/results``
    of its repository (:func:`repository_of`), linked from the block."""
    os.makedirs(args.out_dir, exist_ok=True)
    body = markdown_tables(env, results, memory)
    with open(osp.join(args.out_dir, 'speed.json'), 'w') as f:
        json.dump(dict(environment=env, results=results, memory=memory), f,
                  indent=1)
    with open(osp.join(args.out_dir, 'speed.md'), 'w') as f:
        f.write(body)
    chart = osp.join(args.out_dir, 'speed.png')
    problem = write_chart(results, chart, measured_note(env))
    print(f'wrote {args.out_dir}/speed.{{json,md' +
          (',png}' if problem is None else f'}} ({problem})'))
    if not args.readme:
        return
    folder = repository_of(args.readme)
    copies = [('speed.json', RESULTS_IN_REPO)]
    if problem is None:
        copies.append(('speed.png', CHART_IN_REPO))
        link = osp.relpath(osp.join(folder, CHART_IN_REPO),
                           osp.dirname(osp.abspath(args.readme)))
        body += f'\n![speed-ups]({link.replace(osp.sep, "/")})\n'
    for name, target in copies:
        os.makedirs(osp.dirname(osp.join(folder, target)), exist_ok=True)
        shutil.copyfile(osp.join(args.out_dir, name),
                        osp.join(folder, target))
    update_readme(args.readme, body)
    print(f'updated {args.readme}; copied ' +
          ', '.join(target for _, target in copies))


def redraw_chart(args) -> int:
    """``--chart-from``: the chart of stored results, nothing timed."""
    rows, note = load_rows(args.chart_from)
    os.makedirs(args.out_dir, exist_ok=True)
    chart = osp.join(args.out_dir, 'speed.png')
    problem = render_chart(rows, chart, note)
    print(problem or f'wrote {chart} from {args.chart_from} '
          f'({len(rows)} rows)')
    return 1 if problem else 0


def main(argv=None) -> int:
    """Run the suite (see ``--help``); 0 when done."""
    args = parse_args(argv)
    if args.chart_from:
        return redraw_chart(args)
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
    if args.memory_only:
        args.memory, args.sizes = True, []
    if args.freezing:
        import torch._inductor.config as inductor_config
        inductor_config.freezing = True
    env['compile_freezing'] = args.freezing
    results, memory = run_cases(args)
    env['load_average_end'] = load_average()
    print(f'load average at the end: {env["load_average_end"]}')
    write_outputs(args, env, results, memory)
    return 0
