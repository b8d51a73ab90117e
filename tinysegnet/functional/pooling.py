"""2x2 max pooling that keeps the position of each maximum, and SegNet's index unpooling.

Shapes::

    x        (N, C, H, W)
    out      (N, C, Ho, Wo)   Ho = ceil(H / 2), Wo = ceil(W / 2)
    indices  (N, C, Ho, Wo)   uint8 in 0..3: where in its 2x2 window the maximum was

Windows have stride 2 in *ceil mode*: an odd last row or column forms a window of
its own (45 x 60 -> 23 x 30, as in Caffe's SegNet). Positions are row-major::

    0 1
    2 3

so the input element of out[n, c, i, j] is x[n, c, 2i + idx // 2, 2j + idx % 2].
The paper's point: a decoder that keeps these positions needs 2 bits per pooled
value (stored here in one byte), not a float copy of the encoder's feature map.

Index unpooling is the pooling's inverse in position: each value goes back to the
place its maximum came from, in a map of zeros of the original size. So the
backward pass of max pooling *is* an unpooling of dout, and the backward pass of
unpooling is a gather at the same positions.
"""

import functools

import numpy as np

from ..backend import xp_of
from ._checks import require_float, require_ndim
from .batch_split import run
from .fused import kernel

# (row, column) offset inside the 2x2 window for each stored index.
_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))


