"""The speed suite's logic (tools/benchmarks/speed.py, peers.py and the
torchvision stand-in), without timing anything: argument checks, error
metric, ratios, interleaving order, the report, chart and README block, the
weight transfer to the peers, and one end-to-end run on a tiny input. No
speed is asserted anywhere."""
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from tests.tool_scripts import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH = osp.join(REPO, 'tools', 'benchmarks')


def _load(name):
    return load_tool(f'benchmarks/{name}.py')


speed = _load('speed')  # puts tools/benchmarks on sys.path (for peers)
peers = _load('peers')


def test_parse_size():
    assert speed.parse_size('512') == (512, 512)
    assert speed.parse_size('800x1216') == (800, 1216)
    for bad in ('16x512', 'axb', '1x2x3', ''):
        with pytest.raises(Exception, match='HxW'):
            speed.parse_size(bad)


def test_unknown_case_is_an_error_naming_the_valid_ones(capsys):
    assert [c.name for c in speed.select_cases(['caformer_s18'])] == [
        'caformer_s18'
    ]
    with pytest.raises(ValueError, match='convformer_s18'):
        speed.select_cases(['convformer'])
    with pytest.raises(SystemExit):
        speed.parse_args(['--cases', 'nope'])
    assert 'valid choices' in capsys.readouterr().err


def test_rel_error_is_the_worst_relative_l2_error():
    ref = (torch.ones(2, 3), torch.full((4, ), 2.0))
    out = (ref[0] * 1.01, ref[1] + torch.tensor([0.0, 0.0, 0.0, 0.4]))
    # map 0: 0.01; map 1: 0.4 / ||(2, 2, 2, 2)|| = 0.1
    assert speed.rel_error(out, ref) == pytest.approx(0.1)
    assert speed.rel_error(ref, ref) == 0.0
    with pytest.raises(ValueError, match='shapes'):
        speed.rel_error((torch.ones(2), ), (torch.ones(3), ))
    with pytest.raises(ValueError, match='maps'):
        speed.rel_error(ref, ref[:1])


def test_summaries_and_ratios():
    s = speed.summarize([0.3, 0.1, 0.2])
    assert s == dict(median_ms=pytest.approx(200), min_ms=pytest.approx(100),
                     runs=3)
    r = speed.ratio(dict(median_ms=300, min_ms=150),
                    dict(median_ms=100, min_ms=100))
    assert r == dict(median=3.0, min=1.5)
    assert speed.ratio(None, s) is None


def test_interleaving_rotates_the_starting_variant():
    order = []
    variants = [
        speed.Variant(name, 'fp32', 'infer', lambda n=name: order.append(n))
        for name in 'abc'
    ]
    speed.time_interleaved(variants, rounds=3, warmup=2)
    assert order[:6] == ['a', 'a', 'b', 'b', 'c', 'c']  # warm-up
    assert order[6:] == list('abc' 'bca' 'cab')
    assert all(len(v.wall) == 3 and len(v.cpu) == 3 for v in variants)


def _result(case, comparable=True):
    timing = dict(median_ms=100.0, min_ms=90.0, runs=3, cpu_median_ms=190.0,
                  warmup_s=0.1)
    timings = {'ours/fp32/infer': dict(timing),
               'ours/bf16/infer': dict(timing, median_ms=40.0, min_ms=36.0)}
    if comparable:
        timings['peer/fp32/infer'] = dict(timing, median_ms=120.0,
                                          min_ms=99.0)
    return dict(case=case, size='64x64', peer='timm' if comparable else None,
                comparable=comparable, timings=timings,
                agreement={'ours/fp32': 1e-7, 'ours/bf16': 3e-3},
                dtypes={'ours/bf16': ['bfloat16']})


def test_speedups_use_the_peer_or_our_own_float32():
    with_peer = speed.speedups(_result('x'), 'infer')
    assert with_peer['ours/fp32']['median'] == pytest.approx(1.2)
    assert with_peer['ours/bf16']['median'] == pytest.approx(3.0)
    alone = speed.speedups(_result('y', comparable=False), 'infer')
    assert alone['ours/bf16']['median'] == pytest.approx(2.5)


