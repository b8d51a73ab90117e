"""1x1 convolution (SegNet's classifier) as one matrix product per image: the fast method
for k = 1, where every other method's copies of the input are copies of x itself.

Shapes and names as in ``conv.py``, with k = 1 and p = 0, and w2d = w.reshape(F, C)::

    out[n]  = w2d @ x[n]              x[n] as (C, H W): a view, no copy
    dx[n]   = w2d.T @ dout[n]
    dw      = sum_n dout[n] @ x[n].T      (``long_sums.matmul``: the same on any thread count)
"""

from ..backend import xp_of
from . import long_sums


def conv_forward(x, w, pad):
    """out (N, F, H, W) of x (N, C, H, W) and w (F, C, 1, 1); ``pad`` must be 0."""
    xp = xp_of(x, w)
    N, C, H, W = x.shape
    F = w.shape[0]
    _check(w, pad)
    return xp.matmul(w.reshape(F, C), x.reshape(N, C, H * W)).reshape(N, F, H, W)


def conv_backward(dout, x, w, pad, need_dx):
    """(dx or None, dw) for ``out = conv_forward(x, w, pad)`` and dout (N, F, H, W)."""
    xp = xp_of(dout, x, w)
    N, C, H, W = x.shape
    F = w.shape[0]
    _check(w, pad)
    d = dout.reshape(N, F, H * W)
    dw = long_sums.matmul(d, x.reshape(N, C, H * W).transpose(0, 2, 1)).sum(axis=0).reshape(F, C, 1, 1)
    if not need_dx:
        return None, dw
    return xp.matmul(w.reshape(F, C).T, d).reshape(N, C, H, W), dw


def _check(w, pad):
    if w.shape[2:] != (1, 1) or pad != 0:
        raise ValueError(f"conv_pointwise: computes 1x1 kernels without padding only, got w "
                         f"{tuple(w.shape)} and pad {pad}")
