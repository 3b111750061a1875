"""Files for the checkpoint tests (and tests/test_reproduce.py): a local
HTTP server, checkpoint bytes, safetensors and Flax ``.npz`` files written
from their specifications, tiny models."""
import http.server
import io
import json
import struct
import threading

import numpy as np
import torch


def save(obj, tmp_path, name='w.pth'):
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path


def pth_bytes(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


def safetensors_bytes(tensors):
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


class Server:
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


def tiny(name):
    from mmmetaformer.registry import MODELS
    from tests.test_models.test_backbones.tiny_archs import ALL_TINY_ARCHS
    torch.manual_seed(0)
    return MODELS.build(dict(type=name, **ALL_TINY_ARCHS[name]))


def flax_mixer_npz(model, path):
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
