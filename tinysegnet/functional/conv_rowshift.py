"""Convolution by row shifts: the fast method for large maps (SegNet-Basic's 7x7 layers).

Shapes and names as in ``conv.py``. Each padded image is laid out as one long row per
channel (row length ``Wp = W + 2p``), so moving the kernel down by one row is a shift
of ``Wp`` along that row. Per image, the method stacks the ``k`` horizontal shifts of
the input ("row im2col": ``k`` times the image instead of ``k * k`` for full im2col),
multiplies them once by all ``k`` kernel rows (a ``(k F) x (C k)`` matrix), and adds
the ``k`` products shifted down by ``u`` rows. Outputs are computed on the padded grid
and the ``k - 1`` extra rows and columns dropped: on a 90x120 map that is 12% extra
work, on 12x15 more than the useful work, where ``conv_im2col`` takes over.
"""

from ..backend import xp_of
from .scratch import scratch, zero_padded


def _padded_rows(x, pad):
    """x (N, C, H, W) zero-padded by ``pad`` and flattened to rows (N, C, (Hp + 1) * Wp).

    One spare zero row at the bottom: the last horizontal shifts read up to k - 1
    elements past Hp * Wp. The result is a scratch array, valid until the next call.
    """
    N, C, H, W = x.shape
    xpad = zero_padded(x, pad, "rowshift.padded", spare_rows=1)
    return xpad.reshape(N, C, (H + 2 * pad + 1) * (W + 2 * pad))


def _shifts(rows, k, length, out):
    """out[c * k + v, q] = rows[c, q + v] for q < length: (C * k, length), written into ``out``."""
    C = rows.shape[0]
    stacked = out.reshape(C, k, length)
    for v in range(k):
        stacked[:, v] = rows[:, v:v + length]
    return out


def conv_forward(x, w, pad):
    """out (N, F, Ho, Wo), one image at a time::

        cols[c*k + v, r*Wp + s]   = xpad[c, r, s + v]                 (the k horizontal shifts)
        products[u, f, r, s]      = sum_{c,v} w[f, c, u, v] * cols[c*k + v, r*Wp + s]
        out[f, i, j]              = sum_u products[u, f, i + u, j]      (j < Wo)
    """
    xp = xp_of(x, w)
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    Hp, Wp = H + 2 * pad, W + 2 * pad
    Ho, Wo = Hp - k + 1, Wp - k + 1
    rows = _padded_rows(x, pad)
    w_all = scratch("rowshift.weights", (k, F, C, k), w.dtype, xp)
    w_all[...] = w.transpose(2, 0, 1, 3)  # w may be any view (backward passes a flipped one)
    w_all = w_all.reshape(k * F, C * k)  # row u*F + f, column c*k + v
    cols = scratch("rowshift.cols", (C * k, Hp * Wp), x.dtype, xp)
    products = scratch("rowshift.products", (k, F, Hp, Wp), x.dtype, xp)
    out = xp.empty((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        _shifts(rows[n], k, Hp * Wp, cols)
        xp.matmul(w_all, cols, out=products.reshape(k * F, Hp * Wp))
        out[n] = products[0, :, :Ho, :Wo]
        for u in range(1, k):
            out[n] += products[u, :, u:u + Ho, :Wo]
    return out


def conv_backward(dout, x, w, pad, need_dx):
    """(dx or None, dw) for ``out = conv_forward(x, w, pad)`` and dout (N, F, Ho, Wo).

    dw is one product per image (below); dx is dout convolved with w flipped in space and
    with its channel axes swapped, padded by k - 1 - p ("full" correlation), which is
    again a stride-1 convolution, so it reuses :func:`conv_forward`.
    """
    xp = xp_of(dout, x, w)
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    Hp, Wp = H + 2 * pad, W + 2 * pad
    Ho, Wo = dout.shape[2:]
    # dw[f, c, u, v] = sum_q dout_wide[f, q] * cols[c*k + v, q + u*Wp]. Placing dout shifted
    # down by u rows for every u (zeros elsewhere) turns the k correlations into one product.
    rows = _padded_rows(x, pad)
    cols = scratch("rowshift.cols", (C * k, Hp * Wp), x.dtype, xp)
    # Only the blocks written per image change, so one zero fill serves every image.
    shifted_dout = scratch("rowshift.shifted_dout", (k, F, Hp, Wp), dout.dtype, xp)
    shifted_dout.fill(0)
    dw_all = scratch("rowshift.dw", (k * F, C * k), dout.dtype, xp)  # row u*F + f, column c*k + v
    dw_image = scratch("rowshift.dw_image", (k * F, C * k), dout.dtype, xp)
    for n in range(N):
        _shifts(rows[n], k, Hp * Wp, cols)
        for u in range(k):
            shifted_dout[u, :, u:u + Ho, :Wo] = dout[n]
        xp.matmul(shifted_dout.reshape(k * F, Hp * Wp), cols.T, out=dw_all if n == 0 else dw_image)
        if n > 0:
            dw_all += dw_image
    dw = dw_all.reshape(k, F, C, k).transpose(1, 2, 0, 3).copy()  # a new array even for k = 1
    if not need_dx:
        return None, dw
    # dw is done with the shifted copies, so the forward pass below may reuse every buffer.
    w_flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    return conv_forward(dout, w_flipped, k - 1 - pad), dw
