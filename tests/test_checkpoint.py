"""mmmetaformer.checkpoint: the one reader for files from outside (allow-list,
safetensors, one clear error per unreadable file), the URL-keyed download
cache (served by a local HTTP server), and loads that load too little or
non-finite values being errors."""
import argparse
import hashlib
import http.server
import io
import json
import os
import os.path as osp
import pickle
import struct
import sys
import threading
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from mmmetaformer import checkpoint
from mmmetaformer.checkpoint import (extract_state_dict, load_checkpoint_file,
                                     load_state_dict_with_report)
from mmmetaformer.models.backbones import PoolFormer
from tests.test_tools import legacy_checkpoints as legacy


# ----------------------------------------------------------------- helpers
TORCH = checkpoint._torch_version()
needs_full_allow_list = pytest.mark.skipif(
    TORCH < (2, 6), reason='name-mapped allow-list entries need torch >= 2.6 '
    '(older versions: test_torch_without_allow_list_api)')


def _allowed():
    """torch's current allow-list, order-independent."""
    if not hasattr(torch.serialization, 'get_safe_globals'):
        return []
    return sorted(map(repr, torch.serialization.get_safe_globals()))


def runner_style_checkpoint():
    """What mmengine's Runner (mmdet 3.x / mmseg 1.x) and single-GPU
    mmdet 2.x / mmseg 0.x runs store next to the weights."""
    return {
        'meta': {
            'seed': np.int64(1234),  # mmdet 2.x / mmseg 0.x
            'epoch': 12,
            'dataset_meta': {'classes': ('a', 'b')},
            'experiment_name': 'x',
        },
        'message_hub': {
            'log_scalars': {
                'train/loss': HistoryBuffer([0.5, 0.4], [1, 1]),
            },
            'runtime_info': {
                'iter': np.int64(2),
                'lr': np.float32(0.01),
                'loss_curve': np.arange(4, dtype=np.float64),
                'dtype': np.dtype('float16'),
            },
        },
        'args': argparse.Namespace(lr=0.1),  # DeiT-style scripts
        'state_dict': {'backbone.w': torch.ones(2, 3)},
    }


def _rename_globals(path, old: bytes, new: bytes):
    """Rewrite the pickle inside a torch zip file, as if it had been written
    where ``old`` module names were ``new`` (e.g. numpy 1.x)."""
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as dst:
        for info, data in entries:
            if info.filename.endswith('data.pkl'):
                assert old in data
                data = data.replace(old, new)
            dst.writestr(info, data)


