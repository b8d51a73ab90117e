"""Depthwise ("single-channel") convolution: each channel convolved with its own k x k filter.

SegNet-Basic-SingleChannelDecoder (paper, Table 1) uses it in the decoder::

    x (N, C, H, W), w (C, k, k), k odd, zero padding k // 2, out (N, C, H, W)
    out[n, c, i, j] = sum_{u,v} w[c, u, v] * xpad[n, c, i + u, j + v]

There is no sum over channels, so no matrix product: k * k shifted multiply-adds.
"""

from typing import NamedTuple

from ..backend import xp_of
from ._checks import require_float, require_ndim


class DepthwiseCache(NamedTuple):
    """xpad (N, C, H + 2p, W + 2p): the zero-padded input; w (C, k, k): the filters."""
    xpad: object
    w: object


def depthwise_conv2d_forward(x, w):
    """Returns ``(out, cache)``, the cache a :class:`DepthwiseCache`."""
    fn = "depthwise_conv2d_forward"
    require_ndim(fn, "x", x, 4, "(N, C, H, W)")
    require_ndim(fn, "w", w, 3, "(C, k, k)")
    require_float(fn, "x", x)
    C, k, k2 = w.shape
    if x.shape[1] != C or k != k2 or k % 2 == 0 or w.dtype != x.dtype:
        raise ValueError(f"{fn}: w {tuple(w.shape)} {w.dtype} must be (C, k, k), k odd, C = "
                         f"{x.shape[1]}, dtype {x.dtype}")
    xp = xp_of(x, w)
    N, _, H, W = x.shape
    p = k // 2
    xpad = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = xp.zeros_like(x)
    for u in range(k):
        for v in range(k):
            out += w[None, :, u, v, None, None] * xpad[:, :, u:u + H, v:v + W]
    return out, DepthwiseCache(xpad, w)


def depthwise_conv2d_backward(dout, cache):
    """Returns ``(dx, dw)``::

        dw[c, u, v]            = sum_{n,i,j} dout[n, c, i, j] * xpad[n, c, i + u, j + v]
        dxpad[n, c, i+u, j+v] += w[c, u, v] * dout[n, c, i, j]
    """
    xpad, w = cache
    xp = xp_of(dout, w)
    C, k, _ = w.shape
    N, _, H, W = dout.shape
    p = k // 2
    dxpad = xp.zeros_like(xpad)
    dw = xp.empty_like(w)
    for u in range(k):
        for v in range(k):
            dw[:, u, v] = (dout * xpad[:, :, u:u + H, v:v + W]).sum(axis=(0, 2, 3))
            dxpad[:, :, u:u + H, v:v + W] += w[None, :, u, v, None, None] * dout
    return dxpad[:, :, p:p + H, p:p + W], dw
