"""mmmetaformer.checkpoint.cache: downloads kept once under a name keyed by
the full URL, verified (length, hash in the file name, not a web page)
before they are kept, damaged cached files downloaded again."""
import hashlib
import io
import os
import os.path as osp

import pytest
import torch

from mmmetaformer.checkpoint import cached_path, load_checkpoint_file
from mmmetaformer.models.backbones import PoolFormer
from tests.test_checkpoint.files import Server, pth_bytes


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / 'cache'
    monkeypatch.setenv('MMMETAFORMER_CHECKPOINTS', str(directory))
    return directory


def test_cache_is_keyed_by_the_full_url(cache):
    """Two Hugging Face-style URLs with the same file name must give each
    its own weights (the old cache served the first file for both)."""
    a = pth_bytes({'w': torch.zeros(3)})
    b = pth_bytes({'w': torch.ones(3)})
    with Server({'/a/resolve/main/pytorch_model.bin': a,
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
    with Server({'/release/poolformer_s12.pth.tar': pth_bytes(
            {'model': weights})}) as server:
        url = server.url('/release/poolformer_s12.pth.tar')
        model = PoolFormer('s12',
                           init_cfg=dict(type='Pretrained', checkpoint=url))
        model.init_weights()
        assert model.load_pretrained(url).clean
        assert server.gets == ['/release/poolformer_s12.pth.tar']
    assert torch.equal(model.state_dict()['norm3.weight'],
                       weights['norm3.weight'])
    assert os.listdir(cache) == [osp.basename(cached_path(url))]


def test_hash_in_the_url_is_verified(cache):
    body = pth_bytes({'w': torch.ones(2)})
    digest = hashlib.sha256(body).hexdigest()
    with Server({f'/w-{digest[:8]}.pth': body,
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
    with Server({'/drive/model.pth': page}) as server:
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
    with Server({'/w.pth': body}, cut={'/w.pth': len(body) // 2}) as server:
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
    body = pth_bytes({'w': torch.ones(1000)})
    digest = hashlib.sha256(body).hexdigest()
    with Server({f'/w-{digest[:8]}.pth': body}) as server:
        url = server.url(f'/w-{digest[:8]}.pth')
        path = cached_path(url)
        os.makedirs(cache)
        with open(path, 'wb') as f:
            f.write({'truncated': body[:len(body) // 2],
                     'wrong hash': pth_bytes({'w': torch.zeros(1000)}),
                     'empty': b''}[damage])
        assert load_checkpoint_file(url)['w'].sum() == 1000
        assert len(server.gets) == 1
        assert load_checkpoint_file(url)['w'].sum() == 1000  # now cached
        assert len(server.gets) == 1
    err = capsys.readouterr().err
    assert f'The cached download {path} of {url} is damaged (' in err
    assert 'removing it and downloading it again' in err
    assert os.listdir(cache) == [osp.basename(path)]
