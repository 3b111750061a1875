"""ResT's EMSA token mixer (models/layers/emsa.py): the InstanceNorm of
constant attention maps and ResTV2's upsampling branch on odd sizes."""
import pytest
import torch
import torch.nn.functional as F

from mmmetaformer.models.layers.emsa import EMSA, instance_norm_attention


def test_one_by_one_attention_map_is_zero():
    """InstanceNorm of a constant (in particular 1x1) attention map is 0,
    the value of the formula with variance 0, where nn.InstanceNorm2d
    raises on 1x1."""
    one = torch.rand(2, 4, 1, 1)
    assert torch.equal(instance_norm_attention(one), torch.zeros_like(one))
    with pytest.raises(ValueError):
        torch.nn.InstanceNorm2d(4)(one)
    constant = torch.full((2, 4, 3, 1), 1.0)
    assert torch.equal(instance_norm_attention(constant),
                       F.instance_norm(constant))
    assert not instance_norm_attention(constant).any()
    a = torch.rand(2, 4, 5, 3, dtype=torch.float64)
    assert torch.allclose(instance_norm_attention(a),
                          torch.nn.InstanceNorm2d(4)(a))
    # a 1x1 stage-4 map: the attention contributes the projection bias only
    mixer = EMSA(16, num_heads=2, sr_ratio=1, head_transform=True).eval()
    x = torch.randn(3, 1, 1, 16)
    out = mixer(x)
    assert torch.allclose(out, mixer.proj.bias.expand_as(out))


def test_restv2_upsample_crop_on_odd_sizes():
    """The value map has the reduced map's real size; the upsampled map is
    cropped to the query map (bottom/right)."""
    mixer = EMSA(16, num_heads=2, sr_ratio=4, upsample=True).eval()
    x = torch.randn(2, 9, 13, 16)
    with torch.no_grad():
        out = mixer(x)
        v_map = mixer.kv(mixer.sr_norm(mixer.sr(x.permute(0, 3, 1, 2))
                                       .permute(0, 2, 3, 1)))[..., 16:]
        assert v_map.shape[1:3] == (3, 4)  # ceil(9 / 4), ceil(13 / 4)
        full = mixer.up(v_map.permute(0, 3, 1, 2))
        assert full.shape[2:] == (12, 16)
    assert out.shape == x.shape
    # on a multiple of sr nothing is cropped: the up-branch equals the
    # official reshape of v (B, heads, N', d) -> (B, C, H / sr, W / sr)
    x = torch.randn(1, 8, 12, 16)
    B, H, W, C = x.shape
    with torch.no_grad():
        y = mixer.sr_norm(mixer.sr(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
        kv = mixer.kv(y).reshape(B, -1, 2, 2, 8).permute(2, 0, 3, 1, 4)
        official_v_map = kv[1].transpose(-1, -2).reshape(B, C, H // 4, W // 4)
        ours = mixer.kv(y)[..., C:].permute(0, 3, 1, 2)
    assert torch.equal(official_v_map, ours)
