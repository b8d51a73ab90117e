import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet.gradcheck import check_gradients

from conftest import rel_close


def _params(xp, rng, C):
    gamma = xp.asarray(rng.standard_normal(C) + 1.5)
    beta = xp.asarray(rng.standard_normal(C))
    return gamma, beta, xp.asarray(rng.standard_normal(C)), xp.asarray(rng.random(C) + 0.5)


@pytest.mark.parametrize("training", [True, False])
def test_gradients(xp, rng, training):
    x = xp.asarray(rng.standard_normal((3, 4, 5, 3)) * 2 + 1)
    gamma, beta, rm, rv = _params(xp, rng, 4)

    def f(x, gamma, beta):
        return F.batchnorm2d_forward(x, gamma, beta, rm.copy(), rv.copy(), training)[0]

    out, cache = F.batchnorm2d_forward(x, gamma, beta, rm.copy(), rv.copy(), training)
    dout = xp.asarray(rng.standard_normal(out.shape))
    dx, dgamma, dbeta = F.batchnorm2d_backward(dout, cache)
    errors = check_gradients(f, dict(x=x, gamma=gamma, beta=beta),
                             dict(x=dx, gamma=dgamma, beta=dbeta), dout)
    assert max(errors.values()) < 1e-6


def test_training_normalises_and_updates_running_stats(xp, rng):
    x = xp.asarray(rng.standard_normal((4, 3, 6, 5)) * 3 + 2)
    gamma, beta = xp.ones(3), xp.zeros(3)
    rm, rv = xp.zeros(3), xp.ones(3)
    out, _ = F.batchnorm2d_forward(x, gamma, beta, rm, rv, True, momentum=0.25)
    assert float(abs(out.mean(axis=(0, 2, 3))).max()) < 1e-12
    m = 4 * 6 * 5
    expected_var = 0.75 + 0.25 * x.var(axis=(0, 2, 3)) * m / (m - 1)
    rel_close(rv, expected_var, 1e-12)
    rel_close(rm, 0.25 * x.mean(axis=(0, 2, 3)), 1e-12)


def test_inference_uses_running_stats_and_leaves_them(xp, rng):
    x = xp.asarray(rng.standard_normal((2, 2, 3, 3)))
    gamma, beta = xp.asarray([2.0, 1.0]), xp.asarray([0.5, -1.0])
    rm, rv = xp.asarray([1.0, -1.0]), xp.asarray([4.0, 0.25])
    out, _ = F.batchnorm2d_forward(x, gamma, beta, rm, rv, False, eps=0.0)
    expected = (x - rm[None, :, None, None]) / xp.sqrt(rv)[None, :, None, None] \
        * gamma[None, :, None, None] + beta[None, :, None, None]
    rel_close(out, expected, 1e-12)
    rel_close(rm, np.array([1.0, -1.0]), 0)


def test_keeps_float32(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    p = [np.ones(3, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32), np.ones(3, np.float32)]
    out, cache = F.batchnorm2d_forward(x, *p, True)
    dx, dg, db = F.batchnorm2d_backward(out, cache)
    assert out.dtype == dx.dtype == dg.dtype == db.dtype == np.float32


def test_bad_shapes():
    with pytest.raises(ValueError, match="batchnorm2d_forward: gamma"):
        F.batchnorm2d_forward(np.zeros((2, 3, 4, 4)), np.ones(2), np.zeros(3), np.zeros(3),
                              np.ones(3), True)
    with pytest.raises(ValueError, match="4-D"):
        F.batchnorm2d_forward(np.zeros((3, 4, 4)), *[np.ones(3)] * 4, True)


@pytest.mark.parametrize("training", [True, False])
def test_agrees_with_torch(rng, training):
    torch = pytest.importorskip("torch")
    x = (rng.standard_normal((4, 6, 7, 5)) * 2 + 1).astype(np.float32)
    gamma = (rng.standard_normal(6) + 1).astype(np.float32)
    beta = rng.standard_normal(6).astype(np.float32)
    rm, rv = rng.standard_normal(6).astype(np.float32), (rng.random(6) + 0.5).astype(np.float32)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    out, cache = F.batchnorm2d_forward(x, gamma, beta, rm, rv, training, momentum=0.1)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, dgamma, dbeta = F.batchnorm2d_backward(dout, cache)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    tout = torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, training=training, momentum=0.1)
    tout.backward(torch.tensor(dout))
    for ours, theirs in ((out, tout.detach()), (dx, tx.grad), (dgamma, tg.grad),
                         (dbeta, tb.grad), (rm, trm), (rv, trv)):
        rel_close(ours, theirs.numpy())


def test_folding_into_the_convolution_is_the_two_layers_composed(rng):
    """float64: conv (with and without bias) then inference-mode batch norm equals the one
    folded convolution, and a whole model in eval mode (folded) equals its layers one by one."""
    from tinysegnet.functional.batchnorm import batchnorm2d_fold
    x = rng.standard_normal((2, 3, 7, 9))
    w = rng.standard_normal((4, 3, 3, 3))
    gamma, beta = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    mean, var = rng.standard_normal(4), rng.uniform(0.1, 3, 4)
    for b in (None, rng.standard_normal(4)):
        two = F.batchnorm2d_forward(F.conv2d_forward(x, w, b)[0], gamma, beta, mean, var, False)[0]
        fw, fb = batchnorm2d_fold(w, b, gamma, beta, mean, var)
        assert np.abs(F.conv2d_forward(x, fw, fb)[0] - two).max() < 1e-12
    from tinysegnet import nn
    from tinysegnet.models import SegNetBasic
    model = SegNetBasic(width=4, kernel=3, seed=0).astype(np.float64)
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.running_mean[...] = rng.standard_normal(4)
            layer.running_var[...] = rng.uniform(0.1, 3, 4)
    image = rng.standard_normal((2, 3, 12, 10))
    folded = model.eval().forward(image)
    with F.use(batchnorm2d_forward=_library_batch_norm):  # another function: nothing is folded
        layer_by_layer = model.forward(image)
    assert np.abs(folded - layer_by_layer).max() < 1e-10


def _library_batch_norm(*args, **kwargs):
    from tinysegnet.functional.batchnorm import batchnorm2d_forward
    return batchnorm2d_forward(*args, **kwargs)
