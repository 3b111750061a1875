"""The chart of the speed-ups: one panel per question, each bar a figure of
the timing table's speed-up columns (medians).

* float32: ours vs the peer in float32 (cases whose peer computes the same
  function: timm, the official formulation, mmcv's deformable convolution);
* bf16 autocast: ours in bf16 vs the peer in float32 (the same cases);
* bf16 autocast vs our own float32, for the cases without such a peer
  (no peer, or another model as a yard-stick).

A panel without data is left out. Each panel marks 1.0 (the baseline's
time); its bars are the modes and sizes timed. The rows come from the
results of a run (:func:`speedup_rows`) or from a stored table
(:func:`load_rows`: a ``speed.json``, or a markdown file holding the table
``markdown_tables`` writes, e.g. the README's speed block), so a chart can
be drawn again without timing anything.
"""
import json
from typing import List, Optional, Tuple

from .cases import MODES
from .report import TIMING_COLUMNS, _header, _row, speedups

#: (key, panel title, y label, the baseline, rows it holds: comparable or
#: not).
PANELS = (
    ('fp32', 'float32: ours vs the peer in float32 (above 1: ours faster)',
     'peer fp32 time / ours fp32 time', 'the peer in float32', True),
    ('bf16', 'bf16 autocast: ours in bf16 vs the peer in float32 (above 1: '
     'ours faster)', 'peer fp32 time / ours bf16 time', 'the peer in float32',
     True),
    ('bf16', 'bf16 autocast vs our own float32, cases without a peer '
     'computing the same function (above 1: bf16 faster)',
     'ours fp32 time / ours bf16 time', 'our float32', False),
)
#: Bar colours by mode: the first size dark, the next ones lighter.
COLOURS = dict(infer=('#1f77b4', '#9ecae1', '#c6dbef'),
               train=('#e6550d', '#fdae6b', '#fdd0a2'))


def speedup_rows(results: List[dict]) -> List[dict]:
    """One row per case, size and mode timed: ``case``, ``size``, ``mode``,
    ``peer``, ``comparable``, ``fp32`` and ``bf16`` (the speed-up dicts of
    :func:`report.speedups`, ``fp32`` None unless comparable)."""
    rows = []
    for r in results:
        if 'error' in r:
            continue
        for mode in MODES:
            if not any(k.endswith('/' + mode) for k in r['timings']):
                continue
            s = speedups(r, mode)
            rows.append(dict(
                case=r['case'], size=r['size'], mode=mode, peer=r['peer'],
                comparable=r['comparable'],
                fp32=s.get('ours/fp32') if r['comparable'] else None,
                bf16=s.get('ours/bf16')))
    return rows


def _parse_ratio(cell: str) -> Optional[dict]:
    """``'1.17x (1.14x)'`` -> median and minimum; ``'-'`` -> None."""
    if cell == '-':
        return None
    median, minimum = cell.split()
    return dict(median=float(median.rstrip('x')),
                min=float(minimum.strip('()').rstrip('x')))


def rows_from_markdown(text: str, source: str = 'text') -> List[dict]:
    """The rows of the timing table in ``text`` (as ``markdown_tables``
    writes it), with the speed-ups as printed (two decimals).

    Raises:
        ValueError: ``source`` holds no such table.
    """
    header = _row(TIMING_COLUMNS)
    lines = text.splitlines()
    if header not in lines:
        raise ValueError(f'{source} holds no speed table (a line '
                         f'{header!r}, what tools/benchmarks/speed.py '
                         'writes).')
    rows = []
    for line in lines[lines.index(header) + 2:]:
        if not line.startswith('|'):
            break
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) != len(TIMING_COLUMNS) or cells[2] not in MODES:
            continue  # a case that could not run
        fp32 = _parse_ratio(cells[6])
        rows.append(dict(case=cells[0], size=cells[1], mode=cells[2],
                         peer=None if cells[3] == '-' else cells[3],
                         comparable=fp32 is not None, fp32=fp32,
                         bf16=_parse_ratio(cells[8])))
    return rows


