"""Dropout, inverted: the layer Bayesian SegNet keeps sampling at test time.

Shapes: x, out, mask any shape, all alike. With drop probability p in [0, 1)::

    training:   mask ~ Bernoulli(1 - p) per element,   out = x * mask / (1 - p)
    otherwise:  out = x

Scaling the kept values by 1 / (1 - p) in training keeps each element's expected value,
so inference needs no rescaling ("inverted" dropout, as PyTorch and Caffe do it). The
mask is drawn by ``rng``, a random generator of x's own array module (NumPy's
``default_rng`` for NumPy arrays, CuPy's for CuPy arrays): on a GPU the mask never
crosses to the host.
"""

from typing import NamedTuple

from ..backend import is_cupy_array, xp_of
from ._checks import require_float


class DropoutCache(NamedTuple):
    """keep: bool array shaped like x, True where the element was kept (None when nothing
    was dropped: inference, or p = 0); scale: 1 / (1 - p)."""
    keep: object
    scale: float


def dropout_forward(x, p, training, rng):
    """Returns ``(out, cache)``, the cache a :class:`DropoutCache`; formulas above."""
    require_float("dropout_forward", "x", x)
    if not 0 <= p < 1:
        raise ValueError(f"dropout_forward: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x, DropoutCache(None, 1.0)
    draws = rng.random(x.shape, dtype=x.dtype)
    if is_cupy_array(draws) != is_cupy_array(x):
        raise TypeError("dropout_forward: the random generator must belong to x's array module "
                        "(xp.random.default_rng(seed)), so the mask is drawn where x lives")
    xp = xp_of(x)
    keep = draws >= p
    scale = 1.0 / (1.0 - p)
    return xp.where(keep, x * x.dtype.type(scale), x.dtype.type(0)), DropoutCache(keep, scale)


def dropout_backward(dout, cache):
    """dx: dout through the kept elements, scaled as they were; zero where dropped."""
    if cache.keep is None:
        return dout
    xp = xp_of(dout, cache.keep)
    return xp.where(cache.keep, dout * dout.dtype.type(cache.scale), dout.dtype.type(0))
