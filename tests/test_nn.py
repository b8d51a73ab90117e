import numpy as np
import pytest

from tinysegnet import nn


def _tiny(rng):
    pool = nn.MaxPool2x2()
    return nn.Sequential(nn.Conv2d(2, 3, 3, rng=rng), nn.BatchNorm2d(3), nn.ReLU(), pool,
                         nn.Unpool2x2(pool), nn.Conv2d(3, 2, 1, rng=rng))


def test_parameters_buffers_and_state_dict_roundtrip(rng):
    a, b = _tiny(np.random.default_rng(0)), _tiny(np.random.default_rng(1))
    names = list(a.state_dict())
    assert names == ["layers.0.weight", "layers.0.bias", "layers.1.gamma", "layers.1.beta",
                     "layers.5.weight", "layers.5.bias", "layers.1.running_mean", "layers.1.running_var"]
    assert a.num_parameters() == 2 * 3 * 9 + 3 + 3 + 3 + 3 * 2 + 2
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    x = rng.standard_normal((2, 2, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(a.eval()(x), b.eval()(x))


def test_load_state_dict_names_what_differs():
    model = _tiny(np.random.default_rng(0))
    state = model.state_dict()
    with pytest.raises(ValueError, match="missing .*layers.0.weight"):
        model.load_state_dict({k: v for k, v in state.items() if k != "layers.0.weight"})
    bad = dict(state, **{"layers.0.bias": np.zeros(5, np.float32)})
    with pytest.raises(ValueError, match="layers.0.bias has shape \\(5,\\)"):
        model.load_state_dict(bad)


def test_eval_keeps_no_cache_and_backward_says_why(rng):
    model = _tiny(rng).eval()
    model(rng.standard_normal((1, 2, 4, 4)).astype(np.float32))
    assert all(getattr(m, "_cache", None) is None for m in model.modules())
    with pytest.raises(RuntimeError, match="train\\(\\)"):
        model.backward(np.zeros((1, 2, 4, 4), np.float32))


def test_unpool_is_linked_not_a_child():
    pool = nn.MaxPool2x2()
    assert list(nn.Unpool2x2(pool).children()) == []


def test_to_device_and_back(xp, rng):
    model = _tiny(rng)
    device = "cpu" if xp is np else "gpu"
    model.to(device)
    out = model(xp.asarray(rng.standard_normal((1, 2, 4, 4)).astype(np.float32)))
    assert type(out) is type(xp.zeros(1))
    model.to("cpu")
    assert all(isinstance(v, np.ndarray) for v in model.state_dict().values())


def test_backward_replaces_gradients_rather_than_adding():
    """No zero_grad: each backward pass assigns every gradient afresh."""
    from tinysegnet import nn as tnn
    layer = tnn.Conv2d(2, 3, 3, rng=np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((1, 2, 5, 5))
    layer.forward(x)
    layer.backward(np.ones((1, 3, 5, 5)))
    first = layer.weight.grad.copy()
    layer.forward(x)
    layer.backward(np.ones((1, 3, 5, 5)))
    np.testing.assert_array_equal(layer.weight.grad, first)


def test_named_modules_names_them_as_the_state_dict_does():
    from tinysegnet.models import SegNetBasic
    model = SegNetBasic(width=4, kernel=3, seed=0)
    named = dict(model.named_modules())
    assert named[""] is model
    for key in model.state_dict():
        owner, _, leaf = key.rpartition(".")
        assert owner in named and (hasattr(named[owner], leaf))
    assert [m for _, m in model.named_modules()] == list(model.modules())


def test_a_layer_in_eval_mode_keeps_no_cache():
    layer = nn.ReLU()
    layer.eval().forward(np.ones((1, 1, 2, 2), np.float32))
    with pytest.raises(RuntimeError, match="no forward pass in training mode"):
        layer.backward(np.ones((1, 1, 2, 2), np.float32))
