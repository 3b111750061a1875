"""tools/benchmarks/pipeline_speed.py without the official environment:
the stored figures give the table of docs/speed.md and the chart, the
training batch is the same arithmetic on both sides, and the command line
refuses to time without the official code."""
import os.path as osp

import pytest
import torch

from tests.tool_scripts import REPO, load_tool

SPEED = load_tool('benchmarks/pipeline_speed.py')
RESULTS = osp.join(REPO, 'tools', 'benchmarks', 'results',
                   'pipeline_speed.json')


def test_docs_table_is_the_stored_figures():
    table = SPEED.table(SPEED.load_results(RESULTS)['times'])
    with open(osp.join(REPO, 'docs', 'speed.md')) as f:
        page = f.read()
    block = page.split('<!-- pipeline-speed:start -->\n')[1].split(
        '\n<!-- pipeline-speed:end -->')[0]
    assert block == table
    assert len(table.splitlines()) == 2 + len(SPEED.CASES) * len(SPEED.MODES)


def test_chart_from_stored_figures(tmp_path):
    pytest.importorskip('matplotlib')
    out = tmp_path / 'chart.png'
    SPEED.main(['--from', RESULTS, '--chart', str(out)])
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


@pytest.mark.parametrize('kind', ['det', 'seg'])
def test_training_batch(kind):
    image = osp.join(REPO, 'tests', 'data', 'pipelines', 'images', 'strips',
                     'astronaut.png')
    img, labels = SPEED.train_batch(image, kind)
    n, h, w, pad_w = SPEED.TRAIN_SHAPE[kind]
    assert img.shape == (n, 3, h, pad_w) and labels.shape == (n, h, pad_w)
    assert torch.equal(img[..., w:], torch.zeros_like(img[..., w:]))
    assert img[..., :w].abs().amax() > 0.5  # normalised pixels, not padding
    # 32-px blocks of classes (i // 32 + j // 32) % 150
    assert int(labels[0, 40, 70]) == 1 + 2 and int(labels.min()) == 0
    assert int(labels.max()) < 150


def test_timing_needs_the_official_code(tmp_path):
    with pytest.raises(SystemExit, match='--poolformer'):
        SPEED.main([])
    with pytest.raises(SystemExit, match='--official-python'):
        SPEED.main(['--poolformer', str(tmp_path), '--official-python',
                    str(tmp_path / 'python')])
