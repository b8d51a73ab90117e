import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet.gradcheck import check_gradients

from conftest import distinct_values, rel_close


def test_ceil_mode_sizes_and_uint8_indices(xp, rng):
    x = xp.asarray(rng.standard_normal((1, 2, 45, 60)).astype(np.float32))
    out, idx = F.maxpool2x2_forward(x)
    assert out.shape == (1, 2, 23, 30) and idx.shape == out.shape
    assert idx.dtype == np.uint8 and int(idx.max()) <= 3
    up = F.unpool2x2_forward(out, idx, (45, 60))
    assert up.shape == (1, 2, 45, 60) and up.dtype == np.float32


def test_hand_made_example_and_ties(xp):
    x = xp.asarray(np.array([[[[1., 5., 2., 2.],
                                [3., 4., 2., 1.],
                                [0., 0., 9., 7.]]]]))
    out, idx = F.maxpool2x2_forward(x)
    rel_close(out, np.array([[[[5., 2.], [0., 9.]]]]), 0)
    # window (0,1) is a tie between positions 0, 1 and 2: the first wins.
    # window (1,0) is all zeros in its real row: position 0 wins.
    assert idx.tolist() == [[[[1, 0], [0, 0]]]]
    up = F.unpool2x2_forward(out, idx, (3, 4))
    rel_close(up, np.array([[[[0., 5., 2., 0.], [0., 0., 0., 0.], [0., 0., 9., 0.]]]]), 0)


def test_pool_then_unpool_keeps_exactly_the_maxima(xp, rng):
    x = xp.asarray(distinct_values(rng, (2, 3, 7, 9)))
    out, idx = F.maxpool2x2_forward(x)
    up = F.unpool2x2_forward(out, idx, x.shape)
    kept = up != 0
    assert int(kept.sum()) == out.size
    rel_close(up[kept], x[kept], 0)


@pytest.mark.parametrize("shape", [(2, 3, 4, 6), (1, 2, 5, 7), (2, 1, 3, 2)])
def test_gradients(xp, rng, shape):
    x = xp.asarray(distinct_values(rng, shape))
    out, idx = F.maxpool2x2_forward(x)
    dout = xp.asarray(rng.standard_normal(out.shape))
    dx = F.maxpool2x2_backward(dout, idx, x.shape)
    assert check_gradients(lambda x: F.maxpool2x2_forward(x)[0], dict(x=x), dict(x=dx), dout)["x"] < 1e-6

    # Unpooling is linear in its input for fixed indices.
    y = xp.asarray(rng.standard_normal(out.shape))
    dup = xp.asarray(rng.standard_normal(shape))
    dy = F.unpool2x2_backward(dup, idx)
    assert check_gradients(lambda y: F.unpool2x2_forward(y, idx, shape), dict(y=y), dict(y=dy), dup)["y"] < 1e-6


def test_bad_input():
    x, idx = F.maxpool2x2_forward(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="unpool2x2_forward: x .* is not the 2x2 ceil-mode pooling"):
        F.unpool2x2_forward(x, idx, (6, 6))
    with pytest.raises(ValueError, match="indices"):
        F.unpool2x2_forward(x, idx[:, :, :1], (4, 4))
    with pytest.raises(ValueError, match="maxpool2x2_forward: x must be 4-D"):
        F.maxpool2x2_forward(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="unpool2x2_backward"):
        F.unpool2x2_backward(np.zeros((1, 1, 8, 8)), idx)


@pytest.mark.parametrize("size", [(8, 6), (45, 60), (7, 5)])
def test_agrees_with_torch(rng, size):
    torch = pytest.importorskip("torch")
    x = distinct_values(rng, (2, 3) + size, np.float32)
    out, idx = F.maxpool2x2_forward(x)
    tx = torch.tensor(x, requires_grad=True)
    tout, tidx = torch.nn.functional.max_pool2d(tx, 2, 2, ceil_mode=True, return_indices=True)
    rel_close(out, tout.detach().numpy())
    # torch stores flat positions in the input map; ours are 0..3 inside the window.
    i, j = np.meshgrid(np.arange(out.shape[2]), np.arange(out.shape[3]), indexing="ij")
    flat = (2 * i + idx // 2) * size[1] + 2 * j + idx % 2
    np.testing.assert_array_equal(flat, tidx.numpy())

    dout = rng.standard_normal(out.shape).astype(np.float32)
    tout.backward(torch.tensor(dout))
    rel_close(F.maxpool2x2_backward(dout, idx, x.shape), tx.grad.numpy())

    ty = torch.tensor(dout, requires_grad=True)
    tup = torch.nn.functional.max_unpool2d(ty, tidx, 2, 2, output_size=size)
    rel_close(F.unpool2x2_forward(dout, idx, size), tup.detach().numpy())
    dup = rng.standard_normal(x.shape).astype(np.float32)
    tup.backward(torch.tensor(dup))
    rel_close(F.unpool2x2_backward(dup, idx), ty.grad.numpy())
