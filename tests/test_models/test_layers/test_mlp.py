"""The channel MLP and StarReLU (layers/mlp.py): with their fast paths
(layers/fastpath.py) they compute the textbook formulas (values and
gradients) and keep the input's dtype under bfloat16 autocast."""
import pytest
import torch
import torch.nn.functional as F

from mmmetaformer.models.layers import SepConv
from mmmetaformer.models.layers.mlp import Mlp, StarReLU


def _star_relu_formula(act, x):
    return act.scale * F.relu(x)**2 + act.bias


def _random_star_relu(act):
    with torch.no_grad():
        act.scale.fill_(1.3)
        act.bias.fill_(-0.2)
    return act


def test_star_relu_matches_formula_and_in_place_variant():
    act = _random_star_relu(StarReLU()).double()
    x = torch.randn(4, 5, 6, dtype=torch.float64)
    expected = _star_relu_formula(act, x)
    torch.testing.assert_close(act(x), expected, rtol=1e-14, atol=1e-14)
    y = F.relu(x)
    with torch.no_grad():
        out = act.square_relu_output_(y)
    assert out.data_ptr() == y.data_ptr()  # computed in place
    torch.testing.assert_close(out, expected, rtol=1e-14, atol=1e-14)
    # where autograd needs the scalars: out of place, gradients intact
    out = act.square_relu_output_(F.relu(x))
    torch.testing.assert_close(out, expected, rtol=1e-14, atol=1e-14)
    got = torch.autograd.grad(out.sum(), [act.scale, act.bias])
    want = torch.autograd.grad(expected.sum(), [act.scale, act.bias])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_star_relu_keeps_bfloat16_under_autocast():
    # the float32 (1,) parameters used to promote the whole map to float32
    act = StarReLU()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        x = F.linear(torch.randn(2, 8), torch.randn(8, 8))  # bfloat16
        assert act(x).dtype == torch.bfloat16
        assert act.square_relu_output_(F.relu(x)).dtype == torch.bfloat16


@pytest.mark.parametrize('bias', [False, True])
@pytest.mark.parametrize('act', ['StarReLU', 'GELU'])
def test_mlp_equals_unfused_formula(act, bias):
    """Mlp folds StarReLU's scale and bias behind fc2: same values and the
    same gradients as fc2(act(fc1(x))), with and without autograd."""
    torch.manual_seed(0)
    mlp = Mlp(6, 24, act=act, bias=bias).double()
    if act == 'StarReLU':
        _random_star_relu(mlp.act)
    x = torch.randn(2, 5, 7, 6, dtype=torch.float64, requires_grad=True)

    def unfused(m, t):
        return m.fc2(m.act(m.fc1(t)))

    expected = unfused(mlp, x)
    out = mlp(x)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(mlp(x), expected, rtol=1e-12,
                                   atol=1e-12)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, [x, *mlp.parameters()], grad)
    want = torch.autograd.grad(expected, [x, *mlp.parameters()], grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_mlp_and_sepconv_keep_bfloat16_under_autocast():
    torch.manual_seed(0)
    x = torch.randn(1, 8, 9, 8)
    for module in (Mlp(8, 32, act='StarReLU', bias=False), SepConv(8)):
        with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
            assert module(x).dtype == torch.bfloat16


def test_sepconv_in_place_path_equals_autograd_path():
    torch.manual_seed(0)
    mixer = SepConv(6).double()
    _random_star_relu(mixer.act1)
    x = torch.randn(2, 9, 11, 6, dtype=torch.float64)
    expected = mixer.pwconv2(
        mixer.dwconv(
            _star_relu_formula(mixer.act1, mixer.pwconv1(x)).permute(
                0, 3, 1, 2)).permute(0, 2, 3, 1))
    torch.testing.assert_close(mixer(x), expected, rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(mixer(x), expected, rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize('module', ['Mlp-StarReLU', 'Mlp-GELU', 'SepConv'])
def test_bf16_inference_path_equals_autocast_training_path(module):
    """Without gradients (fused oneDNN projections, in-place StarReLU) the
    bfloat16 outputs equal those of the autograd path up to rounding."""
    torch.manual_seed(0)
    if module == 'SepConv':
        layer = SepConv(16)
        _random_star_relu(layer.act1)
    else:
        layer = Mlp(16, 64, act=module.split('-')[1])
        if module == 'Mlp-StarReLU':
            _random_star_relu(layer.act)
    x = torch.randn(1, 12, 10, 16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        trained = layer(x)
        with torch.no_grad():
            inferred = layer(x)
    assert inferred.dtype == trained.dtype == torch.bfloat16
    error = (inferred.float() - trained.float()).norm() / trained.float().norm()
    assert error < 2**-7, error
