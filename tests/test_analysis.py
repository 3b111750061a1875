"""FLOP counting (mmmetaformer.analysis, tools/analysis_tools/get_flops.py):
attention is counted, by an explicit handle only (importing the package
changes nothing in mmengine)."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.analysis import FlopAnalyzer, get_model_complexity_info
from mmengine.analysis import complexity_analysis

import mmmetaformer  # noqa: F401
from mmmetaformer.analysis import (FLOP_HANDLES, extra_flop_handles,
                                   flop_analyzer)
from mmmetaformer.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SDPA = 'aten::scaled_dot_product_attention'
#: The MetaFormer paper's figure for CAFormer-S18 at 224 x 224.
PUBLISHED_CAFORMER_S18_MACS = 4.1e9


def caformer_s18_hand_count(size=224):
    """MACs of CAFormer-S18 (dims 64/128/320/512, depths 3/3/9/3, MLP ratio
    4, SepConv expansion 2 with a 7x7 depthwise conv, head dim 32) at
    ``size`` x ``size``, from the architecture alone: ``dense`` (the
    convolutions and linear layers, however they are implemented) and
    ``attention`` (``q k^T`` and ``attn v``)."""
    dims, depths = [64, 128, 320, 512], [3, 3, 9, 3]
    sides = [size // 4, size // 8, size // 16, size // 32]
    tokens = [s * s for s in sides]
    dense = tokens[0] * dims[0] * 3 * 7 * 7  # stem: 7x7 stride-4 conv
    for i in (1, 2, 3):  # downsamplers: 3x3 stride-2 convs
        dense += tokens[i] * dims[i] * dims[i - 1] * 3 * 3
    attention = 0
    for i in range(4):
        n, c = tokens[i], dims[i]
        mlp = n * c * 4 * c * 2
        if i < 2:  # SepConv: pointwise C->2C, 7x7 depthwise, 2C->C
            dense += depths[i] * (n * c * 2 * c * 2 + n * 2 * c * 7 * 7 + mlp)
        else:  # attention: qkv C->3C, proj C->C
            dense += depths[i] * (n * c * 3 * c + n * c * c + mlp)
            attention += depths[i] * 2 * n * n * c
    return dict(dense=dense, attention=attention)


def split(by_op):
    """``by_operator()`` as dense / attention / norms / other."""
    by_op = dict(by_op)
    dense = by_op.pop('conv', 0) + by_op.pop('linear', 0) + by_op.pop(
        'matmul', 0) + by_op.pop('addmm', 0) + by_op.pop('einsum', 0)
    attention = by_op.pop('scaled_dot_product_attention', 0)
    norms = sum(by_op.pop(k, 0)
                for k in ('layer_norm', 'group_norm', 'batch_norm'))
    return dict(dense=dense, attention=attention), norms, by_op


@pytest.fixture(scope='module')
def caformer_s18():
    torch.manual_seed(0)
    return MODELS.build(dict(type='CAFormer', arch='s18')).eval()


def count(analyzer):
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer.total(), analyzer.by_operator(), analyzer.unsupported_ops()


def test_sdpa_handle_counts_both_products():
    class Attend(nn.Module):

        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    q, k, v = torch.zeros(2, 3, 5, 4), torch.zeros(2, 3, 7, 4), torch.zeros(
        2, 3, 7, 6)
    total, by_op, skipped = count(flop_analyzer(Attend(), (q, k, v)))
    # batch 2 x heads 3 x L 5 x S 7 x (E 4 for q k^T + Ev 6 for attn v)
    assert total == 2 * 3 * 5 * 7 * (4 + 6)
    assert SDPA not in skipped


def test_caformer_s18_matches_hand_count_and_published_figure(caformer_s18):
    x = torch.zeros(1, 3, 224, 224)
    total, by_op, skipped = count(flop_analyzer(caformer_s18, (x, )))
    counted, norms, other = split(by_op)
    assert counted == caformer_s18_hand_count()
    # the rest is the norms (mmengine: 5 per element with an affine)
    assert other == {} and 0 < norms < 0.01 * total
    assert SDPA not in skipped
    assert abs(total / PUBLISHED_CAFORMER_S18_MACS - 1) < 0.03, total


def test_mmengine_alone_misses_the_attention(caformer_s18):
    """Why the handle exists: without it, mmengine skips the attention and
    is more than 3% below the published figure."""
    x = torch.zeros(1, 3, 224, 224)
    total, by_op, skipped = count(FlopAnalyzer(caformer_s18, (x, )))
    assert skipped[SDPA] == 12  # one per attention block (9 + 3)
    counted, _, _ = split(by_op)
    assert counted == dict(caformer_s18_hand_count(), attention=0)
    assert total < 0.97 * PUBLISHED_CAFORMER_S18_MACS


def test_import_registers_nothing_and_context_restores():
    defaults = complexity_analysis._DEFAULT_SUPPORTED_FLOP_OPS
    assert SDPA not in defaults  # importing mmmetaformer added nothing
    before = dict(defaults)
    model = MODELS.build(
        dict(type='CAFormer', arch=dict(embed_dims=[8, 16, 32, 64],
                                        depths=[1, 1, 1, 1], head_dim=16)))
    plain = get_model_complexity_info(model, (3, 64, 64), show_table=False,
                                      show_arch=False)['flops']
    with extra_flop_handles():
        assert defaults[SDPA] is FLOP_HANDLES[SDPA]
        counted = get_model_complexity_info(
            model, (3, 64, 64), show_table=False, show_arch=False)['flops']
    assert defaults == before
    # stage 2: 4x4 tokens, 32 channels; stage 3: 2x2 tokens, 64 channels
    assert counted - plain == 2 * 16 * 16 * 32 + 2 * 4 * 4 * 64


def test_get_flops_tool_prints_caformer_s18():
    out = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'analysis_tools',
                                  'get_flops.py'), 'CAFormer', '--arch',
         's18'], capture_output=True, text=True, check=True,
        cwd=ROOT).stdout
    total = sum(caformer_s18_hand_count().values())
    assert 'at input 1x3x224x224' in out
    macs = float(out.split('MACs: ')[1].split(' G')[0])
    assert abs(macs * 1e9 / PUBLISHED_CAFORMER_S18_MACS - 1) < 0.03, out
    assert macs * 1e9 > total  # hand count plus the norms
    assert 'scaled_dot_product_attention' in out


def test_get_flops_tool_rejects_bad_arguments(capsys):
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))
    try:
        import get_flops
    finally:
        sys.path.pop(0)
    with pytest.raises(SystemExit, match='valid choices'):
        get_flops.main(['NoSuchFormer'])
    with pytest.raises(SystemExit):
        get_flops.main(['CAFormer', '--shape', '1', '2', '3'])
    assert '--shape takes one or two' in capsys.readouterr().err
