"""SimpleFeaturePyramid (ViTDet's branches) on stride-16 and stride-8
maps."""
import pytest
import torch
import torch.nn.functional as F

from mmmetaformer.models.layers import SimpleFeaturePyramid


def test_stride_16_branches():
    torch.manual_seed(0)
    pyramid = SimpleFeaturePyramid(8, 16, range(4)).eval()
    assert pyramid.out_channels == [2, 4, 8, 8]
    x = torch.randn(1, 8, 7, 9)
    with torch.no_grad():
        outs = pyramid(x)
    assert [tuple(o.shape[1:]) for o in outs] == [
        (2, 28, 36), (4, 14, 18), (8, 7, 9), (8, 4, 5)]
    assert torch.equal(outs[2], x)
    assert torch.equal(outs[3], F.max_pool2d(x, 2, 2, ceil_mode=True))
    up, norm, act, up2 = pyramid.fpn0
    with torch.no_grad():
        y = up(x)
        y = F.layer_norm(y.permute(0, 2, 3, 1), (4, ), norm.weight,
                         norm.bias, 1e-6).permute(0, 3, 1, 2)
        assert torch.allclose(outs[0], up2(F.gelu(y)), atol=1e-6)
    assert not hasattr(pyramid, 'fpn2') or not list(
        pyramid.fpn2.parameters())


def test_stride_8_branches_and_subsets():
    pyramid = SimpleFeaturePyramid(8, 8, (1, 3))
    assert pyramid.out_channels == [8, 8]
    x = torch.randn(1, 8, 9, 13)
    outs = pyramid(x)
    assert torch.equal(outs[0], x)
    assert torch.equal(outs[1], F.max_pool2d(x, 4, 4, ceil_mode=True))
    assert not hasattr(pyramid, 'fpn0')


@pytest.mark.parametrize('dim, stride, message', [
    (6, 16, 'divisible by 4'), (8, 32, 'No pyramid branch')])
def test_errors(dim, stride, message):
    with pytest.raises(ValueError, match=message):
        SimpleFeaturePyramid(dim, stride, range(4))
