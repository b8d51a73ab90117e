import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet.gradcheck import check_gradients

from conftest import rel_close


def test_forward_and_gradient(xp, rng):
    # Keep inputs away from the kink at 0, where the derivative is undefined.
    x = rng.standard_normal((2, 3, 4, 5))
    x = xp.asarray(np.where(np.abs(x) < 0.05, 0.5, x))
    out, cache = F.relu_forward(x)
    rel_close(out, xp.maximum(x, 0), 0)
    dout = xp.asarray(rng.standard_normal(x.shape))
    dx = F.relu_backward(dout, cache)
    errors = check_gradients(lambda x: F.relu_forward(x)[0], dict(x=x), dict(x=dx), dout)
    assert errors["x"] < 1e-6


def test_keeps_dtype():
    out, mask = F.relu_forward(np.array([-1.0, 2.0], np.float32))
    assert out.dtype == np.float32
    assert F.relu_backward(np.ones(2, np.float32), mask).dtype == np.float32


def test_agrees_with_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    out, cache = F.relu_forward(x)
    tx = torch.tensor(x, requires_grad=True)
    tout = torch.relu(tx)
    tout.backward(torch.tensor(dout))
    rel_close(out, tout.detach().numpy())
    rel_close(F.relu_backward(dout, cache), tx.grad.numpy())


def test_inplace_relu_is_the_forward_written_into_its_input(xp, rng):
    from tinysegnet.functional.activation import relu_inplace
    x = xp.asarray(rng.standard_normal((2, 3, 4, 5)))
    expected = F.relu_forward(x)[0]
    out = relu_inplace(x)
    assert (x == expected).all() and (out == expected).all()  # written into x, and returned


def test_a_model_in_eval_mode_rectifies_in_place_and_keeps_no_masks(rng, monkeypatch):
    """SegNet-Basic's encoder (conv, batch norm, ReLU) in inference: the ReLUs run in place
    after the folded convolutions, relu_forward (which builds the mask) is never called."""
    from tinysegnet.models import SegNetBasic
    model = SegNetBasic(width=4, kernel=3, seed=0).astype(np.float64).eval()
    image = rng.standard_normal((2, 3, 12, 10))
    expected = model.forward(image)
    called = []
    monkeypatch.setattr("tinysegnet.nn.relu_inplace", lambda x: called.append(1) or np.maximum(x, 0, out=x))
    assert np.abs(model.forward(image) - expected).max() == 0 and len(called) == 4
    assert all(m._cache is None for m in model.modules())
