"""mmmetaformer.checkpoint.reading (and .sniff): local files of every
format read, unreadable ones refused with one error that names the file
and what it appears to be."""
import io
import pickle
import sys
import zipfile

import numpy as np
import pytest
import torch

from mmmetaformer.checkpoint import (CheckpointError, describe_file,
                                     load_checkpoint_file)
from tests.test_checkpoint.files import safetensors_bytes, save, tiny


# ------------------------------------------------------------ safetensors
def test_safetensors_file_is_read_whatever_its_name(tmp_path):
    pytest.importorskip('safetensors')
    tensors = {'stem.conv.weight': torch.arange(6.).view(2, 3)}
    path = tmp_path / 'pytorch_model.bin'  # the content decides
    path.write_bytes(safetensors_bytes(tensors))
    ckpt = load_checkpoint_file(str(path))
    assert torch.equal(ckpt['stem.conv.weight'], tensors['stem.conv.weight'])


def test_safetensors_without_the_package(tmp_path, monkeypatch):
    path = tmp_path / 'model.safetensors'
    path.write_bytes(safetensors_bytes({'w': torch.ones(2)}))
    monkeypatch.setitem(sys.modules, 'safetensors', None)
    monkeypatch.setitem(sys.modules, 'safetensors.torch', None)
    with pytest.raises(CheckpointError,
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
    assert describe_file(path)[0] == 'pickle'
    assert load_checkpoint_file(path)['state_dict']['w'].sum() == 2


def test_unsupported_scheme_and_missing_file(tmp_path):
    with pytest.raises(ValueError,
                       match=r"Unsupported URL scheme 'ftp' in "
                       r'ftp://host/w\.pth: give a local path or an http'):
        load_checkpoint_file('ftp://host/w.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))


# ---------------------------------------------------------- numpy .npz
def test_truncated_npz_names_the_file(mixer_npz, tmp_path):
    data = open(mixer_npz, 'rb').read()
    cut = tmp_path / 'cut.npz'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        tiny('MLPMixer').load_pretrained(str(cut))
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
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_file(str(bad))
    assert str(bad) in str(info.value) and 'BadZipFile' in str(info.value)


# -------------------------------------------------------- map_location
@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a CPU machine')
@pytest.mark.parametrize('map_location', ['cuda', 'cuda:0',
                                          {'cpu': 'cuda'}])
def test_cuda_map_location_on_a_cpu_machine(tmp_path, map_location):
    path = save({'w': torch.ones(2)}, tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_file(path, map_location=map_location)
    message = str(info.value)
    assert f'map_location={map_location!r}' in message and path in message
    assert 'CUDA is not available' in message
    assert 'Download it again' not in message
