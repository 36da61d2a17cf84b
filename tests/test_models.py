"""Tests of analysis.models: registry, shapes, determinism, the explicit RNN, double backward."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import grad, jvp

from analysis import models

CORE = {
    "linear": {},
    "mlp": {"widths": (12, 8), "activation": "tanh"},
    "cnn_small": {"channels": (4, 6), "hidden": 16},
    "rnn_rows": {"hidden": 10},
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one intra-op thread (two threads on a busy 2-core machine are ~50x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_registry_lists_core_models_and_rejects_unknown():
    assert set(CORE) <= set(models.available())
    assert models.available() == sorted(models.available())
    with pytest.raises(ValueError, match="unknown model 'mpl'.*mlp"):
        models.build("mpl")


def test_register_new_name_and_conflict():
    @models.register("_test_tiny")
    def tiny(in_shape=(3,), num_classes=2):
        return nn.Linear(3, num_classes)

    try:
        assert "_test_tiny" in models.available()
        m = models.build("_test_tiny", num_classes=4)
        assert m.out_features == 4 and m.spec == ("_test_tiny", {"num_classes": 4})
        with pytest.raises(ValueError, match="already registered"):
            models.register("_test_tiny")(lambda: nn.Linear(1, 1))
    finally:
        models._REGISTRY.pop("_test_tiny", None)


@pytest.mark.parametrize("name", list(CORE))
def test_shapes_and_flattening(name):
    m = models.build(name, seed=0, **CORE[name])
    x = torch.rand(5, 1, 28, 28)
    out = m(x)
    assert out.shape == (5, 10)
    assert torch.allclose(m(x.reshape(5, -1)), out, atol=1e-6)  # flat input is reshaped


@pytest.mark.parametrize("name", list(CORE))
def test_seeded_init_is_deterministic(name):
    a = models.build(name, seed=3, **CORE[name])
    b = models.build(name, seed=3, **CORE[name])
    c = models.build(name, seed=4, **CORE[name])
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    torch.manual_seed(3)
    d = models.build(name, **CORE[name])
    assert all(torch.equal(sa[k], d.state_dict()[k]) for k in sa)


def test_build_with_seed_leaves_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    models.build("mlp", seed=7)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("act", ["relu", "tanh", "softplus", "swish", "sigmoid"])
def test_mlp_activations(act):
    m = models.build("mlp", in_shape=(3,), widths=(4,), num_classes=2, activation=act, seed=0)
    x = torch.randn(6, 3)
    fc1, fc2 = m.net[0], m.net[2]
    f = {"relu": torch.relu, "tanh": torch.tanh, "softplus": nn.functional.softplus,
         "swish": lambda z: z * torch.sigmoid(z), "sigmoid": torch.sigmoid}[act]
    assert torch.allclose(m(x), fc2(f(fc1(x))), atol=1e-6)
    with pytest.raises(ValueError, match="unknown activation"):
        models.build("mlp", activation="gelu2")


def test_rnn_rows_matches_torch_rnn():
    """The explicit recurrence equals nn.RNN with the same weights (28 steps of 28 pixels)."""
    m = models.build("rnn_rows", hidden=7, seed=0).double()
    ref = nn.RNN(28, 7, nonlinearity="tanh", batch_first=True).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(m.ih.weight)
        ref.bias_ih_l0.copy_(m.ih.bias)
        ref.weight_hh_l0.copy_(m.hh.weight)
        ref.bias_hh_l0.copy_(m.hh.bias)
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    seq, h_last = ref(x[:, 0])  # rows are the time steps
    assert torch.allclose(m.hidden_states(x), seq, atol=1e-12)
    assert torch.allclose(m(x), m.out(h_last[0]), atol=1e-12)


def test_rnn_rows_tabular_rows_and_errors():
    m = models.build("rnn_rows", in_shape=(12,), rows=3, hidden=5, num_classes=2, seed=0)
    assert m(torch.randn(2, 12)).shape == (2, 2)
    with pytest.raises(ValueError, match="rows"):
        models.build("rnn_rows", in_shape=(12,), rows=5)


def _hvp_check(m, x, y):
    """Hessian-vector product of the loss in the input by forward-over-reverse ``torch.func``,
    against central finite differences of the gradient (float64)."""
    def loss(z):
        return nn.functional.cross_entropy(m(z), y, reduction="sum")

    v = torch.randn_like(x)
    _, hv = jvp(grad(loss), (x,), (v,))
    h = 1e-5
    fd = (grad(loss)(x + h * v) - grad(loss)(x - h * v)) / (2 * h)
    return hv, fd


def test_rnn_rows_double_backward_hvp():
    torch.manual_seed(0)
    m = models.build("rnn_rows", in_shape=(1, 12, 12), hidden=8, seed=1).double()
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    y = torch.tensor([3, 5])
    hv, fd = _hvp_check(m, x, y)
    assert hv.abs().max() > 1e-6  # a tanh RNN has curvature in the input
    assert torch.allclose(hv, fd, rtol=1e-5, atol=1e-8)
    # the same through plain autograd double backward
    xr = x.clone().requires_grad_(True)
    g = torch.autograd.grad(nn.functional.cross_entropy(m(xr), y, reduction="sum"), xr,
                            create_graph=True)[0]
    v = torch.randn_like(x)
    hv2 = torch.autograd.grad((g * v).sum(), xr)[0]
    assert torch.allclose(hv2, _hvp_with(m, x, y, v), atol=1e-10)


def _hvp_with(m, x, y, v):
    def loss(z):
        return nn.functional.cross_entropy(m(z), y, reduction="sum")

    return jvp(grad(loss), (x,), (v,))[1]


def test_hvp_linear_and_softplus_models():
    """The same HVP check on two other models; their HVPs differ (the check is not vacuous)."""
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    y = torch.tensor([0, 1, 2])
    lin = models.build("linear", seed=0).double()
    hv, fd = _hvp_check(lin, x, y)
    assert torch.allclose(hv, fd, rtol=1e-5, atol=1e-8)
    smooth = models.build("mlp", widths=(16,), activation="softplus", seed=0).double()
    hv_s, fd_s = _hvp_check(smooth, x, y)
    assert torch.allclose(hv_s, fd_s, rtol=1e-5, atol=1e-8)
    assert not torch.allclose(hv, hv_s)


def test_cnn_small_shape_errors():
    with pytest.raises(ValueError):
        models.build("cnn_small", in_shape=(784,))
    with pytest.raises(ValueError):
        models.build("cnn_small", pool="median")
    m = models.build("cnn_small", in_shape=(3, 32, 32), channels=(4, 4), hidden=8, seed=0)
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 10)