def _safetensors_bytes(tensors):
    """A .safetensors file written from its specification (8-byte header
    length, JSON header, raw little-endian data)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        raw = t.contiguous().numpy().tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape),
                        'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b' ' * (-len(text) % 8)
    return struct.pack('<Q', len(text)) + text + b''.join(blobs)


# ------------------------------------------------------------- allow-list
@needs_full_allow_list
def test_runner_and_mmdet2_checkpoints_are_read(tmp_path):
    """Files of the user's own mmdet 3.x / mmseg 1.x (HistoryBuffer, numpy)
    and mmdet 2.x / mmseg 0.x runs (numpy seed) load with weights_only."""
    path = str(tmp_path / 'epoch_12.pth')
    torch.save(runner_style_checkpoint(), path)
    before = _allowed()
    ckpt = load_checkpoint_file(path)
    assert ckpt['meta']['seed'] == 1234
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.mean() == 0.45
    assert ckpt['message_hub']['runtime_info']['loss_curve'].tolist() == [
        0, 1, 2, 3]
    assert ckpt['args'].lr == 0.1
    assert extract_state_dict(ckpt, 'backbone.')['w'].shape == (2, 3)
    # the allow-list is scoped to the read
    assert _allowed() == before


@needs_full_allow_list
def test_other_numpy_major_names_are_read(tmp_path):
    """numpy 1.x wrote ``numpy.core.multiarray._reconstruct``/``scalar``,
    numpy 2.x ``numpy._core...``: a file of the other major version loads."""
    path = str(tmp_path / 'np.pth')
    torch.save(runner_style_checkpoint(), path)
    names = (b'numpy._core.multiarray', b'numpy.core.multiarray')
    if int(np.__version__.split('.')[0]) < 2:
        names = names[::-1]
    _rename_globals(path, *names)
    ckpt = load_checkpoint_file(path)
    assert ckpt['meta']['seed'] == 1234
    assert ckpt['message_hub']['runtime_info']['loss_curve'].sum() == 6


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo pwned',))


class _EvilGetattr:

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__subclasses__'))


@pytest.mark.parametrize('payload', [_Evil(), _EvilGetattr()])
def test_code_in_a_checkpoint_is_refused(tmp_path, payload):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(1)}, 'x': payload}, path)
    with pytest.raises(checkpoint.CheckpointError,
                       match=r'Refused to read .*evil\.pth'):
        load_checkpoint_file(path)


def test_torch_without_allow_list_api(tmp_path, monkeypatch):
    """torch < 2.4 (no allow-list API): tensor-only files load; files with
    numpy / mmengine objects get one error that says why."""
    plain = str(tmp_path / 'plain.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}}, plain)
    runner = str(tmp_path / 'runner.pth')
    torch.save(runner_style_checkpoint(), runner)
    monkeypatch.setattr(checkpoint, '_torch_version', lambda: (2, 1))
    monkeypatch.delattr(torch.serialization, 'safe_globals', raising=False)
    monkeypatch.delattr(torch.serialization, 'add_safe_globals',
                        raising=False)
    assert load_checkpoint_file(plain)['state_dict']['w'].sum() == 2
    with pytest.raises(checkpoint.CheckpointError,
                       match=r'runner\.pth .*needs torch >= 2\.6'):
        load_checkpoint_file(runner)


@pytest.mark.skipif(TORCH < (2, 4), reason='torch < 2.4 has no allow-list')
def test_torch_2_4_add_safe_globals_is_restored(tmp_path, monkeypatch):
    """torch 2.4 has add_safe_globals but no context manager: the entries
    are removed again after the read."""
    path = str(tmp_path / 'np.pth')
    torch.save({'state_dict': {'w': torch.ones(2)},
                'meta': {'seed': np.int64(3)}}, path)
    monkeypatch.setattr(checkpoint, '_torch_version', lambda: (2, 4))
    monkeypatch.delattr(torch.serialization, 'safe_globals')
    before = _allowed()
    assert load_checkpoint_file(path)['meta']['seed'] == 3
    assert _allowed() == before


# ------------------------------------------------------------ safetensors
def test_safetensors_file_is_read_whatever_its_name(tmp_path):
    pytest.importorskip('safetensors')
    tensors = {'stem.conv.weight': torch.arange(6.).view(2, 3)}
    path = tmp_path / 'pytorch_model.bin'  # the content decides
    path.write_bytes(_safetensors_bytes(tensors))
    ckpt = load_checkpoint_file(str(path))
    assert torch.equal(ckpt['stem.conv.weight'], tensors['stem.conv.weight'])


def test_safetensors_without_the_package(tmp_path, monkeypatch):
    path = tmp_path / 'model.safetensors'
    path.write_bytes(_safetensors_bytes({'w': torch.ones(2)}))
    monkeypatch.setitem(sys.modules, 'safetensors', None)
    monkeypatch.setitem(sys.modules, 'safetensors.torch', None)
    with pytest.raises(checkpoint.CheckpointError,
                       match=r'model\.safetensors is a safetensors file; '
                       r'reading it needs the `safetensors` package'):
        load_checkpoint_file(str(path))


# --------------------------------------------------------- unreadable files
def _truncated():
    full = io.BytesIO()
    torch.save({'w': torch.ones(1000)}, full)
    return full.getvalue()[:2000]


@pytest.mark.parametrize('name, content, what', [
    ('empty.pth', b'', 'an empty file'),
    ('cut.pth', None, 'a truncated or damaged zip archive'),
    ('drive.pth', b'\n<!DOCTYPE html><html><head><title>Google Drive'
     b'</title></head></html>', 'an HTML page'),
    ('notes.pth', b'checkpoint moved to another server\n',
     'a plain text file'),
    ('w.pth.tar.gz', b'\x1f\x8b\x08\x00' + bytes(20), 'a gzip archive'),
    ('notes.pth', 'zip', 'a zip archive that is neither a torch checkpoint '
     "nor a numpy .npz (holds ['notes.txt'])"),
    ('model_final.pkl', pickle.dumps({'model': {'w': np.ones(2)}}, 2),
     'a plain pickle, not a torch checkpoint'),
])
def test_unreadable_files_get_one_clear_error(tmp_path, name, content, what):
    path = tmp_path / name
    if content == 'zip':
        with zipfile.ZipFile(path, 'w') as archive:
            archive.writestr('notes.txt', 'not weights')
    else:
        path.write_bytes(_truncated() if content is None else content)
    with pytest.raises(ValueError) as info:
        load_checkpoint_file(str(path))
    message = str(info.value)
    assert str(path) in message and what in message


def test_legacy_torch_format_is_read(tmp_path):
    path = str(tmp_path / 'old.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}}, path,
               _use_new_zipfile_serialization=False)
    assert checkpoint.describe_file(path)[0] == 'pickle'
    assert load_checkpoint_file(path)['state_dict']['w'].sum() == 2


def test_unsupported_scheme_and_missing_file(tmp_path):
    with pytest.raises(ValueError,
                       match=r"Unsupported URL scheme 'ftp' in "
                       r'ftp://host/w\.pth: give a local path or an http'):
        load_checkpoint_file('ftp://host/w.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))


# -------------------------------------------------------- download cache
class _Server:
    """A local HTTP server (127.0.0.1) with path -> bytes; counts GETs.
    ``cut`` maps paths to the number of bytes actually sent (the full
    length is announced, then the connection is closed)."""

    def __init__(self, files, cut=None):
        self.files = files
        self.cut = cut or {}
        self.gets = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):

            def do_GET(self):  # noqa: N802
                server.gets.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body[:server.cut.get(self.path, len(body))])
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                     Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)

    def url(self, path):
        return f'http://127.0.0.1:{self.httpd.server_address[1]}{path}'

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _pth_bytes(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / 'cache'
    monkeypatch.setenv('MMMETAFORMER_CHECKPOINTS', str(directory))
    return directory


def test_cache_is_keyed_by_the_full_url(cache):
    """Two Hugging Face-style URLs with the same file name must give each
    its own weights (the old cache served the first file for both)."""
    a = _pth_bytes({'w': torch.zeros(3)})
    b = _pth_bytes({'w': torch.ones(3)})
    with _Server({'/a/resolve/main/pytorch_model.bin': a,
                  '/b/resolve/main/pytorch_model.bin': b}) as server:
        url_a = server.url('/a/resolve/main/pytorch_model.bin')
        url_b = server.url('/b/resolve/main/pytorch_model.bin')
        assert load_checkpoint_file(url_a)['w'].sum() == 0
        assert load_checkpoint_file(url_b)['w'].sum() == 3
        assert load_checkpoint_file(url_a)['w'].sum() == 0  # from the cache
        assert len(server.gets) == 2
    names = sorted(os.listdir(cache))
    assert len(names) == 2 and all(
        n.endswith('-pytorch_model.bin') for n in names)
    assert hashlib.sha256(url_a.encode()).hexdigest()[:16] + \
        '-pytorch_model.bin' in names


def test_init_cfg_url_is_downloaded_once(cache):
    weights = {k: v + 1 for k, v in PoolFormer('s12').state_dict().items()}
    with _Server({'/release/poolformer_s12.pth.tar': _pth_bytes(
            {'model': weights})}) as server:
        url = server.url('/release/poolformer_s12.pth.tar')
        model = PoolFormer('s12',
                           init_cfg=dict(type='Pretrained', checkpoint=url))
        model.init_weights()
        assert model.load_pretrained(url).clean
        assert server.gets == ['/release/poolformer_s12.pth.tar']
    assert torch.equal(model.state_dict()['norm3.weight'],
                       weights['norm3.weight'])
    assert os.listdir(cache) == [osp.basename(checkpoint.cached_path(url))]


def test_hash_in_the_url_is_verified(cache):
    body = _pth_bytes({'w': torch.ones(2)})
    digest = hashlib.sha256(body).hexdigest()
    with _Server({f'/w-{digest[:8]}.pth': body,
                  '/bad-0123abcd.pth': body}) as server:
        assert load_checkpoint_file(
            server.url(f'/w-{digest[:8]}.pth'))['w'].sum() == 2
        with pytest.raises(ValueError,
                           match=r'bad-0123abcd\.pth, but its SHA-256 starts '
                           f'with {digest[:8]}, not 0123abcd'):
            load_checkpoint_file(server.url('/bad-0123abcd.pth'))
    assert len(os.listdir(cache)) == 1  # nothing kept of the bad one


def test_download_errors_name_the_url(cache):
    page = b'<html><body>Google Drive - virus scan warning</body></html>'
    with _Server({'/drive/model.pth': page}) as server:
        with pytest.raises(ValueError) as info:
            load_checkpoint_file(server.url('/missing.pth'))
        assert server.url('/missing.pth') in str(info.value)
        assert 'HTTP 404' in str(info.value)
        with pytest.raises(ValueError, match='returned an HTML page'):
            load_checkpoint_file(server.url('/drive/model.pth'))
        port = server.httpd.server_address[1]
    unreachable = f'http://127.0.0.1:{port}/gone.pth'  # server stopped
    with pytest.raises(ValueError) as info:
        load_checkpoint_file(unreachable)
    assert unreachable in str(info.value)
    assert os.listdir(cache) == []  # no partial or wrong file was kept


@pytest.mark.parametrize('zip_format', [True, False])
def test_download_cut_short_is_not_cached(cache, zip_format):
    """The server announces the full length and sends half (the old code
    cached the half, and every later run failed on it)."""
    buffer = io.BytesIO()
    torch.save({'w': torch.ones(1000)}, buffer,
               _use_new_zipfile_serialization=zip_format)
    body = buffer.getvalue()
    with _Server({'/w.pth': body}, cut={'/w.pth': len(body) // 2}) as server:
        url = server.url('/w.pth')
        with pytest.raises(ValueError) as info:
            load_checkpoint_file(url)
        assert str(info.value) == (
            f'Could not download {url}: received {len(body) // 2} of the '
            f'{len(body)} bytes the server announced (the connection closed '
            'early). Not cached; try again.')
        assert os.listdir(cache) == []  # no partial file either
        server.cut.clear()  # the next try gets the whole file
        assert load_checkpoint_file(url)['w'].sum() == 1000
        assert len(server.gets) == 2


@pytest.mark.parametrize('damage', ['truncated', 'wrong hash', 'empty'])
def test_damaged_cached_file_is_downloaded_again(cache, capsys, damage):
    """A cached file left damaged (by an older version, a full disk, ...)
    is replaced on the next run, which says so."""
    body = _pth_bytes({'w': torch.ones(1000)})
    digest = hashlib.sha256(body).hexdigest()
    with _Server({f'/w-{digest[:8]}.pth': body}) as server:
        url = server.url(f'/w-{digest[:8]}.pth')
        path = checkpoint.cached_path(url)
        os.makedirs(cache)
        with open(path, 'wb') as f:
            f.write({'truncated': body[:len(body) // 2],
                     'wrong hash': _pth_bytes({'w': torch.zeros(1000)}),
                     'empty': b''}[damage])
        assert load_checkpoint_file(url)['w'].sum() == 1000
        assert len(server.gets) == 1
        assert load_checkpoint_file(url)['w'].sum() == 1000  # now cached
        assert len(server.gets) == 1
    err = capsys.readouterr().err
    assert f'The cached download {path} of {url} is damaged (' in err
    assert 'removing it and downloading it again' in err
    assert os.listdir(cache) == [osp.basename(path)]


# ---------------------------------------------------- loading too little
@pytest.fixture(scope='module')
def s12_dense():
    """The official dense PoolFormer-S12 backbone keys (detection release
    layout: ``patch_embed``, ``network``, ``norm{0,2,4,6}``)."""
    return legacy.official_backbone('poolformer_s12')


def _save(obj, tmp_path, name='w.pth'):
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path


def test_detector_checkpoint_without_prefix_names_the_prefix(tmp_path,
                                                               s12_dense):
    """The mmdet file given without prefix='backbone.' used to load 0
    tensors with a warning and train from random weights."""
    full = {f'backbone.{k}': v for k, v in s12_dense.items()}
    full['neck.fpn_convs.0.conv.weight'] = torch.zeros(1)
    path = _save({'state_dict': full}, tmp_path)
    model = PoolFormer('s12',
                       init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(ValueError) as info:
        model.init_weights()
    message = str(info.value)
    assert 'only 0 of its' in message
    assert f"'backbone.' ({len(s12_dense)} tensors), 'neck.' (1 tensor)" \
        in message
    assert "prefix='backbone.'" in message
    report = PoolFormer('s12').load_pretrained(path, prefix='backbone.')
    assert report.clean and len(report.loaded) == len(s12_dense)


def test_mmpretrain_classifier_is_recognised(tmp_path, s12_dense):
    """mmpretrain's PoolFormer classifier: official names under backbone.,
    ``norm6`` (out_indices=-1) and ``head.fc``; without the prefix it was
    labelled "(timm key names)" and loaded nothing."""
    state = {f'backbone.{k}': v for k, v in s12_dense.items()
             if not k.startswith(('norm0', 'norm2', 'norm4'))}
    state['head.fc.weight'] = torch.zeros(1000, 512)
    state['head.fc.bias'] = torch.zeros(1000)
    path = _save({'state_dict': state, 'meta': {}}, tmp_path)
    with pytest.raises(ValueError) as info:
        PoolFormer('s12').load_pretrained(path)
    message = str(info.value)
    assert 'timm' not in message
    assert 'mmpretrain classifier checkpoint' in message
    assert "prefix='backbone.'" in message
    model = PoolFormer('s12', out_indices=(3, ))
    report = model.load_pretrained(path, prefix='backbone.')
    assert report.key_format == 'official' and report.clean
    # the classifier's final norm (mmpretrain's norm6) is the output norm
    assert torch.equal(model.norm3.weight, s12_dense['norm6.weight'])


def test_less_than_half_loaded_is_an_error(tmp_path, s12_dense):
    model = PoolFormer('s12')
    own = model.state_dict()
    few = dict(list(own.items())[:len(own) // 3])
    with pytest.raises(ValueError, match=r'only \d+ of its \d+ tensors'):
        load_state_dict_with_report(model, few, source='few.pth')
    # 3/4 of the tensors: a partial load, loaded only when asked for
    most = dict(list(own.items())[:len(own) * 3 // 4])
    with pytest.raises(ValueError, match='allow_partial=True'):
        load_state_dict_with_report(model, most, source='most.pth')
    report = load_state_dict_with_report(model, most, source='most.pth',
                                         allow_partial=True)
    assert not report.clean and report.missing


def test_non_finite_tensors_are_an_error(tmp_path):
    model = PoolFormer('s12')
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state['stages.1.blocks.0.mlp.fc1.weight'].fill_(float('nan'))
    state['norm3.bias'][0] = float('inf')
    path = _save(state, tmp_path)
    with pytest.raises(ValueError) as info:
        PoolFormer('s12').load_pretrained(path)
    message = str(info.value)
    assert '2 tensors hold NaN or Inf' in message
    assert 'stages.1.blocks.0.mlp.fc1.weight' in message
    assert 'norm3.bias' in message


def test_wrong_prefix_lists_what_is_there(tmp_path, s12_dense):
    path = _save({'state_dict': {f'backbone.{k}': v
                                 for k, v in s12_dense.items()}}, tmp_path)
    with pytest.raises(ValueError,
                       match=r"No key starts with prefix='model\.'; the "
                       r"checkpoint holds 'backbone\.' \(\d+ tensors\)"):
        PoolFormer('s12').load_pretrained(path, prefix='model.')


# ------------------------------------------------------- partial loads
def _missing_half(model):
    own = model.state_dict()
    return {k: v for i, (k, v) in enumerate(own.items()) if i % 2}


def test_deeper_arch_of_the_family_is_a_refused_partial_load():
    """s24 weights in an s12 model: every s12 tensor fits, 120 s24 keys do
    not; that used to load with a WARNING and training went on."""
    s24 = PoolFormer('s24').state_dict()
    model = PoolFormer('s12')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as info:
        model.load_converted(s24, source='s24.pth')
    message = str(info.value)
    assert f's24.pth fills {len(before)} of the model' in message
    assert 'are not in the model' in message and 'refused' in message
    assert "build PoolFormer with arch='s24'" in message
    assert 'allow_partial=True' in message and '--allow-partial' in message
    # nothing was copied
    assert all(torch.equal(v, before[k])
               for k, v in model.state_dict().items())
    report = model.load_converted(s24, allow_partial=True)
    assert len(report.unexpected) == 120 and not report.clean


def test_half_the_keys_missing_needs_the_opt_in(tmp_path):
    model = PoolFormer('s12')
    path = _save(_missing_half(model), tmp_path)
    cfg = dict(type='Pretrained', checkpoint=path)
    with pytest.raises(ValueError, match='keys are missing from it') as info:
        PoolFormer('s12', init_cfg=cfg).init_weights()
    assert 'Missing: stem.' in str(info.value)
    partial = PoolFormer('s12', init_cfg=dict(cfg, allow_partial=True))
    partial.init_weights()
    loaded = dict(partial.state_dict())
    assert all(torch.equal(loaded[k], v)
               for k, v in _missing_half(model).items())


def test_a_few_differing_keys_still_load_with_a_warning():
    """At most MAX_PARTIAL_FRACTION of the model differs: loaded, reported
    (the threshold is not 'any key')."""
    model = PoolFormer('s12')
    state = dict(model.state_dict())
    del state['stages.3.blocks.0.mlp.fc2.bias']
    state['extra.weight'] = torch.zeros(2)
    report = load_state_dict_with_report(PoolFormer('s12'), state)
    assert report.missing == ['stages.3.blocks.0.mlp.fc2.bias']
    assert report.unexpected == ['extra.weight']


# --------------------------------------- a file of another family is named
def _tiny(name):
    from mmmetaformer.registry import MODELS
    from tests.test_models.test_backbones.tiny_archs import ALL_TINY_ARCHS
    torch.manual_seed(0)
    return MODELS.build(dict(type=name, **ALL_TINY_ARCHS[name]))


def _flax_mixer_npz(model, path):
    """A tiny MLPMixer's weights as an official Flax ``.npz``: parameter
    paths and layouts written here from the Flax model's structure
    (``MixerBlock_i/{LayerNorm_j,token_mixing,channel_mixing}``, kernels
    (in, out) and (kh, kw, in, out), LayerNorm ``scale``)."""
    sd = model.state_dict()
    arrays = {
        'stem/kernel': sd['stem.conv.weight'].permute(2, 3, 1, 0),
        'stem/bias': sd['stem.conv.bias'],
        'pre_head_layer_norm/scale': sd['norm.weight'],
        'pre_head_layer_norm/bias': sd['norm.bias'],
        'head/kernel': torch.zeros(sd['norm.weight'].shape[0], 10),
        'head/bias': torch.zeros(10),
    }
    for i in range(model.depths[0]):
        ours = f'stages.0.blocks.{i}.'
        flax = f'MixerBlock_{i}/'
        for j in (0, 1):
            arrays[f'{flax}LayerNorm_{j}/scale'] = sd[f'{ours}norm{j + 1}'
                                                      '.weight']
            arrays[f'{flax}LayerNorm_{j}/bias'] = sd[f'{ours}norm{j + 1}.bias']
            for part, module in (('token_mixing', 'token_mixer.mix'),
                                 ('channel_mixing', 'mlp')):
                weight = sd[f'{ours}{module}.fc{j + 1}.weight']
                arrays[f'{flax}{part}/Dense_{j}/kernel'] = weight.reshape(
                    weight.shape[:2]).t()
                arrays[f'{flax}{part}/Dense_{j}/bias'] = sd[
                    f'{ours}{module}.fc{j + 1}.bias']
    np.savez(path, **{k: v.numpy() for k, v in arrays.items()})
    return str(path)


@pytest.fixture
def mixer_npz(tmp_path):
    mixer = _tiny('MLPMixer')
    path = _flax_mixer_npz(mixer, tmp_path / 'Mixer-T.npz')
    # the file is a valid MLP-Mixer checkpoint
    other = _tiny('MLPMixer')
    other.load_state_dict({k: torch.zeros_like(v)
                           for k, v in other.state_dict().items()})
    report = other.load_pretrained(path)
    assert report.key_format == 'official' and report.clean
    assert all(torch.equal(other.state_dict()[k], v)
               for k, v in mixer.state_dict().items()
               if not k.startswith('pyramid.'))
    return path


@pytest.mark.parametrize('family', ['ResMLP', 'PiT', 'PoolFormer'])
def test_mixer_npz_in_another_family_is_named(mixer_npz, family):
    """It was "a zip archive that is not a torch checkpoint"."""
    with pytest.raises(ValueError) as info:
        _tiny(family).load_pretrained(mixer_npz)
    message = str(info.value)
    assert f'{mixer_npz} is an MLPMixer checkpoint (official key names' \
        in message
    assert f'this model is {family}' in message
    assert "Use type='mmmetaformer.MLPMixer'" in message
    assert 'zip archive' not in message


@pytest.mark.parametrize('fmt', ['pth', 'legacy', 'safetensors'])
def test_pit_file_in_poolformer_is_named(tmp_path, fmt):
    state = _tiny('PiT').state_dict()
    path = tmp_path / f'pit.{fmt}'
    if fmt == 'safetensors':
        path.write_bytes(_safetensors_bytes(state))
    else:
        torch.save(state, path, _use_new_zipfile_serialization=fmt == 'pth')
    with pytest.raises(ValueError) as info:
        _tiny('PoolFormer').load_pretrained(str(path))
    message = str(info.value)
    assert 'is a PiT checkpoint (native key names' in message
    assert "this model is PoolFormer. Use type='mmmetaformer.PiT'" in message


def test_own_checkpoint_names_no_other_family(tmp_path):
    """A model's own file of another arch is not called another family;
    a shape mismatch names the arch it is."""
    from mmmetaformer.models.backbones import PiT
    path = _save(PiT('xs').state_dict(), tmp_path)
    with pytest.raises(ValueError) as info:
        PiT('ti').load_pretrained(path)
    message = str(info.value)
    assert 'Shape mismatch' in message
    assert "build PiT with arch='xs'" in message


# ----------------------------------------------------------- messages
def test_truncated_npz_names_the_file(mixer_npz, tmp_path):
    data = open(mixer_npz, 'rb').read()
    cut = tmp_path / 'cut.npz'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(checkpoint.CheckpointError) as info:
        _tiny('MLPMixer').load_pretrained(str(cut))
    assert str(cut) in str(info.value)
    assert 'truncated' in str(info.value)


def test_damaged_npz_member_names_the_file(mixer_npz, tmp_path):
    """A member whose data is damaged (directory intact) raised a bare
    BadZipFile from numpy."""
    data = bytearray(open(mixer_npz, 'rb').read())
    with zipfile.ZipFile(mixer_npz) as archive:
        info = archive.infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(
        info.extra)
    data[start + 200] ^= 0xFF  # inside the first array's bytes: a CRC error
    bad = tmp_path / 'bad.npz'
    bad.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointError) as info:
        load_checkpoint_file(str(bad))
    assert str(bad) in str(info.value) and 'BadZipFile' in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a CPU machine')
@pytest.mark.parametrize('map_location', ['cuda', 'cuda:0',
                                          {'cpu': 'cuda'}])
def test_cuda_map_location_on_a_cpu_machine(tmp_path, map_location):
    path = _save({'w': torch.ones(2)}, tmp_path)
    with pytest.raises(checkpoint.CheckpointError) as info:
        load_checkpoint_file(path, map_location=map_location)
    message = str(info.value)
    assert f'map_location={map_location!r}' in message and path in message
    assert 'CUDA is not available' in message
    assert 'Download it again' not in message


def test_allow_partial_reaches_only_this_packages_backbones():
    """``tools/train.py --allow-partial`` sets the opt-in on the backbone's
    Pretrained init_cfg, not on other modules' (mmengine's Pretrained
    would reject the argument)."""
    from mmmetaformer.launch import allow_partial_pretrained
    model = dict(
        type='RetinaNet',
        backbone=dict(type='mmmetaformer.PoolFormer', arch='s12',
                      init_cfg=dict(type='Pretrained', checkpoint='a.pth')),
        neck=dict(type='FPN', init_cfg=[dict(type='Pretrained',
                                             checkpoint='b.pth')]))
    changes = allow_partial_pretrained(model)
    assert changes == ['mmmetaformer.PoolFormer init_cfg.allow_partial=True '
                       '(--allow-partial)']
    assert model['backbone']['init_cfg']['allow_partial'] is True
    assert 'allow_partial' not in model['neck']['init_cfg'][0]


def test_detector_file_of_another_family_without_prefix_is_named(tmp_path):
    """Its backbone is found under 'backbone.' and named."""
    from tests.test_models.test_backbones.tiny_archs import ALL_TINY_ARCHS
    state = {f'backbone.{k}': v for k, v in _tiny('ResT').state_dict().items()}
    state['neck.fpn_convs.0.conv.weight'] = torch.zeros(1)
    path = _save({'state_dict': state}, tmp_path)
    with pytest.raises(ValueError) as info:
        PoolFormer(**ALL_TINY_ARCHS['PoolFormer']).load_pretrained(path)
    assert (f"{path} (under prefix='backbone.') is a ResT checkpoint "
            "(native key names") in str(info.value)
    assert "this model is PoolFormer. Use type='mmmetaformer.ResT'" \
        in str(info.value)
