"""Convolution as one matrix product over im2col columns (cs231n's way): the fast
method for small maps with many channels.

Shapes and names as in ``conv.py``; ``xpad`` is x zero-padded by p, and a chunk of
``n`` images is handled at once::

    cols[(c, u, v), (n, i, j)] = xpad[n, c, i + u, j + v]          (C k k, n Ho Wo)
    out[f, (n, i, j)]          = w2d @ cols,   w2d = w.reshape(F, C k k)  (a view)
    dw                         = dout2d @ cols.T
    dcols                      = w2d.T @ dout2d,   dx[n, c, i + u, j + v] += dcols[...]

Every multiply-add is one the formula needs and the weights are used as stored, at
the price of k * k copies of the input. On deep layers (512 channels at 12x15, 3x3)
the row-shift method instead spends more time reordering its weights and computing
padded rows than multiplying; on large maps the k * k copies cost more than those.
"""

from ..backend import xp_of
from .scratch import scratch, zero_padded

# Images are taken in chunks whose columns hold at most this many values (16 MB in float32).
COLUMNS_LIMIT = 2 ** 22


def _chunks(N, per_image):
    step = max(1, COLUMNS_LIMIT // per_image)
    return [slice(start, min(start + step, N)) for start in range(0, N, step)]


def _im2col(xpad, k, Ho, Wo):
    """cols (C k k, n Ho Wo) for the images of ``xpad`` (n, C, Hp, Wp): a scratch array."""
    n, C = xpad.shape[:2]
    cols = scratch("cols", (C, k, k, n, Ho, Wo), xpad.dtype, xp_of(xpad))
    for u in range(k):
        for v in range(k):
            cols[:, u, v] = xpad[:, :, u:u + Ho, v:v + Wo].transpose(1, 0, 2, 3)
    return cols.reshape(C * k * k, n * Ho * Wo)


def conv_forward(x, w, pad):
    """out (N, F, Ho, Wo) of x (N, C, H, W) and w (F, C, k, k)."""
    xp = xp_of(x, w)
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    Ho, Wo = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    xpad = zero_padded(x, pad)
    w2d = w.reshape(F, C * k * k)
    out = xp.empty((N, F, Ho, Wo), dtype=x.dtype)
    for part in _chunks(N, C * k * k * Ho * Wo):
        cols = _im2col(xpad[part], k, Ho, Wo)
        n = cols.shape[1] // (Ho * Wo)
        product = scratch("products", (F, n, Ho, Wo), x.dtype, xp)
        xp.matmul(w2d, cols, out=product.reshape(F, n * Ho * Wo))
        out[part] = product.transpose(1, 0, 2, 3)
    return out


def conv_backward(dout, x, w, pad, need_dx):
    """(dx or None, dw) for ``out = conv_forward(x, w, pad)`` and dout (N, F, Ho, Wo)."""
    xp = xp_of(dout, x, w)
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    Ho, Wo = dout.shape[2:]
    xpad = zero_padded(x, pad)
    w2d = w.reshape(F, C * k * k)
    dw = None
    if need_dx:
        dxpad = scratch("dx_padded", xpad.shape, dout.dtype, xp)
        dxpad.fill(0)
    for part in _chunks(N, C * k * k * Ho * Wo):
        cols = _im2col(xpad[part], k, Ho, Wo)
        n = cols.shape[1] // (Ho * Wo)
        dout2d = scratch("dout2d", (F, n, Ho, Wo), dout.dtype, xp)
        dout2d[...] = dout[part].transpose(1, 0, 2, 3)
        dout2d = dout2d.reshape(F, n * Ho * Wo)
        if dw is None:
            dw = dout2d @ cols.T
        else:
            dw += dout2d @ cols.T
        if need_dx:
            dcols = scratch("dcols", (C, k, k, n, Ho, Wo), dout.dtype, xp)
            xp.matmul(w2d.T, dout2d, out=dcols.reshape(C * k * k, n * Ho * Wo))
            for u in range(k):
                for v in range(k):
                    dxpad[part, :, u:u + Ho, v:v + Wo] += dcols[:, u, v].transpose(1, 0, 2, 3)
    dx = dxpad[:, :, pad:pad + H, pad:pad + W].copy() if need_dx else None  # never the scratch itself
    return dx, dw.reshape(F, C, k, k)