def load_rows(path: str) -> Tuple[List[dict], Optional[str]]:
    """Rows and the line saying where they were measured, from a
    ``speed.json`` of the suite or a markdown file with its table."""
    with open(path) as f:
        text = f.read()
    if path.endswith('.json'):
        data = json.loads(text)
        env = data.get('environment')
        return speedup_rows(data['results']), env and measured_note(env)
    return rows_from_markdown(text, path), _note_of_table(text)


def _note_of_table(text: str) -> Optional[str]:
    """The 'Measured ...' line nearest above the timing table."""
    lines = text.splitlines()
    above = lines[:lines.index(_row(TIMING_COLUMNS))]
    return next((_short(line) for line in reversed(above)
                 if line.startswith('Measured ')), None)


def _short(header_line: str) -> str:
    """The table's first line up to the versions: date, CPU, threads,
    device."""
    return header_line.split(', torch ')[0]


def measured_note(env: dict) -> str:
    """Where and when a run measured (the chart's subtitle)."""
    return _short(_header(env)[0])


def _draw_panel(ax, rows: List[dict], key: str, title: str, ylabel: str,
                baseline: str, with_peer: bool) -> None:
    """Grouped bars: one group per case, one bar per mode and size."""
    cases = list(dict.fromkeys(r['case'] for r in rows))
    series = list(dict.fromkeys((r['mode'], r['size']) for r in rows))
    sizes = list(dict.fromkeys(r['size'] for r in rows))
    width = 0.8 / len(series)
    for k, (mode, size) in enumerate(series):
        shades = COLOURS[mode]
        values = [next((r[key]['median'] for r in rows
                        if (r['case'], r['mode'], r['size']) ==
                        (case, mode, size) and r[key]), float('nan'))
                  for case in cases]
        bars = ax.bar([i + (k - (len(series) - 1) / 2) * width
                       for i in range(len(cases))], values, width,
                      label=f'{mode} {size}',
                      color=shades[min(sizes.index(size), len(shades) - 1)])
        ax.bar_label(bars, fmt='%.2f', fontsize=6, padding=1)
    ax.axhline(1.0, color='black', linestyle='--', linewidth=1,
               label=f'1.0: as fast as {baseline}')
    peers = {r['case']: r['peer'] for r in rows}
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([f'{c}\n({peers[c]})' if with_peer else c
                        for c in cases], fontsize=8)
    ax.set_xlabel('case (peer)' if with_peer else 'case', fontsize=8)
    ax.set_ylabel(f'speed-up\n{ylabel}', fontsize=8)
    ax.set_ylim(0, max(1.2, ax.get_ylim()[1] * 1.08))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=len(series) + 1, loc='upper left')


def chart_panels(rows: List[dict]) -> List[tuple]:
    """The panels with data: ``(*PANELS entry, rows)`` for each of
    :data:`PANELS` whose question some row answers."""
    panels = [(*panel, [r for r in rows
                        if r['comparable'] == panel[-1] and r[panel[0]]])
              for panel in PANELS]
    return [p for p in panels if p[-1]]


def render_chart(rows: List[dict], path: str,
                 note: Optional[str] = None) -> Optional[str]:
    """Draw the panels of ``rows`` into ``path`` (PNG).

    Returns:
        str | None: Why no chart was written (no matplotlib, no data), or
        None.
    """
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError as error:
        return f'no chart ({error})'
    panels = chart_panels(rows)
    if not panels:
        return 'no chart (no speed-ups)'
    groups = max(len({r['case'] for r in p[-1]}) for p in panels)
    fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                             figsize=(max(8.0, 1.3 * groups + 2),
                                      3.6 * len(panels)))
    for ax, panel in zip(axes[:, 0], panels):
        _draw_panel(ax, panel[-1], *panel[:-1])
    fig.suptitle('Speed-up, median of interleaved rounds, batch 1' +
                 (f'\n{note}' if note else ''), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


def write_chart(results: List[dict], path: str,
                note: Optional[str] = None) -> Optional[str]:
    """The chart of a run's results (see :func:`render_chart`)."""
    return render_chart(speedup_rows(results), path, note)
