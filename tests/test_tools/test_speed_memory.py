"""The speed suite's training-step memory (``step_memory`` and
``saved_activation_bytes`` of tools/benchmarks/speedsuite/memory.py, through
tools/benchmarks/speed.py) on a small ConvFormer: the measured peak must tell ``with_cp`` apart, as the counted saved
activations do. The old figure (growth of the resident set size's
high-water mark) could not: freed memory stays resident and the mark is
already high in a process that built anything before."""

import pytest
import torch

from mmmetaformer.models.backbones import ConvFormer
from tests.tool_scripts import load_tool

speed = load_tool('benchmarks/speed.py')
from speedsuite import memory  # noqa: E402 (speed.py put it on sys.path)

needs_glibc = pytest.mark.skipif(
    speed.malloc_in_use_reader() is None,
    reason='glibc mallinfo2 unavailable: the peak falls back to the RSS')


def _measure(with_cp):
    torch.manual_seed(0)
    model = ConvFormer(dict(embed_dims=[16, 32, 48, 64], depths=[2, 2, 4, 2]),
                       with_cp=with_cp).train()
    x = torch.randn(1, 3, 256, 384)
    measured = speed.step_memory(speed.make_step(model, x, 'train', 'fp32'),
                                 'cpu')
    measured['saved_MiB'] = speed.saved_activation_bytes(model, x) / 2**20
    return measured


@needs_glibc
def test_reader_sees_a_tensor_and_its_release():
    in_use = speed.malloc_in_use_reader()
    before = in_use()
    t = torch.ones(8 * 2**20, dtype=torch.uint8)  # 8 MiB
    during = in_use()
    del t
    after = in_use()
    assert during - before >= 8 * 2**20
    assert during - after >= 8 * 2**20


@needs_glibc
def test_peak_separates_with_cp_in_a_process_that_ran_before():
    _measure(False)  # a warm process (one-off allocations of a first step)
    # what building a real model does: raise the RSS high-water mark (a
    # 128 MiB tensor, touched, then freed)
    torch.ones(2**25).add_(1)
    plain, checkpointed = _measure(False), _measure(True)
    assert plain['peak_by'] == checkpointed['peak_by'] == \
        speed.MALLINFO2_LABEL
    # counted: with_cp keeps far fewer activations
    saved_drop = plain['saved_MiB'] - checkpointed['saved_MiB']
    assert checkpointed['saved_MiB'] < plain['saved_MiB'] / 3
    # measured: the peak falls by about as much (the gradients, the
    # recomputation of one block and the backward's temporaries remain)
    peak_drop = plain['peak_MiB'] - checkpointed['peak_MiB']
    assert checkpointed['peak_MiB'] < 0.6 * plain['peak_MiB']
    assert 0.4 * saved_drop < peak_drop < 1.5 * saved_drop
    # a peak at least covers the activations kept at the end of the forward
    assert plain['peak_MiB'] >= plain['saved_MiB']


def test_without_mallinfo2_the_peak_is_the_labelled_rss_growth(monkeypatch):
    # step_memory looks the reader up in its own module
    monkeypatch.setattr(memory, 'malloc_in_use_reader', lambda: None)
    measured = _measure(False)
    assert measured['peak_by'] == speed.RSS_LABEL
    assert measured['peak_MiB'] == measured['rss_growth_MiB']


def test_memory_table_names_how_each_peak_was_measured():
    env = dict(date='d', cpu='cpu', cpu_count=2, threads=2, device='cpu',
               torch='t', timm='1', mmcv='2', load_average_start=None,
               load_average_end=None, rounds=1)
    memory = [
        dict(case='convformer_s18', with_cp=False, size='64x64',
             peak_MiB=300.0, peak_by=speed.MALLINFO2_LABEL,
             rss_growth_MiB=370.0, saved_MiB=250.0, step_s=1.0),
        dict(case='convformer_s18', with_cp=True, size='64x64',
             peak_MiB=210.0, peak_by=speed.RSS_LABEL, rss_growth_MiB=210.0,
             saved_MiB=20.0, step_s=1.5)
    ]
    text = speed.markdown_tables(env, [], memory)
    assert '| with_cp | peak MiB | measured by | RSS growth MiB | saved ' \
           'activations MiB |' in text
    assert f'| False | 300 | {speed.MALLINFO2_LABEL} | 370 | 250 | 1.0 |' \
        in text
    assert f'| True | 210 | {speed.RSS_LABEL} | 210 | 20 | 1.5 |' in text
