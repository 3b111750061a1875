"""The speed suite's chart and command line (tools/benchmarks/speedsuite/
chart.py and cli.py): the rows read back from a stored table equal the
speed-ups computed from the timings, the panels answer one question each,
``--chart-from`` redraws a chart timing nothing, and ``--help`` documents
every option. No speed is measured or asserted."""
import argparse
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    'speed', osp.join(REPO, 'tools', 'benchmarks', 'speed.py'))
speed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(speed)

ENV = dict(date='2026-01-02 03:04 UTC', cpu='cpu', cpu_count=2, threads=2,
           device='cpu', torch='t', timm='1', mmcv='2',
           load_average_start=None, load_average_end=None, rounds=3)


def _timing(median, minimum):
    return dict(median_ms=median, min_ms=minimum, runs=3,
                cpu_median_ms=median, warmup_s=0.0)


def _results():
    """Two sizes of a timm case, a yard-stick case, a case that failed."""
    peer = dict(case='convformer_s18', peer='timm', comparable=True,
                agreement={}, dtypes={})
    return [
        dict(peer, size='64x64', timings={
            'ours/fp32/infer': _timing(100.0, 90.0),
            'ours/bf16/infer': _timing(43.0, 41.0),
            'peer/fp32/infer': _timing(123.0, 99.0),
            'ours/fp32/train': _timing(300.0, 280.0),
            'ours/bf16/train': _timing(170.0, 160.0),
            'peer/fp32/train': _timing(310.0, 300.0)}),
        dict(peer, size='96x64', timings={
            'ours/fp32/infer': _timing(200.0, 190.0),
            'peer/fp32/infer': _timing(180.0, 170.0)}),
        dict(case='pit_s', size='64x64', peer='CAFormer-S18',
             comparable=False, agreement={}, dtypes={}, timings={
                 'ours/fp32/infer': _timing(90.0, 80.0),
                 'ours/bf16/infer': _timing(60.0, 55.0),
                 'peer/fp32/infer': _timing(100.0, 95.0)}),
        dict(case='cyclemlp_b1', size='64x64', error='no mmcv'),
    ]


def _rounded(rows):
    for row in rows:
        for key in ('fp32', 'bf16'):
            if row[key]:
                row[key] = {k: round(v, 2) for k, v in row[key].items()}
    return rows


def test_rows_read_back_from_the_table_equal_the_computed_ones():
    results = _results()
    computed = speed.speedup_rows(results)
    # 2 modes at 64x64, infer at 96x64, the yard-stick's infer; no error row
    assert [(r['case'], r['size'], r['mode']) for r in computed] == [
        ('convformer_s18', '64x64', 'infer'),
        ('convformer_s18', '64x64', 'train'),
        ('convformer_s18', '96x64', 'infer'), ('pit_s', '64x64', 'infer')]
    assert computed[0]['fp32']['median'] == pytest.approx(1.23)
    assert computed[0]['bf16']['min'] == pytest.approx(99 / 41)
    assert computed[2]['bf16'] is None  # no bf16 timed at 96x64
    assert computed[3]['fp32'] is None  # another model: no fp32 speed-up
    assert computed[3]['bf16']['median'] == pytest.approx(1.5)  # own fp32
    text = 'intro\n' + speed.markdown_tables(ENV, results, []) + 'after\n'
    assert speed.rows_from_markdown(text) == _rounded(computed)


def test_a_file_without_the_table_is_an_error_naming_it():
    with pytest.raises(ValueError, match='notes.md holds no speed table'):
        speed.rows_from_markdown('| a | b |\n', 'notes.md')


