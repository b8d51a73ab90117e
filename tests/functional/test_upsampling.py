import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet.functional.upsampling import bilinear_upsample_weights
from tinysegnet.gradcheck import check_gradients

from conftest import rel_close


@pytest.mark.parametrize("out_size", [(8, 10), (7, 9)])
def test_conv_transpose_gradients(xp, rng, out_size):
    x = xp.asarray(rng.standard_normal((2, 3, 4, 5)))
    w = xp.asarray(rng.standard_normal((3, 2, 4, 4)))
    out, cache = F.conv_transpose2d_forward(x, w, out_size)
    assert out.shape == (2, 2) + out_size
    dout = xp.asarray(rng.standard_normal(out.shape))
    dx, dw = F.conv_transpose2d_backward(dout, cache)
    errors = check_gradients(lambda x, w: F.conv_transpose2d_forward(x, w, out_size)[0],
                             dict(x=x, w=w), dict(x=dx, w=dw), dout)
    assert max(errors.values()) < 1e-6


def test_conv_transpose_bad_size():
    with pytest.raises(ValueError, match="conv_transpose2d_forward: output_shape"):
        F.conv_transpose2d_forward(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 4, 4)), (9, 8))


def test_bilinear_init_upsamples_bilinearly(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((1, 2, 5, 6))
    out, _ = F.conv_transpose2d_forward(x, bilinear_upsample_weights(2, dtype=np.float64), (10, 12))
    ref = torch.nn.functional.interpolate(torch.tensor(x), size=(10, 12), mode="bilinear",
                                          align_corners=False).numpy()
    # equal away from the border, where the transposed convolution sees zero padding
    rel_close(out[:, :, 1:-1, 1:-1], ref[:, :, 1:-1, 1:-1], 1e-12)


def test_bilinear_upsample_gradients(xp, rng):
    x = xp.asarray(rng.standard_normal((2, 2, 3, 4)))
    out, cache = F.bilinear_upsample_forward(x, (5, 8))
    dout = xp.asarray(rng.standard_normal(out.shape))
    dx = F.bilinear_upsample_backward(dout, cache)
    assert check_gradients(lambda x: F.bilinear_upsample_forward(x, (5, 8))[0], dict(x=x), dict(x=dx), dout)["x"] < 1e-6


def test_add(xp, rng):
    a, b = xp.asarray(rng.standard_normal((2, 3))), xp.asarray(rng.standard_normal((2, 3)))
    out, cache = F.add_forward(a, b)
    dout = xp.asarray(rng.standard_normal((2, 3)))
    da, db = F.add_backward(dout, cache)
    assert check_gradients(lambda a, b: F.add_forward(a, b)[0], dict(a=a, b=b), dict(a=da, b=db), dout)["a"] < 1e-6
    with pytest.raises(ValueError, match="add_forward"):
        F.add_forward(a, b[:, :2])


@pytest.mark.parametrize("out_size", [(8, 10), (9, 11)])
def test_agrees_with_torch(rng, out_size):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 6, 4, 4)).astype(np.float32)
    size = tuple(min(s, n) for s, n in zip(out_size, (8, 10)))
    out, cache = F.conv_transpose2d_forward(x, w, size)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tout = torch.nn.functional.conv_transpose2d(tx, tw, stride=2, padding=1)[:, :, :size[0], :size[1]]
    dout = rng.standard_normal(out.shape).astype(np.float32)
    tout.backward(torch.tensor(dout))
    dx, dw = F.conv_transpose2d_backward(dout, cache)
    rel_close(out, tout.detach().numpy())
    rel_close(dx, tx.grad.numpy())
    rel_close(dw, tw.grad.numpy())

    ux = torch.tensor(x, requires_grad=True)
    up = torch.nn.functional.interpolate(ux, size=(7, 9), mode="bilinear", align_corners=False)
    ours, ucache = F.bilinear_upsample_forward(x, (7, 9))
    d = rng.standard_normal(ours.shape).astype(np.float32)
    up.backward(torch.tensor(d))
    rel_close(ours, up.detach().numpy())
    rel_close(F.bilinear_upsample_backward(d, ucache), ux.grad.numpy())
