"""Convolution as one matrix product over im2col columns (cs231n's way): the fast method
for small maps with many channels, for inputs with few channels, and for every layer on
a GPU.

Shapes and names as in ``conv.py``; ``xpad`` is x zero-padded by p, and a chunk of
``n`` images is handled at once::

    cols[(c, u, v), (n, i, j)] = xpad[n, c, i + u, j + v]          (C k k, n Ho Wo)
    out[f, (n, i, j)]          = w2d @ cols,   w2d = w.reshape(F, C k k)  (a view)
    dw                         = dout2d @ cols.T

and dx is dout convolved with w flipped in space and with its channel axes swapped,
padded by k - 1 - p (the "full" correlation): again a stride-1 convolution, so it is
this same forward pass. The columns are one strided view of ``xpad`` (every window is
already in memory, only the strides differ), copied out in a single operation.

Every multiply-add is one the formula needs and the weights are used as stored, at the
price of k * k copies of the input. On the CPU large maps are faster by row shifts
(``conv_rowshift``); on a GPU every array operation is a kernel launch, and this method
needs a handful per chunk of images where row shifts need about 2 k per image.
"""

from ..backend import xp_of
from . import long_sums
from .scratch import row_chunks, scratch, zero_padded

# Images (or bands of an image's rows, ``scratch.row_chunks``) are taken in chunks whose
# columns hold at most this many values: 16 MB of float32 on the CPU, where the product runs
# faster on columns that stay near the cache; 1 GiB on a GPU, where each chunk costs kernel
# launches and memory is plentiful.
COLUMNS_LIMIT = {"cpu": 2 ** 22, "gpu": 2 ** 28}


def _im2col(xpad, k, Ho, Wo):
    """cols (C k k, n Ho Wo) for the images of ``xpad`` (n, C, Hp, Wp): a scratch array."""
    xp = xp_of(xpad)
    n, C = xpad.shape[:2]
    sn, sc, sh, sw = xpad.strides
    # windows[c, u, v, n, i, j] = xpad[n, c, i + u, j + v]: a view, no copy yet
    windows = xp.lib.stride_tricks.as_strided(xpad, (C, k, k, n, Ho, Wo), (sc, sh, sw, sn, sh, sw))
    cols = scratch("im2col.cols", (C, k, k, n, Ho, Wo), xpad.dtype, xp)
    cols[...] = windows
    return cols.reshape(C * k * k, n * Ho * Wo)


def conv_forward(x, w, pad):
    """out (N, F, Ho, Wo) of x (N, C, H, W) and w (F, C, k, k)."""
    xp = xp_of(x, w)
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    Ho, Wo = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    xpad = zero_padded(x, pad, "im2col.padded")
    w2d = w.reshape(F, C * k * k)  # a copy only for a flipped view (dx below)
    out = xp.empty((N, F, Ho, Wo), dtype=x.dtype)
    for part, rows in row_chunks(x, Ho, C * k * k * Wo, COLUMNS_LIMIT):
        n, r = part.stop - part.start, rows.stop - rows.start
        cols = _im2col(xpad[part, :, rows.start:rows.stop + k - 1], k, r, Wo)
        product = scratch("im2col.products", (F, n, r, Wo), x.dtype, xp)
        xp.matmul(w2d, cols, out=product.reshape(F, n * r * Wo))
        out[part, :, rows] = product.transpose(1, 0, 2, 3)
    return out


def conv_backward(dout, x, w, pad, need_dx):
    """(dx or None, dw) for ``out = conv_forward(x, w, pad)`` and dout (N, F, Ho, Wo)."""
    xp = xp_of(dout, x, w)
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    Ho, Wo = dout.shape[2:]
    xpad = zero_padded(x, pad, "im2col.padded")
    dw = None
    for part, rows in row_chunks(x, Ho, C * k * k * Wo, COLUMNS_LIMIT):
        n, r = part.stop - part.start, rows.stop - rows.start
        cols = _im2col(xpad[part, :, rows.start:rows.stop + k - 1], k, r, Wo)
        dout2d = scratch("im2col.dout_by_filter", (F, n, r, Wo), dout.dtype, xp)
        dout2d[...] = dout[part, :, rows].transpose(1, 0, 2, 3)
        # a new array: dw never lives in scratch; a long sum, the same on any thread count
        product = long_sums.matmul(dout2d.reshape(F, n * r * Wo), cols.T)
        if dw is None:
            dw = product
        else:
            dw += product
    dw = dw.reshape(F, C, k, k)
    if not need_dx:
        return None, dw
    # dw is done with the columns, so the forward pass below may reuse every scratch buffer.
    w_flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    return conv_forward(dout, w_flipped, k - 1 - pad), dw
