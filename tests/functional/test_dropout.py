import numpy as np
import pytest

from tinysegnet import backend
from tinysegnet import functional as F
from tinysegnet.gradcheck import GradientCheckError, check_gradients

from conftest import rel_close


def test_keep_rate_and_scaling(xp):
    x = xp.ones((200, 500), dtype=xp.float32)
    out, cache = F.dropout_forward(x, 0.3, True, xp.random.default_rng(0))
    kept = float(cache.keep.mean())
    assert abs(kept - 0.7) < 0.005  # 100,000 draws: 0.7 within 3 sigma
    values = np.unique(backend.to_numpy(out))
    np.testing.assert_allclose(values, [0.0, 1 / 0.7], rtol=1e-6)  # kept ones scaled by 1/(1-p)
    assert abs(float(out.mean()) - 1.0) < 0.01  # the expectation is kept
    assert out.dtype == xp.float32


def test_inference_and_p_zero_are_the_identity(xp, rng):
    x = xp.asarray(rng.standard_normal((2, 3, 4, 5)))
    for p, training in ((0.5, False), (0.0, True)):
        out, cache = F.dropout_forward(x, p, training, xp.random.default_rng(0))
        assert out is x and cache.keep is None
        dout = xp.asarray(rng.standard_normal(x.shape))
        assert F.dropout_backward(dout, cache) is dout


def test_gradient_check_with_the_mask_fixed(xp, rng):
    x = xp.asarray(rng.standard_normal((2, 3, 5, 7)))
    dout = xp.asarray(rng.standard_normal(x.shape))

    def forward(x):  # the same seed every call: the same mask
        return F.dropout_forward(x, 0.4, True, xp.random.default_rng(7))[0]
    _, cache = F.dropout_forward(x, 0.4, True, xp.random.default_rng(7))
    assert 0 < float(cache.keep.mean()) < 1
    errors = check_gradients(forward, dict(x=x), dict(x=F.dropout_backward(dout, cache)), dout)
    assert errors["x"] < 1e-7
    with pytest.raises(GradientCheckError):  # a backward that forgets the 1/(1-p) is caught
        check_gradients(forward, dict(x=x), dict(x=xp.where(cache.keep, dout, 0)), dout)


def test_agrees_with_torch_on_the_same_mask(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    out, cache = F.dropout_forward(x, 0.5, True, np.random.default_rng(3))
    dout = rng.standard_normal(x.shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    tout = tx * torch.tensor(cache.keep) / (1 - 0.5)  # PyTorch's inverted dropout with our mask
    tout.backward(torch.tensor(dout))
    rel_close(out, tout.detach().numpy(), 1e-6)
    rel_close(F.dropout_backward(dout, cache), tx.grad.numpy(), 1e-6)


def test_refuses_a_generator_of_the_other_device_and_bad_p(rng):
    from tinysegnet.testing import strict_cupy
    with backend.using_gpu_module(strict_cupy):
        x = strict_cupy.asarray(rng.standard_normal((2, 3)))
        with pytest.raises(TypeError, match="random generator must belong to x's array module"):
            F.dropout_forward(x, 0.5, True, np.random.default_rng(0))
    with pytest.raises(ValueError, match="p must be in \\[0, 1\\)"):
        F.dropout_forward(np.zeros(3), 1.0, True, np.random.default_rng(0))
