"""tools/benchmarks/gpu_check.py runs end to end on the CPU (``--device cpu
--quick``), so the script is proven before a GPU runs it; a failing check
fails the run."""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

import torch

from tests.tool_scripts import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'benchmarks', 'gpu_check.py')


def _load():
    return load_tool('benchmarks/gpu_check.py')


def test_quick_cpu_run_passes_every_section(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    done = subprocess.run(
        [sys.executable, SCRIPT, '--device', 'cpu', '--quick', '--out-dir',
         str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=1200)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    with open(tmp_path / 'gpu_check.json') as f:
        report = json.load(f)
    checks = report['checks']
    by_section = {}
    for check in checks:
        by_section.setdefault(check['section'], []).append(check)
    gpu_check = _load()
    assert set(by_section) == set(gpu_check.SECTIONS)
    variants = gpu_check.bf16_check.DEFAULT_VARIANTS
    assert [c['name'] for c in by_section['parity']] == variants
    assert all(c['ok'] and c['worst'] <= 1e-10 for c in by_section['parity'])
    assert len(by_section['amp']) == 2 * len(variants)
    for check in by_section['amp']:
        assert check['ok'] and check['losses'][-1] < check['losses'][0]
    assert sorted(c['name'] for c in by_section['mmdet']) == sorted(
        gpu_check.DETECTORS)
    assert all(c['ok'] for c in by_section['mmdet'])
    memory = {c['name']: c for c in by_section['memory']}
    assert memory['poolformer_s12 with_cp saves']['ok']
    speed = by_section['speed']  # timm is not in the test environment
    assert all(c['ok'] is not False for c in speed)
    assert report['environment']['device'] == 'cpu'
    table = (tmp_path / 'gpu_check.md').read_text()
    assert '| parity | poolformer_s12 |' in table
    assert (tmp_path / 'gpu_check.png').stat().st_size > 0


def test_a_failing_check_is_reported_and_fails_the_run(tmp_path):
    gpu_check = _load()
    args = argparse.Namespace(device=torch.device('cpu'), parity_tol=1e-30)
    (result, ) = gpu_check.parity_row('poolformerv2_s12', args)
    assert result['ok'] is False and 0 < result['worst'] < 1e-10
    (error, ) = gpu_check.guarded('amp', 'x', lambda: [1 / 0])
    assert error == dict(section='amp', name='x', ok=False,
                         value='ZeroDivisionError: division by zero')
    code = gpu_check.main(['--device', 'cpu', '--quick', '--sections',
                           'parity', '--parity-variants', 'poolformerv2_s12',
                           '--parity-tol', '1e-30', '--out-dir',
                           str(tmp_path)])
    assert code == 1
