"""ReLU: out = max(x, 0), and its gradient dx = dout where x > 0, else 0. Any shape; the
first axis is the batch, cut among threads on the CPU (``batch_split``).

``relu_inplace`` is inference's fast path beside the pair: one pass over an array nobody
else holds, no mask kept (there is no backward to keep it for).

Written with ``maximum`` and a product by the mask, not ``where``: NumPy's ``where`` on a
mask of mixed values ran 31 ms on 12 x 64 x 90 x 120 float32 where ``maximum`` ran 3.7 and
the product 4.5. (A NaN stays NaN through both, as it should.)"""

from typing import NamedTuple

from ..backend import xp_of
from .batch_split import run


class ReluCache(NamedTuple):
    """positive: bool array shaped like x, True where x > 0."""
    positive: object


def relu_forward(x):
    """Returns ``(out, cache)``, the cache a :class:`ReluCache`."""
    xp = xp_of(x)
    out, positive = xp.empty_like(x), xp.empty(x.shape, dtype=bool)

    def part(s):
        xp.greater(x[s], 0, out=positive[s])
        xp.maximum(x[s], 0, out=out[s])
    run(part, x)
    return out, ReluCache(positive)


def relu_backward(dout, cache):
    """Returns dx: dout passed through where the input was positive (0 at x = 0)."""
    xp = xp_of(dout)
    dx = xp.empty_like(dout)
    run(lambda s: xp.multiply(dout[s], cache.positive[s], out=dx[s]), dout)
    return dx


def relu_inplace(x):
    """Inference only: x = max(x, 0) written into x itself, which is returned (as
    ``relu_forward(x)[0]`` where x is finite). The caller must own x."""
    xp = xp_of(x)
    run(lambda s: xp.maximum(x[s], 0, out=x[s]), x)
    return x
