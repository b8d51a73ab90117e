"""Convolution by the convolution theorem: the fast method for large kernels (SegNet-Basic's
7x7) on large maps, where a direct method pays k * k multiply-adds per output and channel
pair and this one pays one complex product per frequency.

Shapes and names as in ``conv.py``. Each map is zero-padded to an FFT size (Hf, Wf) with
Hf >= H + p and Wf >= W + p, which is what keeps the circular correlation of the FFT from
wrapping real values onto outputs; ``rfft2`` keeps the Wb = Wf // 2 + 1 non-negative
frequencies of the last axis. With s = u - p the kernel's offsets around its centre::

    X[n, c, a, b]  = sum_{h, w} x[n, c, h, w] e^{-2 pi i (a h / Hf + b w / Wf)}
    K[f, c, a, b]  = sum_{u, v} w[f, c, u, v] e^{-2 pi i (a (u - p) / Hf + b (v - p) / Wf)}
    out            = irfft2(sum_c X[n, c] conj(K[f, c]))[:Ho, :Wo]         (correlation)
    dx             = irfft2(sum_f D[n, f] K[f, c])[:H, :W]                  (its adjoint)
    dw[f, c, u, v] = g[u - p, v - p],  g = irfft2(sum_n X[n, c] conj(D[n, f]))

with D = rfft2(dout). The kernel's transform is two small matrix products with DFT
matrices (Hf x k and Wb x k), not F C full-size FFTs, and dw reads only the k x k values of
g it needs the same way, by products with the inverse DFT matrices. The channels mix per
frequency as batched complex matrix products, the kernel's transform made a block of rows
at a time beside them (whole, it would outweigh the data's at SegNet's shapes); the input's
transform is kept from the forward pass for dw. Every value is exact up to float rounding (tested against the loops).
"""

import functools

import numpy as np

from ..backend import xp_of
from . import long_sums
from .batch_split import contiguous, run


def fft_size(H, W, pad):
    """(Hf, Wf) for maps of H x W padded by ``pad``: the transform sizes this method uses,
    the smallest that keep the circular correlation from wrapping (the transforms are
    matrix products, so no size is faster than another)."""
    return H + pad, W + pad


@functools.lru_cache(maxsize=64)
def _dft(length, k, pad, kept, inverse, dtype_name):
    """DFT matrix (kept, k): e^{-+2 pi i a (u - pad) / length} for a < kept, u < k (NumPy)."""
    a = np.arange(kept)[:, None]
    u = np.arange(k)[None, :] - pad
    sign = 1.0 if inverse else -1.0
    return np.exp(sign * 2j * np.pi * a * u / length).astype(dtype_name)


