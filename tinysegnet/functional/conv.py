"""2-D convolution, stride 1, zero padding: forward and backward, fast and reference.

Shapes (NCHW throughout)::

    x    (N, C, H, W)       input
    w    (F, C, k, k)       filters, k odd (1, 3, 7, ...)
    b    (F,) or None       bias
    out  (N, F, Ho, Wo)     Ho = H + 2p - k + 1, Wo = W + 2p - k + 1 (= H, W for p = k // 2)

    out[n, f, i, j] = b[f] + sum_{c, u, v} w[f, c, u, v] * xpad[n, c, i + u, j + v]

where ``xpad`` is ``x`` with ``p`` zeros on each side. Like every deep-learning
"convolution" this is a cross-correlation (the kernel is not flipped).

Two implementations share one signature:

* ``conv2d_forward`` / ``conv2d_backward``: the fast version the models use.
  It lays each padded image out as one long row per channel (row length
  ``Wp = W + 2p``). Moving the kernel down by one row is then a shift of ``Wp``
  along that row. So, per image, it stacks the ``k`` horizontal shifts of the
  input ("row im2col": ``k`` times the image instead of ``k * k`` for full
  im2col), multiplies them once by all ``k`` kernel rows (a ``(k F) x (C k)``
  matrix), and adds the ``k`` products shifted by ``u * Wp``. Outputs are
  computed on the padded width and the ``k - 1`` extra columns dropped.
  Working one image at a time keeps the temporaries small, and they live in
  reused scratch buffers (``scratch.py`` says why).
* ``conv2d_forward_reference`` / ``conv2d_backward_reference``: plain loops
  that read like the formula above; the tests check the fast version against
  them, and the lessons start from them.
"""

from ..backend import xp_of
from ._checks import require_float, require_ndim
from .scratch import scratch


def _check_conv_args(fn, x, w, b, pad):
    require_ndim(fn, "x", x, 4, "(N, C, H, W)")
    require_ndim(fn, "w", w, 4, "(F, C, k, k)")
    require_float(fn, "x", x)
    F, C, kh, kw = w.shape
    if x.shape[1] != C:
        raise ValueError(f"{fn}: x has {x.shape[1]} channels but w expects {C} "
                         f"(x {tuple(x.shape)}, w {tuple(w.shape)})")
    if kh != kw or kh % 2 == 0:
        raise ValueError(f"{fn}: kernel must be square with odd size, got w {tuple(w.shape)}")
    if w.dtype != x.dtype:
        raise ValueError(f"{fn}: x is {x.dtype} but w is {w.dtype}; convert one so nothing is "
                         f"upcast silently")
    if b is not None and (b.shape != (F,) or b.dtype != x.dtype):
        raise ValueError(f"{fn}: b must have shape ({F},) and dtype {x.dtype}, "
                         f"got {tuple(b.shape)} {b.dtype}")
    pad = kh // 2 if pad is None else int(pad)
    if not 0 <= pad <= kh - 1:
        raise ValueError(f"{fn}: pad must be in [0, {kh - 1}] for a {kh}x{kh} kernel, got {pad}")
    if x.shape[2] + 2 * pad < kh or x.shape[3] + 2 * pad < kh:
        raise ValueError(f"{fn}: x {tuple(x.shape)} padded by {pad} is smaller than the "
                         f"{kh}x{kh} kernel")
    return pad


def _padded_rows(x, pad):
    """x (N, C, H, W) zero-padded by ``pad`` and flattened to rows (N, C, (Hp + 1) * Wp).

    One spare zero row at the bottom: the last horizontal shifts read up to k - 1
    elements past Hp * Wp. The result is a scratch array, valid until the next call.
    """
    xp = xp_of(x)
    N, C, H, W = x.shape
    Hp, Wp = H + 2 * pad, W + 2 * pad
    xpad = scratch("padded", (N, C, Hp + 1, Wp), x.dtype, xp)
    # Zero only the border: the interior is overwritten by x straight after.
    xpad[:, :, :pad] = 0
    xpad[:, :, pad + H:] = 0
    xpad[:, :, pad:pad + H, :pad] = 0
    xpad[:, :, pad:pad + H, pad + W:] = 0
    xpad[:, :, pad:pad + H, pad:pad + W] = x
    return xpad.reshape(N, C, (Hp + 1) * Wp)


def _shifts(rows, k, length, out):
    """out[c * k + v, q] = rows[c, q + v] for q < length: (C * k, length), written into ``out``."""
    C = rows.shape[0]
    stacked = out.reshape(C, k, length)
    for v in range(k):
        stacked[:, v] = rows[:, v:v + length]
    return out