def test_report_chart_and_readme_block(tmp_path):
    env = dict(date='d', cpu='cpu', cpu_count=2, threads=2, device='cpu',
               torch='t', timm='1', mmcv='2', load_average_start=(0.1, ) * 3,
               load_average_end=(0.2, ) * 3, rounds=3)
    results = [_result('convformer_s18'),
               _result('pit_s', comparable=False),
               dict(case='cyclemlp_b1', size='64x64', error='no mmcv')]
    memory = [dict(case='convformer_s18', with_cp=False, size='64x64',
                   peak_MiB=10.0, saved_MiB=5.0, step_s=1.0),
              dict(case='convformer_s18', with_cp=True, error='boom')]
    text = speed.markdown_tables(env, results, memory)
    assert '| convformer_s18 | 64x64 | infer | timm | 120 (99) | 100 (90) ' \
           '| 1.20x (1.10x) | 40 (36) | 3.00x (2.75x) |' in text
    assert '| pit_s | 64x64 | infer | - | - | 100 (90) | - | 40 (36) | ' \
           '2.50x (2.50x) |' in text
    assert 'no mmcv' in text and 'boom' in text
    assert '(0.1, 0.1, 0.1) at the start' in text
    chart = tmp_path / 'speed.png'
    assert speed.write_chart(results, str(chart)) is None
    assert chart.read_bytes()[:4] == b'\x89PNG'

    readme = tmp_path / 'README.md'
    readme.write_text(f'a\n{speed.README_START}\nold\n{speed.README_END}\nb\n')
    speed.update_readme(str(readme), 'new table')
    content = readme.read_text()
    assert 'old' not in content and 'new table' in content
    assert content.startswith('a\n') and content.endswith(
        f'{speed.README_END}\nb\n')
    readme.write_text('no markers')
    with pytest.raises(ValueError, match='speed:start'):
        speed.update_readme(str(readme), 'x')


def test_torchvision_stand_in_imports_and_refuses_use():
    code = ('import sys; sys.path.insert(0, sys.argv[1]); import torchvision;'
            'from torchvision.transforms import InterpolationMode, functional;'
            'from torchvision.ops.misc import FrozenBatchNorm2d;'
            'assert InterpolationMode.BILINEAR is not None;'
            'FrozenBatchNorm2d(3)')
    done = subprocess.run(
        [sys.executable, '-c', code, osp.join(BENCH, '_stubs')],
        capture_output=True, text=True)
    assert done.returncode != 0
    assert 'needs the real torchvision' in done.stderr


def test_rest_official_peer_gets_the_same_weights():
    torch.manual_seed(0)
    ours, peer, comparable = peers.build_case_models('ResT', 'lite', {},
                                                     'rest_official')
    assert comparable
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():  # float32 rounding, amplified by ResT v1: ~5e-5
        assert speed.rel_error(ours.eval()(x), peer.eval()(x)) < 1e-3


def test_unknown_peer_kind_is_an_error():
    with pytest.raises(ValueError, match='timm:<name>'):
        peers.build_case_models('PoolFormerV2', 's12', {}, 'onnx')


@pytest.mark.skipif(importlib.util.find_spec('mmcv') is None,
                    reason='mmcv not installed')
def test_mmcv_deform_peer_computes_our_cycle_fc():
    torch.manual_seed(0)
    ours, peer, _ = peers.build_case_models('CycleMLP', 'b1', {},
                                            'mmcv_deform')
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert speed.rel_error(ours.eval()(x), peer.eval()(x)) < 1e-5


def test_suite_end_to_end_on_a_tiny_input(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text(f'{speed.README_START}\n{speed.README_END}\n')
    out_dir = tmp_path / 'out'
    threads = torch.get_num_threads()
    try:
        code = speed.main([
            '--cases', 'identityformer_s12', '--sizes', '64x64', '--rounds',
            '1', '--warmup', '0', '--threads', '1', '--no-peer', '--out-dir',
            str(out_dir), '--readme', str(readme)
        ])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    assert (tmp_path / speed.CHART_IN_REPO).is_file()
    # the chart's data beside it: the chart can be redrawn from it
    stored = tmp_path / speed.RESULTS_IN_REPO
    assert json.loads(stored.read_text()) == json.loads(
        (out_dir / 'speed.json').read_text())
    rows, _ = speed.load_rows(str(stored))
    assert [(r['case'], r['mode']) for r in rows] == [
        ('identityformer_s12', 'infer'), ('identityformer_s12', 'train')]
    data = json.loads((out_dir / 'speed.json').read_text())
    (result, ) = data['results']
    assert set(result['timings']) == {
        f'ours/{p}/{m}' for p in ('fp32', 'bf16') for m in ('infer', 'train')
    }
    assert data['environment']['threads'] == 1
    assert '| identityformer_s12 | 64x64 | infer |' in readme.read_text()
