import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet.gradcheck import check_gradients

from conftest import rel_close


@pytest.mark.parametrize("k,pad,bias", [(1, None, True), (3, None, True), (7, None, False),
                                        (3, 0, True), (5, 4, False)])
def test_fast_matches_reference_forward_and_backward(xp, rng, k, pad, bias):
    x = xp.asarray(rng.standard_normal((2, 3, 9, 8)))
    w = xp.asarray(rng.standard_normal((4, 3, k, k)))
    b = xp.asarray(rng.standard_normal(4)) if bias else None
    out, cache = F.conv2d_forward(x, w, b, pad)
    ref, ref_cache = F.conv2d_forward_reference(x, w, b, pad)
    assert out.shape == ref.shape
    rel_close(out, ref, 1e-12)
    dout = xp.asarray(rng.standard_normal(out.shape))
    for ours, theirs in zip(F.conv2d_backward(dout, cache), F.conv2d_backward_reference(dout, ref_cache)):
        if theirs is None:
            assert ours is None
        else:
            rel_close(ours, theirs, 1e-12)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_gradients(xp, rng, k):
    x = xp.asarray(rng.standard_normal((2, 3, 7, 8)))
    w = xp.asarray(rng.standard_normal((2, 3, k, k)))
    b = xp.asarray(rng.standard_normal(2))
    out, cache = F.conv2d_forward(x, w, b)
    dout = xp.asarray(rng.standard_normal(out.shape))
    dx, dw, db = F.conv2d_backward(dout, cache)
    errors = check_gradients(lambda x, w, b: F.conv2d_forward(x, w, b)[0],
                             dict(x=x, w=w, b=b), dict(x=dx, w=dw, b=db), dout)
    assert max(errors.values()) < 1e-6


def test_keeps_dtype(xp, rng):
    for dtype in (np.float32, np.float64):
        x = xp.asarray(rng.standard_normal((1, 2, 5, 5)), dtype=dtype)
        w = xp.asarray(rng.standard_normal((3, 2, 3, 3)), dtype=dtype)
        out, cache = F.conv2d_forward(x, w)
        dx, dw, _ = F.conv2d_backward(out, cache)
        assert out.dtype == dx.dtype == dw.dtype == dtype


@pytest.mark.parametrize("x_shape,w_shape,match", [
    ((3, 5, 5), (2, 3, 3, 3), "4-D"),
    ((1, 4, 5, 5), (2, 3, 3, 3), "channels"),
    ((1, 3, 5, 5), (2, 3, 2, 2), "odd"),
])
def test_bad_shapes(x_shape, w_shape, match):
    with pytest.raises(ValueError, match=match) as info:
        F.conv2d_forward(np.zeros(x_shape), np.zeros(w_shape))
    assert "conv2d_forward" in str(info.value)


def test_mixed_dtypes_refused():
    with pytest.raises(ValueError, match="upcast"):
        F.conv2d_forward(np.zeros((1, 1, 3, 3), np.float32), np.zeros((1, 1, 3, 3)))


@pytest.mark.parametrize("k,bias", [(1, True), (3, True), (7, False)])
def test_agrees_with_torch(rng, k, bias):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 5, 11, 9)).astype(np.float32)
    w = rng.standard_normal((4, 5, k, k)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32) if bias else None
    out, cache = F.conv2d_forward(x, w, b)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, dw, db = F.conv2d_backward(dout, cache)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    tout = torch.nn.functional.conv2d(tx, tw, tb, padding=k // 2)
    tout.backward(torch.tensor(dout))
    rel_close(out, tout.detach().numpy())
    rel_close(dx, tx.grad.numpy())
    rel_close(dw, tw.grad.numpy())
    if bias:
        rel_close(db, tb.grad.numpy())


def test_alternating_shapes_through_reused_scratch(xp, rng):
    """A large call leaves data in the scratch buffers; smaller calls with other paddings
    must still see zero borders (a stale border would change these results)."""
    F.conv2d_forward(xp.asarray(rng.standard_normal((3, 5, 20, 22))), xp.asarray(rng.standard_normal((6, 5, 7, 7))))
    for k, pad, shape in [(7, 3, (2, 3, 9, 8)), (5, 4, (1, 2, 6, 7)), (3, 1, (2, 4, 11, 5))]:
        x = xp.asarray(rng.standard_normal(shape))
        w = xp.asarray(rng.standard_normal((3, shape[1], k, k)))
        out, cache = F.conv2d_forward(x, w, None, pad)
        ref, ref_cache = F.conv2d_forward_reference(x, w, None, pad)
        rel_close(out, ref, 1e-12)
        dout = xp.asarray(rng.standard_normal(out.shape))
        for ours, theirs in zip(F.conv2d_backward(dout, cache), F.conv2d_backward_reference(dout, ref_cache)):
            if theirs is not None:
                rel_close(ours, theirs, 1e-12)