def pooled_size(h, w):
    """(ceil(h / 2), ceil(w / 2)): the map size 2x2 ceil-mode pooling leaves (45 x 60 -> 23 x 30)."""
    return -(-h // 2), -(-w // 2)


def maxpool2x2_forward(x):
    """Returns ``(out, indices)``. The indices are this layer's cache and more: the paired
    unpooling needs them too, so they are returned as the array itself, not a cache tuple.

    Ties go to the first maximum in the order 0, 1, 2, 3 (a later element wins
    only when strictly greater), matching PyTorch and Caffe.
    """
    require_ndim("maxpool2x2_forward", "x", x, 4, "(N, C, H, W)")
    require_float("maxpool2x2_forward", "x", x)
    xp = xp_of(x)
    N, C, H, W = x.shape
    Ho, Wo = pooled_size(H, W)
    if (H % 2, W % 2) != (0, 0):
        # Ceil mode: the missing cells of the last windows can never be the maximum.
        padded = xp.full((N, C, 2 * Ho, 2 * Wo), -xp.inf, dtype=x.dtype)
        padded[:, :, :H, :W] = x
        x = padded
    if xp is not np:
        return _pooled_windows(*(x[:, :, di::2, dj::2] for di, dj in _OFFSETS))
    out = xp.empty((N, C, Ho, Wo), dtype=x.dtype)
    indices = xp.empty((N, C, Ho, Wo), dtype=xp.uint8)
    run(lambda s: _pool_part(xp, x[s], out[s], indices[s]), x)
    return out, indices


def _pool_part(xp, x, out, indices):
    """Pools x (n, C, 2 Ho, 2 Wo) into out and indices (n, C, Ho, Wo). Pairs of columns first,
    then pairs of rows; the index's bits are (lower row, right column), chosen with bit
    operations: NumPy's ``where`` on mixed masks was the slowest step of the layer."""
    n, C, H2, W2 = x.shape
    pairs = x.reshape(n, C, H2 // 2, 2, W2 // 2, 2)
    left, right = pairs[..., 0], pairs[..., 1]  # (n, C, Ho, 2, Wo): both rows of each window
    rows = xp.maximum(left, right)
    is_right = right > left
    top, bottom = rows[:, :, :, 0], rows[:, :, :, 1]
    lower = bottom > top
    xp.maximum(top, bottom, out=out)
    # the column bit of the row that won: the top row's, or the bottom's where it is lower
    column = is_right[:, :, :, 0] ^ (lower & (is_right[:, :, :, 0] ^ is_right[:, :, :, 1]))
    xp.left_shift(lower.view(xp.uint8), 1, out=indices)
    indices |= column.view(xp.uint8)


# The GPU's kernels (``fused``): each one launch where the CPU's passes above take several.

@kernel
def _pooled_windows(xp, a, b, c, d):
    """(max, index) of the windows whose four positions (0, 1, 2, 3) are a, b, c, d: the bits
    of :func:`_pool_part`, in one kernel."""
    top, bottom = xp.maximum(a, b), xp.maximum(c, d)
    lower = bottom > top
    column = (b > a) ^ (lower & ((b > a) ^ (d > c)))
    return xp.maximum(top, bottom), lower * np.uint8(2) + column


@kernel
def _placed(xp, x, indices, position):
    """x where its index is ``position``, else 0: broadcast over the window's positions, the
    whole unpooled map in one kernel."""
    return x * (indices == position)


@kernel
def _gathered(xp, at0, at1, at2, at3, indices):
    """The value at each index's position, of the four (atK for index K): unpooling's backward."""
    return at0 * (indices == 0) + at1 * (indices == 1) + at2 * (indices == 2) + at3 * (indices == 3)


@functools.lru_cache(maxsize=4)
def _positions(xp):
    """(1, 1, 1, 2, 1, 2) uint8: each position's index in the window, on xp's device, once."""
    return xp.asarray(np.arange(4, dtype=np.uint8).reshape(1, 1, 1, 2, 1, 2))


def maxpool2x2_backward(dout, indices, input_shape):
    """dx (input_shape): each gradient goes to the position its maximum came from.

    That is exactly :func:`unpool2x2_forward` of ``dout``.
    """
    return unpool2x2_forward(dout, indices, input_shape)


def _check_unpool_args(fn, x, indices, output_shape):
    require_ndim(fn, "x", x, 4, "(N, C, Ho, Wo)")
    if indices.shape != x.shape:
        raise ValueError(f"{fn}: indices {tuple(indices.shape)} must have the shape of "
                         f"x {tuple(x.shape)}")
    if len(output_shape) not in (2, 4):
        raise ValueError(f"{fn}: output_shape must be (H, W) or (N, C, H, W), got {output_shape}")
    H, W = (int(s) for s in output_shape[-2:])
    if len(output_shape) == 4 and tuple(output_shape[:2]) != tuple(x.shape[:2]):
        raise ValueError(f"{fn}: output_shape {tuple(output_shape)} does not match x "
                         f"{tuple(x.shape)} in N, C")
    if pooled_size(H, W) != tuple(x.shape[2:]):
        raise ValueError(f"{fn}: x {tuple(x.shape)} is not the 2x2 ceil-mode pooling of an "
                         f"{H}x{W} map (that would be {pooled_size(H, W)})")
    return H, W


def unpool2x2_forward(x, indices, output_shape):
    """Returns out (N, C, H, W) with ``output_shape = (H, W)`` or the full (N, C, H, W).

    out[n, c, 2i + idx // 2, 2j + idx % 2] = x[n, c, i, j]  with idx = indices[n, c, i, j];
    every other element is 0.
    """
    H, W = _check_unpool_args("unpool2x2_forward", x, indices, output_shape)
    xp = xp_of(x, indices)
    N, C, Ho, Wo = x.shape
    if xp is np:
        out = xp.empty((N, C, Ho, 2, Wo, 2), dtype=x.dtype)  # (.., i, di, j, dj): the windows

        def part(s):
            for k, (di, dj) in enumerate(_OFFSETS):
                xp.multiply(x[s], indices[s] == k, out=out[s, :, :, di, :, dj])
        run(part, out)
    else:
        window = (slice(None),) * 3 + (None, slice(None), None)
        out = _placed(x[window], indices[window], _positions(xp))
    out = out.reshape(N, C, 2 * Ho, 2 * Wo)
    return out[:, :, :H, :W] if (H, W) != (2 * Ho, 2 * Wo) else out


def unpool2x2_backward(dout, indices):
    """dx (N, C, Ho, Wo): the gradient gathered from where each value was placed.

    dx[n, c, i, j] = dout[n, c, 2i + idx // 2, 2j + idx % 2]
    """
    require_ndim("unpool2x2_backward", "dout", dout, 4, "(N, C, H, W)")
    xp = xp_of(dout, indices)
    N, C, Ho, Wo = indices.shape
    H, W = dout.shape[2:]
    if dout.shape[:2] != (N, C) or pooled_size(H, W) != (Ho, Wo):
        raise ValueError(f"unpool2x2_backward: dout {tuple(dout.shape)} does not fit indices "
                         f"{tuple(indices.shape)}")
    if (H, W) != (2 * Ho, 2 * Wo):
        padded = xp.zeros((N, C, 2 * Ho, 2 * Wo), dtype=dout.dtype)
        padded[:, :, :H, :W] = dout
        dout = padded
    windows = dout.reshape(N, C, Ho, 2, Wo, 2)
    if xp is not np:
        return _gathered(*(windows[:, :, :, di, :, dj] for di, dj in _OFFSETS), indices)
    dx = xp.empty((N, C, Ho, Wo), dtype=dout.dtype)

    def part(s):
        xp.multiply(windows[s, :, :, 0, :, 0], indices[s] == 0, out=dx[s])
        for k, (di, dj) in enumerate(_OFFSETS[1:], start=1):
            dx[s] += windows[s, :, :, di, :, dj] * (indices[s] == k)
    run(part, dout)
    return dx
