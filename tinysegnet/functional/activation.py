"""ReLU: out = max(x, 0), and its gradient dx = dout where x > 0, else 0. Any shape."""

from ..backend import xp_of


def relu_forward(x):
    """Returns ``(out, cache)``; the cache is the boolean mask x > 0."""
    xp = xp_of(x)
    positive = x > 0
    return xp.where(positive, x, 0).astype(x.dtype, copy=False), positive


def relu_backward(dout, cache):
    """Returns dx: dout passed through where the input was positive (0 at x = 0)."""
    xp = xp_of(dout)
    return xp.where(cache, dout, 0).astype(dout.dtype, copy=False)
