"""Learned and fixed x2 upsampling for the FCN-style and bilinear decoders (paper, Table 1).

Transposed convolution (FCN's "deconvolution"), stride s, padding p::

    x    (N, C, H, W)      w  (C, F, k, k)   (PyTorch's layout: input channels first)
    full[n, f, s*i + u, s*j + v] += sum_c x[n, c, i, j] * w[c, f, u, v]
    out  = full[:, :, p : p + Ho, p : p + Wo]        (Ho, Wo) = output_shape

With k = 4, s = 2, p = 1 the natural output is 2H x 2W; an odd target (23 -> 45) crops
the last row or column, as unpooling does. Every input pixel stamps a k x k copy of its
filters into the output: one matrix product, then k * k strided additions.

Bilinear x2 upsampling resizes each map with fixed interpolation matrices
``out = R_h @ x @ R_w^T`` (half-pixel centres, PyTorch's ``align_corners=False``); being
linear, its backward pass is ``R_h^T @ dout @ R_w``.
"""

import functools
from typing import NamedTuple

import numpy as np

from ..backend import xp_of
from ._checks import require_float, require_ndim


class ConvTransposeCache(NamedTuple):
    """x (N, C, H, W): the input; w (C, F, k, k): the filters; stride, pad: ints."""
    x: object
    w: object
    stride: int
    pad: int


class BilinearCache(NamedTuple):
    """rows (Ho, h) and cols (Wo, w): the interpolation matrices R_h and R_w."""
    rows: object
    cols: object


def _check_output_shape(fn, output_shape, natural):
    H, W = (int(s) for s in output_shape[-2:])
    if not (0 < H <= natural[0] and 0 < W <= natural[1]):
        raise ValueError(f"{fn}: output_shape {tuple(output_shape)} must be at most the natural "
                         f"{natural[0]}x{natural[1]}")
    return H, W


def conv_transpose2d_forward(x, w, output_shape, stride=2, pad=1):
    """Returns ``(out, cache)``, out (N, F, Ho, Wo), the cache a :class:`ConvTransposeCache`;
    see the module docstring."""
    fn = "conv_transpose2d_forward"
    require_ndim(fn, "x", x, 4, "(N, C, H, W)")
    require_ndim(fn, "w", w, 4, "(C, F, k, k)")
    require_float(fn, "x", x)
    if w.shape[0] != x.shape[1] or w.shape[2] != w.shape[3] or w.dtype != x.dtype:
        raise ValueError(f"{fn}: w {tuple(w.shape)} {w.dtype} does not fit x {tuple(x.shape)} {x.dtype}")
    xp = xp_of(x, w)
    N, C, H, W = x.shape
    _, F, k, _ = w.shape
    natural = (stride * (H - 1) + k - 2 * pad, stride * (W - 1) + k - 2 * pad)
    Ho, Wo = _check_output_shape(fn, output_shape, natural)
    # stamps[n, f*k*k + u*k + v, i*W + j] = sum_c w[c, f, u, v] * x[n, c, i, j]
    stamps = xp.matmul(w.reshape(C, F * k * k).T, x.reshape(N, C, H * W)).reshape(N, F, k, k, H, W)
    full = xp.zeros((N, F, stride * (H - 1) + k, stride * (W - 1) + k), dtype=x.dtype)
    for u in range(k):
        for v in range(k):
            full[:, :, u:u + stride * H:stride, v:v + stride * W:stride] += stamps[:, :, u, v]
    out = xp.ascontiguousarray(full[:, :, pad:pad + Ho, pad:pad + Wo])
    return out, ConvTransposeCache(x, w, stride, pad)


def conv_transpose2d_backward(dout, cache):
    """Returns ``(dx, dw)``: gather dout back from every stamp position, then two products."""
    x, w, stride, pad = cache
    xp = xp_of(dout, w)
    N, C, H, W = x.shape
    _, F, k, _ = w.shape
    full = xp.zeros((N, F, stride * (H - 1) + k, stride * (W - 1) + k), dtype=dout.dtype)
    full[:, :, pad:pad + dout.shape[2], pad:pad + dout.shape[3]] = dout
    dstamps = xp.empty((N, F, k, k, H, W), dtype=dout.dtype)
    for u in range(k):
        for v in range(k):
            dstamps[:, :, u, v] = full[:, :, u:u + stride * H:stride, v:v + stride * W:stride]
    dstamps = dstamps.reshape(N, F * k * k, H * W)
    w_mat = w.reshape(C, F * k * k)
    dx = xp.matmul(w_mat, dstamps).reshape(N, C, H, W)
    dw = xp.matmul(x.reshape(N, C, H * W), dstamps.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    return dx, dw


def bilinear_upsample_weights(channels, k=4, dtype=None):
    """(C, C, k, k) transposed-convolution filters that upsample each channel bilinearly x2
    (FCN's initialisation): channel c maps only to channel c."""
    factor = (k + 1) // 2
    centre = factor - 1 if k % 2 == 1 else factor - 0.5
    og = np.arange(k)
    kernel_1d = 1 - np.abs(og - centre) / factor
    w = np.zeros((channels, channels, k, k), dtype=dtype or np.float32)
    w[np.arange(channels), np.arange(channels)] = np.outer(kernel_1d, kernel_1d)
    return w


def bilinear_matrix(n_in, n_out):
    """(n_out, n_in) matrix that resamples a 1-D signal linearly (half-pixel centres, as
    PIL and ``align_corners=False``): row i weighs the two inputs around (i + 0.5) * n_in / n_out - 0.5."""
    position = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    frac = position - low
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), low), 1 - frac)
    np.add.at(m, (np.arange(n_out), high), frac)
    return m


@functools.lru_cache(maxsize=64)
def _resize_matrices(xp, in_size, out_size, dtype):
    """(R_h, R_w) on xp's device. Cached per shape, device and dtype: built on the host and
    copied over once, not on every forward pass."""
    return (xp.asarray(bilinear_matrix(in_size[0], out_size[0]), dtype=dtype),
            xp.asarray(bilinear_matrix(in_size[1], out_size[1]), dtype=dtype))


def resize_scores(scores, size):
    """Bilinear resize of class scores (N, K, h, w) -> (N, K, H, W): ``R_h @ scores @ R_w^T``."""
    rows, cols = _resize_matrices(xp_of(scores), tuple(scores.shape[2:]), tuple(size), scores.dtype)
    return rows @ scores @ cols.T


def bilinear_upsample_forward(x, output_shape):
    """Returns ``(out, cache)``: x (N, C, h, w) resized bilinearly to output_shape[-2:]; the
    cache a :class:`BilinearCache`."""
    require_ndim("bilinear_upsample_forward", "x", x, 4, "(N, C, H, W)")
    require_float("bilinear_upsample_forward", "x", x)
    xp = xp_of(x)
    size = tuple(int(s) for s in output_shape[-2:])
    return resize_scores(x, size), BilinearCache(*_resize_matrices(xp, tuple(x.shape[2:]), size, x.dtype))


def bilinear_upsample_backward(dout, cache):
    """dx = R_h^T @ dout @ R_w."""
    rows, cols = cache
    return rows.T @ dout @ cols


def add_forward(a, b):
    """out = a + b (same shapes). Returns ``(out, None)``: addition needs no cache."""
    if a.shape != b.shape:
        raise ValueError(f"add_forward: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
    return a + b, None


def add_backward(dout, cache=None):
    """(da, db) = (dout, dout): a sum passes its gradient to both terms unchanged."""
    return dout, dout