def _row_shift_conv(x, w, pad):
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
    w_all = w.transpose(2, 0, 1, 3).reshape(k * F, C * k)  # row u*F + f, column c*k + v
    cols = scratch("cols", (C * k, Hp * Wp), x.dtype, xp)
    products = scratch("products", (k, F, Hp, Wp), x.dtype, xp)
    out = xp.empty((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        _shifts(rows[n], k, Hp * Wp, cols)
        xp.matmul(w_all, cols, out=products.reshape(k * F, Hp * Wp))
        out[n] = products[0, :, :Ho, :Wo]
        for u in range(1, k):
            out[n] += products[u, :, u:u + Ho, :Wo]
    return out


def conv2d_forward(x, w, b=None, pad=None):
    """Fast convolution. Returns ``(out, cache)``; shapes and formula in the module docstring.

    ``pad`` defaults to ``k // 2`` (output the size of the input) and may be 0..k-1.
    """
    pad = _check_conv_args("conv2d_forward", x, w, b, pad)
    out = _row_shift_conv(x, w, pad)
    if b is not None:
        out += b[None, :, None, None]
    return out, (x, w, b is not None, pad)


def conv2d_backward(dout, cache, need_dx=True):
    """Gradients of the fast convolution: ``(dx, dw, db)``, ``db`` None without a bias.

    ``need_dx=False`` skips (and returns None for) dx: a network's first layer has no
    use for the gradient of the image, and on 3 input channels it is a slow product.

    dout (N, F, Ho, Wo) -> dx (N, C, H, W), dw (F, C, k, k), db (F,)::

        db[f]          = sum_{n,i,j} dout[n, f, i, j]
        dw[f, c, u, v] = sum_{n,i,j} dout[n, f, i, j] * xpad[n, c, i + u, j + v]
        dx             = dout convolved with w flipped in space and with its channel axes
                         swapped, padded by k - 1 - p ("full" correlation), which is
                         again a stride-1 convolution, so it reuses the forward kernel.
    """
    x, w, has_bias, pad = cache
    xp = xp_of(dout, w)
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    Hp, Wp = H + 2 * pad, W + 2 * pad
    Ho, Wo = Hp - k + 1, Wp - k + 1
    if dout.shape != (N, F, Ho, Wo):
        raise ValueError(f"conv2d_backward: dout has shape {tuple(dout.shape)}, expected "
                         f"{(N, F, Ho, Wo)}")
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None

    # dw[f, c, u, v] = sum_q dout_wide[f, q] * cols[c*k + v, q + u*Wp]. Placing dout shifted
    # down by u rows for every u (zeros elsewhere) turns the k correlations into one product.
    rows = _padded_rows(x, pad)
    cols = scratch("cols", (C * k, Hp * Wp), x.dtype, xp)
    # The forward's products buffer has this shape and is free until dx is computed below.
    # Only the blocks written per image change, so one zero fill serves every image.
    shifted_dout = scratch("products", (k, F, Hp, Wp), dout.dtype, xp)
    shifted_dout.fill(0)
    dw_all = xp.zeros((k * F, C * k), dtype=dout.dtype)  # row u*F + f, column c*k + v
    for n in range(N):
        _shifts(rows[n], k, Hp * Wp, cols)
        for u in range(k):
            shifted_dout[u, :, u:u + Ho, :Wo] = dout[n]
        dw_all += shifted_dout.reshape(k * F, Hp * Wp) @ cols.T
    dw = xp.ascontiguousarray(dw_all.reshape(k, F, C, k).transpose(1, 2, 0, 3))

    if not need_dx:
        return None, dw, db
    w_flipped = xp.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    return _row_shift_conv(dout, w_flipped, k - 1 - pad), dw, db


def conv2d_forward_reference(x, w, b=None, pad=None):
    """The same convolution as plain loops over (n, f, i, j): slow, but it is the formula.

    Returns ``(out, cache)`` like :func:`conv2d_forward`.
    """
    pad = _check_conv_args("conv2d_forward_reference", x, w, b, pad)
    xp = xp_of(x, w)
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    xpad = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    out = xp.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xpad[n, :, i:i + k, j:j + k]  # (C, k, k)
                    out[n, f, i, j] = (window * w[f]).sum()
            if b is not None:
                out[n, f] += b[f]
    return out, (xpad, w, b is not None, pad)


def conv2d_backward_reference(dout, cache):
    """Loop version of :func:`conv2d_backward`: every output element sends its gradient
    back to the window it was computed from. Returns ``(dx, dw, db)``."""
    xpad, w, has_bias, pad = cache
    xp = xp_of(dout, w)
    N, F, Ho, Wo = dout.shape
    k = w.shape[2]
    dxpad = xp.zeros_like(xpad)
    dw = xp.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    g = dout[n, f, i, j]
                    dxpad[n, :, i:i + k, j:j + k] += g * w[f]
                    dw[f] += g * xpad[n, :, i:i + k, j:j + k]
    H, W = xpad.shape[2] - 2 * pad, xpad.shape[3] - 2 * pad
    dx = dxpad[:, :, pad:pad + H, pad:pad + W]
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw, db
