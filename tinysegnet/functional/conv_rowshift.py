"""Convolution by row shifts: the fast method for large maps (SegNet-Basic's 7x7 layers).

Shapes and names as in ``conv.py``. Each padded image is laid out as one long row per
channel (row length ``Wp = W + 2p``), so moving the kernel down by one row is a shift
of ``Wp`` along that row. For a chunk of ``n`` images, the method stacks the ``k``
horizontal shifts of the input ("row im2col": ``k`` times the images instead of ``k * k``
for full im2col), multiplies them once by all ``k`` kernel rows (a ``(k F) x (C k)``
matrix), and adds the ``k`` products shifted down by ``u`` rows. Outputs are computed on
the padded grid and the ``k - 1`` extra rows and columns dropped: on a 90x120 map that is
12% extra work, on 12x15 more than the useful work, where ``conv_im2col`` takes over.

Chunks: one image on the CPU, where the temporaries then stay near the cache; as many as
fit 2^28 values on a GPU, where each chunk costs about 2 k kernel launches.
"""

from ..backend import xp_of
from . import long_sums
from .scratch import image_chunks, scratch, zero_padded

# Values of shifted input per chunk: 0 means one image a chunk.
SHIFTS_LIMIT = {"cpu": 0, "gpu": 2 ** 28}


def _padded_rows(x, pad):
    """x (N, C, H, W) zero-padded by ``pad`` and flattened to rows (N, C, (Hp + 1) * Wp).

    One spare zero row at the bottom: the last horizontal shifts read up to k - 1
    elements past Hp * Wp. The result is a scratch array, valid until the next call.
    """
    N, C, H, W = x.shape
    xpad = zero_padded(x, pad, "rowshift.padded", spare_rows=1)
    return xpad.reshape(N, C, (H + 2 * pad + 1) * (W + 2 * pad))


def _shifts(rows, k, length):
    """cols[c * k + v, m * length + q] = rows[m, c, q + v] for q < length: (C k, n length),
    one strided view of ``rows`` (n, C, L) copied out once, into a scratch array."""
    xp = xp_of(rows)
    n, C, _ = rows.shape
    sn, sc, s1 = rows.strides
    view = xp.lib.stride_tricks.as_strided(rows, (C, k, n, length), (sc, s1, sn, s1))
    cols = scratch("rowshift.cols", (C, k, n, length), rows.dtype, xp)
    cols[...] = view
    return cols.reshape(C * k, n * length)


def conv_forward(x, w, pad):
    """out (N, F, Ho, Wo), a chunk of images at a time::

        cols[c*k + v, (m, r, s)]  = xpad[m, c, r, s + v]               (the k horizontal shifts)
        products[u, f, m, r, s]   = sum_{c,v} w[f, c, u, v] * cols[c*k + v, (m, r, s)]
        out[m, f, i, j]           = sum_u products[u, f, m, i + u, j]   (j < Wo)
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
    out = xp.empty((N, F, Ho, Wo), dtype=x.dtype)
    for part in image_chunks(x, C * k * Hp * Wp, SHIFTS_LIMIT):
        cols = _shifts(rows[part], k, Hp * Wp)
        n = cols.shape[1] // (Hp * Wp)
        products = scratch("rowshift.products", (k, F, n, Hp, Wp), x.dtype, xp)
        xp.matmul(w_all, cols, out=products.reshape(k * F, n * Hp * Wp))
        target = out[part]
        target[...] = products[0, :, :, :Ho, :Wo].transpose(1, 0, 2, 3)
        for u in range(1, k):
            target += products[u, :, :, u:u + Ho, :Wo].transpose(1, 0, 2, 3)
    return out


def conv_backward(dout, x, w, pad, need_dx):
    """(dx or None, dw) for ``out = conv_forward(x, w, pad)`` and dout (N, F, Ho, Wo).

    dw is one product per chunk (below); dx is dout convolved with w flipped in space and
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
    dw_all = None  # row u*F + f, column c*k + v
    zeroed_for = None
    for part in image_chunks(x, C * k * Hp * Wp, SHIFTS_LIMIT):
        cols = _shifts(rows[part], k, Hp * Wp)
        n = cols.shape[1] // (Hp * Wp)
        shifted_dout = scratch("rowshift.shifted_dout", (k, F, n, Hp, Wp), dout.dtype, xp)
        if zeroed_for != n:  # only the blocks written below change from chunk to chunk
            shifted_dout.fill(0)
            zeroed_for = n
        for u in range(k):
            shifted_dout[u, :, :, u:u + Ho, :Wo] = dout[part].transpose(1, 0, 2, 3)
        # new: never the scratch; a long sum, the same on any thread count
        product = long_sums.matmul(shifted_dout.reshape(k * F, n * Hp * Wp), cols.T)
        if dw_all is None:
            dw_all = product
        else:
            dw_all += product
    dw = dw_all.reshape(k, F, C, k).transpose(1, 2, 0, 3).copy()
    if not need_dx:
        return None, dw
    # dw is done with the shifted copies, so the forward pass below may reuse every buffer.
    w_flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    return conv_forward(dout, w_flipped, k - 1 - pad), dw
