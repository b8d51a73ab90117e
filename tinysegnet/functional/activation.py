"""ReLU: out = max(x, 0), and its gradient dx = dout where x > 0, else 0. Any shape.

``relu_inplace`` is inference's fast path beside the pair: one pass over an array nobody
else holds, no mask kept (there is no backward to keep it for)."""

from typing import NamedTuple

from ..backend import xp_of


class ReluCache(NamedTuple):
    """positive: bool array shaped like x, True where x > 0."""
    positive: object


def relu_forward(x):
    """Returns ``(out, cache)``, the cache a :class:`ReluCache`."""
    xp = xp_of(x)
    positive = x > 0
    return xp.where(positive, x, 0).astype(x.dtype, copy=False), ReluCache(positive)


def relu_backward(dout, cache):
    """Returns dx: dout passed through where the input was positive (0 at x = 0)."""
    xp = xp_of(dout)
    return xp.where(cache.positive, dout, 0).astype(dout.dtype, copy=False)


def relu_inplace(x):
    """Inference only: x = max(x, 0) written into x itself, which is returned (as
    ``relu_forward(x)[0]`` where x is finite). The caller must own x."""
    xp = xp_of(x)
    return xp.maximum(x, 0, out=x)