def _matrices(xp, Hf, Wf, k, pad, complex_dtype, inverse=False, weighted=True):
    """(Hf x k, Wb x k) DFT matrices, e^{-+2 pi i a (u - pad) / n}; ``weighted`` inverse
    ones carry irfft's weights along b."""
    name = np.dtype(complex_dtype).name
    dh = _dft(Hf, k, pad, Hf, inverse, name)
    dw = _dft(Wf, k, pad, Wf // 2 + 1, inverse, name)
    if inverse and weighted:  # irfft's weights: the columns between 0 and Nyquist count twice
        weights = np.full(Wf // 2 + 1, 2.0)
        weights[0] = 1.0
        if Wf % 2 == 0:
            weights[-1] = 1.0
        dw = (dw * weights[:, None]).astype(name)
    return xp.asarray(dh), xp.asarray(dw)


def _kernel_factor(w, Hf, Wf, pad, sign, filters_last):
    """(dh, right): the kernel's transform K (sign -1) or conj(K) (sign +1) is
    ``dh @ right`` reshaped to (Hf, Wb, C, F) (or (Hf, Wb, F, C) when not ``filters_last``),
    so a block of its rows costs one small product and the whole (Hf Wb C F) array, hundreds
    of MB at SegNet's shapes, is never held at once."""
    xp = xp_of(w)
    F, C, k, _ = w.shape
    complex_dtype = xp.result_type(w.dtype, np.complex64)
    dh, dwm = _matrices(xp, Hf, Wf, k, pad, complex_dtype, inverse=sign > 0, weighted=False)
    right = w.reshape(F * C * k, k).astype(complex_dtype) @ dwm.T  # (F C k, Wb): along v
    order = (2, 3, 1, 0) if filters_last else (2, 3, 0, 1)  # (k u, Wb, C, F) or (k u, Wb, F, C)
    return dh, right.reshape(F, C, k, -1).transpose(order).reshape(k, -1)


def _mix(spectrum, w, Hf, Wf, pad, sign, filters_last):
    """sum over the spectrum's channel axis of spectrum (Hf, Wb, N, ·) times the kernel's
    transform (conj(K) with sign +1, K with -1), frequency by frequency, a block of rows at
    a time: (Hf, Wb, N, F) with ``filters_last``, else (Hf, Wb, N, C)."""
    xp = xp_of(spectrum)
    F, C = w.shape[:2]
    dh, right = _kernel_factor(w, Hf, Wf, pad, sign, filters_last)
    Wb = Wf // 2 + 1
    inner, outer = (C, F) if filters_last else (F, C)
    out = xp.empty(spectrum.shape[:3] + (outer,), dtype=spectrum.dtype)
    rows = max(1, 2 ** 21 // max(1, Wb * C * F))  # a block of the kernel's transform: 16 MB
    for start in range(0, Hf, rows):
        block = slice(start, min(start + rows, Hf))
        kernel = (dh[block] @ right).reshape(-1, Wb, inner, outer)
        per_frequency(spectrum[block], kernel, out[block])
    return out


def per_frequency(left, right, out=None):
    """left (Fa, Fb, M, K) @ right (Fa, Fb, K, P): one product per frequency (a, b), into
    ``out`` (a new array when None). Each is small and the BLAS runs it on one core, so the
    threads take a run of frequencies each (``batch_split``). K may be long (dw's sum over
    every tile of the batch): ``long_sums.matmul`` keeps it the same on any thread count."""
    xp = xp_of(left, right)
    if out is None:
        out = xp.empty(left.shape[:3] + right.shape[3:], dtype=left.dtype)
    run(lambda s: long_sums.matmul(left[s], right[s], out=out[s]), out)
    return out


@functools.lru_cache(maxsize=64)
def _along_width(width, Wf, real_dtype):
    """(width, 2 Wb) real: x @ it gives x's DFT along its last axis (zero-padded to Wf) as
    interleaved real and imaginary parts, which a view reads as complex (NumPy)."""
    b = np.arange(Wf // 2 + 1)[None, :]
    angle = 2 * np.pi * np.arange(width)[:, None] * b / Wf
    out = np.empty((width, 2 * b.size))
    out[:, 0::2], out[:, 1::2] = np.cos(angle), -np.sin(angle)
    return out.astype(real_dtype)


@functools.lru_cache(maxsize=64)
def _along_height(height, Hf, complex_dtype, inverse):
    """(Hf, height) e^{-2 pi i a h / Hf}, or its inverse (height, Hf) e^{+...} (NumPy)."""
    a, h = np.arange(Hf)[:, None], np.arange(height)[None, :]
    if inverse:
        return np.exp(2j * np.pi * h.T * a.T / Hf).astype(complex_dtype)
    return np.exp(-2j * np.pi * a * h / Hf).astype(complex_dtype)


@functools.lru_cache(maxsize=64)
def _back_along_width(width, Wf, scale, real_dtype):
    """(2 Wb, width) real: interleaved (re, im) rows @ it give irfft's real values along the
    last axis, times ``scale``, each frequency between 0 and Nyquist counted twice (NumPy)."""
    b = np.arange(Wf // 2 + 1)[:, None]
    weights = np.full((b.size, 1), 2.0)
    weights[0] = 1.0
    if Wf % 2 == 0:
        weights[-1] = 1.0
    angle = 2 * np.pi * b * np.arange(width)[None, :] / Wf
    out = np.empty((2 * b.size, width))
    out[0::2], out[1::2] = weights * np.cos(angle), -weights * np.sin(angle)
    return (out * scale).astype(real_dtype)


def _spectrum(x, Hf, Wf):
    """(Hf, Wb, N, C) transform of x (N, C, H, W) zero-padded to (Hf, Wf), frequency-major:
    two matrix products with DFT matrices (a few GFLOP/s more than an FFT's O(n log n) on
    maps this small, and products run at the machine's full matrix rate)."""
    xp = xp_of(x)
    N, C, H, W = x.shape
    complex_dtype = xp.result_type(x.dtype, np.complex64)
    real = xp.asarray(_along_width(W, Wf, np.dtype(x.dtype).name))
    rows = (x.reshape(N * C * H, W) @ real).view(complex_dtype)  # (N C H, Wb)
    rows = contiguous(rows.reshape(N, C, H, -1).transpose(2, 3, 0, 1))  # (H, Wb, N, C)
    down = xp.asarray(_along_height(H, Hf, np.dtype(complex_dtype).name, False))
    return (down @ rows.reshape(H, -1)).reshape(Hf, -1, N, C)


def _maps(spectrum, Hf, Wf, rows, cols, dtype):
    """Real maps (N, C, rows, cols): the inverse transform of a frequency-major spectrum
    (Hf, Wb, N, C), kept to its first rows and columns, by the same two kinds of product."""
    xp = xp_of(spectrum)
    _, Wb, N, C = spectrum.shape
    up = xp.asarray(_along_height(rows, Hf, np.dtype(spectrum.dtype).name, True))
    half = (up @ spectrum.reshape(Hf, -1)).reshape(rows, Wb, N, C)
    half = contiguous(half.transpose(2, 3, 0, 1))  # (N, C, rows, Wb)
    real = xp.asarray(_back_along_width(cols, Wf, 1.0 / (Hf * Wf), np.dtype(dtype).name))
    return (half.view(dtype).reshape(N * C * rows, 2 * Wb) @ real).reshape(N, C, rows, cols)


def conv_forward(x, w, pad, keep=None):
    """out (N, F, Ho, Wo) of x (N, C, H, W) and w (F, C, k, k). ``keep``, a dict, receives
    the input's spectrum for :func:`conv_backward`."""
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    Ho, Wo = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    Hf, Wf = fft_size(H, W, pad)
    X = _spectrum(x, Hf, Wf)  # (Hf, Wb, N, C)
    if keep is not None:
        keep["spectrum"] = X
    return _maps(_mix(X, w, Hf, Wf, pad, +1, True), Hf, Wf, Ho, Wo, x.dtype)


def conv_backward(dout, x, w, pad, need_dx, spectrum=None):
    """(dx or None, dw) for ``out = conv_forward(x, w, pad)`` and dout (N, F, Ho, Wo);
    ``spectrum`` is the input's, kept by the forward pass (computed again when None)."""
    xp = xp_of(dout, x, w)
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    Hf, Wf = fft_size(H, W, pad)
    X = _spectrum(x, Hf, Wf) if spectrum is None else spectrum
    D = _spectrum(dout, Hf, Wf)  # (Hf, Wb, N, F)
    # dw: g's k x k values around lag 0, by inverse DFT matrices, a block of rows at a time
    # (the whole (Hf, Wb, C, F) product would be hundreds of MB at SegNet's shapes)
    ih, iw = _matrices(xp, Hf, Wf, k, pad, X.dtype, inverse=True)  # (Hf, k), (Wb, k)
    iw_t = xp.ascontiguousarray(iw.T)  # (k v, Wb)
    dw = xp.zeros((k, k * C * F), dtype=X.dtype)
    rows = max(1, 2 ** 24 // max(1, X.shape[1] * C * F))
    Xt, Dc = X.transpose(0, 1, 3, 2), D.conj()
    for start in range(0, Hf, rows):
        block = slice(start, min(start + rows, Hf))
        G = per_frequency(Xt[block], Dc[block])  # (rows, Wb, C, F) = sum_n X conj(D)
        # dw[u, v] += sum_{a, b} ih[a, u] G[a, b] iw[b, v]: along b for each row, then along a
        over_b = iw_t @ G.reshape(G.shape[0], G.shape[1], C * F)  # (rows, k v, C F)
        dw += ih[block].T @ over_b.reshape(G.shape[0], k * C * F)  # (k u, k v C F)
    dw = dw.reshape(k, k, C, F)
    dw = (dw.real / (Hf * Wf)).transpose(3, 2, 0, 1).astype(w.dtype)
    if not need_dx:
        return None, dw
    return _maps(_mix(D, w, Hf, Wf, pad, -1, False), Hf, Wf, H, W, x.dtype), dw
