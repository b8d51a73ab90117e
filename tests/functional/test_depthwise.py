import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet.gradcheck import check_gradients

from conftest import rel_close


@pytest.mark.parametrize("k", [3, 7])
def test_gradients(xp, rng, k):
    x = xp.asarray(rng.standard_normal((2, 3, 5, 6)))
    w = xp.asarray(rng.standard_normal((3, k, k)))
    out, cache = F.depthwise_conv2d_forward(x, w)
    dout = xp.asarray(rng.standard_normal(out.shape))
    dx, dw = F.depthwise_conv2d_backward(dout, cache)
    errors = check_gradients(lambda x, w: F.depthwise_conv2d_forward(x, w)[0], dict(x=x, w=w),
                             dict(x=dx, w=dw), dout)
    assert max(errors.values()) < 1e-6


def test_bad_shapes():
    with pytest.raises(ValueError, match="depthwise_conv2d_forward: w"):
        F.depthwise_conv2d_forward(np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3)))


def test_agrees_with_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 4, 9, 7)).astype(np.float32)
    w = rng.standard_normal((4, 7, 7)).astype(np.float32)
    out, cache = F.depthwise_conv2d_forward(x, w)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w[:, None], requires_grad=True)
    tout = torch.nn.functional.conv2d(tx, tw, padding=3, groups=4)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    tout.backward(torch.tensor(dout))
    dx, dw = F.depthwise_conv2d_backward(dout, cache)
    rel_close(out, tout.detach().numpy())
    rel_close(dx, tx.grad.numpy())
    rel_close(dw, tw.grad.numpy()[:, 0])