def test_one_panel_per_question():
    rows = speed.speedup_rows(_results())
    panels = speed.chart_panels(rows)
    assert [(p[0], p[4]) for p in panels] == [('fp32', True), ('bf16', True),
                                             ('bf16', False)]
    cases = [sorted({(r['case'], r['size']) for r in p[-1]}) for p in panels]
    assert cases == [[('convformer_s18', '64x64'), ('convformer_s18',
                                                    '96x64')],
                     [('convformer_s18', '64x64')], [('pit_s', '64x64')]]
    # ours only (--no-peer): the bf16-vs-own-float32 panel alone
    alone = [dict(r, comparable=False, fp32=None) for r in rows]
    assert [p[4] for p in speed.chart_panels(alone)] == [False]


def test_chart_from_a_stored_table_times_nothing(tmp_path, capsys):
    stored = tmp_path / 'README.md'
    stored.write_text('Measured with another tool\n\n' + speed.README_START +
                      '\n' + speed.markdown_tables(ENV, _results(), []) +
                      speed.README_END + '\n')
    out = tmp_path / 'out'
    assert speed.main(['--chart-from', str(stored), '--out-dir',
                       str(out)]) == 0
    assert (out / 'speed.png').read_bytes()[:4] == b'\x89PNG'
    assert sorted(p.name for p in out.iterdir()) == ['speed.png']
    assert '(4 rows)' in capsys.readouterr().out
    rows, note = speed.load_rows(str(stored))
    assert note == ('Measured 2026-01-02 03:04 UTC on cpu (2 logical CPUs), '
                    '2 threads, device cpu')
    assert len(rows) == 4


@pytest.mark.parametrize('argv, message', [
    (['--chart-from', 'x.md', '--readme', 'README.md'], '--readme'),
    (['--device', 'gpu'], '--device'),
    (['--threads', '0'], '--threads'),
    (['--profile', '-1'], '--profile'),
])
def test_bad_options_are_errors_naming_them(argv, message, capsys):
    with pytest.raises(SystemExit):
        speed.parse_args(argv)
    assert message in capsys.readouterr().err


def test_help_documents_every_option_with_its_default():
    parser = speed.build_parser()
    undocumented = [
        action.option_strings[0] for action in parser._actions
        if action.help != argparse.SUPPRESS and action.dest != 'help'
        and 'default' not in (action.help or '')
    ]
    assert undocumented == []
    text = parser.format_help()
    for example in ('--chart-from README.md', '--memory-only',
                    'setup_bench.sh', 'speed.json'):
        assert example in text


def test_importing_the_suite_imports_neither_torch_nor_the_peers():
    """``--help`` and ``--chart-from`` stay quick: the modules import what
    they run inside the functions."""
    code = ('import sys; sys.path.insert(0, sys.argv[1]); import speed; '
            'print(sorted(m for m in ("torch", "timm", "matplotlib", "peers")'
            ' if m in sys.modules))')
    done = subprocess.run(
        [sys.executable, '-c', code, osp.join(REPO, 'tools', 'benchmarks')],
        capture_output=True, text=True, check=True)
    assert done.stdout.strip() == '[]'


def test_readme_in_docs_gets_the_chart_of_its_repository(tmp_path):
    """--readme docs/speed.md: the chart and speed.json go to the
    repository's tools/benchmarks/results, linked relative to the page."""
    (tmp_path / 'tools' / 'benchmarks').mkdir(parents=True)
    page = tmp_path / 'docs' / 'speed.md'
    page.parent.mkdir()
    page.write_text(f'# Speed\n{speed.README_START}\n{speed.README_END}\n')
    assert speed.repository_of(str(page)) == str(tmp_path)
    args = argparse.Namespace(out_dir=str(tmp_path / 'out'),
                              readme=str(page))
    speed.write_outputs(args, ENV, _results(), [])
    assert (tmp_path / speed.CHART_IN_REPO).is_file()
    assert (tmp_path / speed.RESULTS_IN_REPO).is_file()
    assert not (tmp_path / 'docs' / 'tools').exists()
    text = page.read_text()
    assert '![speed-ups](../tools/benchmarks/results/speed.png)' in text
    assert speed.rows_from_markdown(text) == _rounded(speed.load_rows(
        str(tmp_path / speed.RESULTS_IN_REPO))[0])
