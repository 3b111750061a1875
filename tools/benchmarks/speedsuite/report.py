"""The suite's report: speed-ups, the markdown tables (``speed.md``, the
README block), the console lines."""
from typing import List, Optional

from .cases import MODES
from .timing import ratio

README_START = '<!-- speed:start -->'
README_END = '<!-- speed:end -->'
#: Where ``--readme`` copies the chart and the run's ``speed.json`` (the
#: chart's data), relative to the README's folder.
CHART_IN_REPO = 'tools/benchmarks/results/speed.png'
RESULTS_IN_REPO = 'tools/benchmarks/results/speed.json'
#: The columns of the timing table (``markdown_tables``; the chart reads
#: tables written with them back, :mod:`.chart`).
TIMING_COLUMNS = ('case', 'size', 'step', 'peer', 'peer fp32 ms',
                  'ours fp32 ms', 'speed-up fp32', 'ours bf16 ms',
                  'speed-up bf16', 'peer bf16 ms', 'agreement fp32 / bf16')


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


def _row(cells) -> str:
    return '| ' + ' | '.join(str(c) for c in cells) + ' |'


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


def _header(env: dict) -> List[str]:
    return [
        f'Measured {env["date"]} on {env["cpu"]} ({env["cpu_count"]} '
        f'logical CPUs), {env["threads"]} threads, device {env["device"]}, '
        f'torch {env["torch"]}, timm {env["timm"]}, mmcv {env["mmcv"]}; '
        f'load average (1, 5, 15 min) {env["load_average_start"]} at the '
        f'start, {env.get("load_average_end")} at the end. Batch 1. Times: '
        f'median (minimum) in ms over {env.get("rounds")} interleaved '
        f'rounds. Speed-up: the peer\'s float32 time over the variant\'s '
        f'(above 1: faster than the peer); for cases whose peer is another '
        f'model, over our own float32 time. Agreement: worst relative L2 '
        f'error `||a - b|| / ||b||` over the maps, float32 ours vs the '
        f'peer, bf16 vs the same model in float32.', ''
    ]


def _timing_rows(r: dict) -> List[str]:
    """The table's rows of one case and size (one per mode timed)."""
    if 'error' in r:
        return [f'| {r["case"]} | {r.get("size", "-")} | - | - | '
                f'{r["error"]} | | | | | | |']
    rows, t = [], r['timings']
    for mode in MODES:
        if f'ours/fp32/{mode}' not in t and f'ours/bf16/{mode}' not in t:
            continue
        s = speedups(r, mode)
        agree = r['agreement']
        rows.append(_row([
            r['case'], r['size'], mode, r['peer'] or '-',
            _ms(t.get(f'peer/fp32/{mode}')), _ms(t.get(f'ours/fp32/{mode}')),
            _x(s.get('ours/fp32')) if r['comparable'] else '-',
            _ms(t.get(f'ours/bf16/{mode}')), _x(s.get('ours/bf16')),
            _ms(t.get(f'peer/bf16/{mode}')),
            f'{_err(agree.get("ours/fp32"))} / {_err(agree.get("ours/bf16"))}'
        ]))
    return rows


def _compile_rows(compiled: List[dict]) -> List[str]:
    lines = ['', '**torch.compile** (inductor) of ours, float32:', '',
             '| case | size | compile s | infer speed-up vs eager | '
             'train speed-up vs eager | agreement | graph breaks |',
             '|---|---|---|---|---|---|---|']
    for r in compiled:
        breaks = r.get('graph_breaks')
        text = '-' if not breaks else (
            f'{breaks["breaks"]} ({"; ".join(breaks["reasons"])})'
            if breaks['breaks'] else '0')
        lines.append(_row([
            r['case'], r['size'], f'{r["compile_s"]:.0f}',
            _x(compiled_speedup(r['timings'], 'infer')),
            _x(compiled_speedup(r['timings'], 'train')),
            _err(r['agreement'].get('ours+compile/fp32')), text
        ]))
    return lines


def _memory_rows(memory: List[dict]) -> List[str]:
    lines = ['', '**Training-step memory** of ours, float32 (peak: '
             'allocated bytes during the step over those before it; RSS '
             'growth: resident high-water mark over the RSS before the step, '
             'not allocated bytes; saved activations: counted, not measured; '
             'first step s: its wall time, sampling included):', '',
             '| case | size | with_cp | peak MiB | measured by | RSS '
             'growth MiB | saved activations MiB | first step s |',
             '|' + '---|' * 8]
    for m in memory:
        if 'error' in m:
            lines.append(f'| {m["case"]} | - | {m["with_cp"]} | '
                         f'{m["error"]} | | | | |')
            continue
        rss = m.get('rss_growth_MiB')
        lines.append(_row([
            m['case'], m['size'], m['with_cp'], f'{m["peak_MiB"]:.0f}',
            m.get('peak_by', '-'), '-' if rss is None else f'{rss:.0f}',
            f'{m["saved_MiB"]:.0f}', f'{m["step_s"]:.1f}'
        ]))
    return lines


def markdown_tables(env: dict, results: List[dict],
                    memory: List[dict]) -> str:
    """The report as markdown (what ``--readme`` writes)."""
    lines = _header(env)
    lines += [_row(TIMING_COLUMNS), '|' + '---|' * len(TIMING_COLUMNS)]
    for r in results:
        lines += _timing_rows(r)
    compiled = [r for r in results if 'compile_s' in r]
    if compiled:
        lines += _compile_rows(compiled)
    if memory:
        lines += _memory_rows(memory)
    return '\n'.join(lines) + '\n'


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


def _variant_note(r: dict, variant: str) -> str:
    """The agreement (and mixed dtypes) printed next to a variant's time."""
    agree, note = r['agreement'], ''
    if variant in agree:
        note = f'agreement {agree[variant]:.1e}'
        if variant == 'ours/fp32':
            note += ' vs peer'
        elif variant != 'peer/fp32':
            note += ' vs own fp32'
    if variant in r['dtypes'] and len(r['dtypes'][variant]) > 1:
        note += f' MIXED DTYPES {r["dtypes"][variant]}'
    return note


def print_result(r: dict) -> None:
    """The console lines of one case and size."""
    if 'error' in r:
        print(f'  {r["case"]} {r.get("size", "")}: SKIPPED: {r["error"]}')
        return
    print(f'  {r["case"]} {r["size"]} (peer: {r["peer"]}):')
    for mode in MODES:
        s = speedups(r, mode)
        for key, timing in r['timings'].items():
            if not key.endswith('/' + mode):
                continue
            variant = key.rsplit('/', 1)[0]
            print(f'    {mode:5s} {variant:18s} median '
                  f'{timing["median_ms"]:8.1f} ms  min '
                  f'{timing["min_ms"]:8.1f} ms  cpu '
                  f'{timing["cpu_median_ms"]:8.1f} ms  '
                  f'speed-up {_x(s.get(variant)):18s} '
                  f'{_variant_note(r, variant)}')
    if 'graph_breaks' in r:
        g = r['graph_breaks']
        print(f'    torch.compile: {r["compile_s"]:.0f} s to compile; '
              f'{g["graphs"]} graph(s), {g["breaks"]} break(s) '
              f'{g["reasons"]}')
