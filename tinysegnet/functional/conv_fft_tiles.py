"""Convolution by the convolution theorem on tiles (overlap-save): the FFT method for large
kernels on maps of any size and batches of any size.

Why beside ``conv_fft.py``: a whole-map transform makes the kernel's transform as large as
the map (F C Hf Wb values, 189 MB for 64 -> 64 at 90x120) and every frequency's channel
product a small one (N x C times C x F) that the BLAS runs on one core. Cut the output into
T x T tiles and each tile needs only the L x L input patch around it (L = T + k - 1); one
L x L transform then serves every tile, so the kernel's transform is small (L Lb C F values)
and each frequency's product takes every tile of every image at once (M = N tH tW rows),
at the matrix-product rate, even at batch 1. The price is the overlap: about L^2 / T^2
times more frequencies per output than the whole map's.

Shapes and names as in ``conv.py``; tH x tW tiles cover the output (tH = ceil(Ho / T)), x
is zero-padded to xpad (N, C, tH T + k - 1, tW T + k - 1) with p zeros before, the m-th
tile is (n, i, j) and its patch ``xpad[n, c, iT : iT + L, jT : jT + L]``. Lb = L // 2 + 1
frequencies are kept along the last axis (the rest are their conjugates). With all
transforms L x L and zero-padded, and no index ever wrapping around::

    X[a, b, m, c] = DFT2(patch m of x[:, c])       K[a, b, c, f] = DFT2(w[f, c])
    out tile m    = IDFT2(sum_c X[m, c] conj(K[c, f]))[:T, :T]             (correlation)
    dx            = overlap-add over tiles of IDFT2(sum_f D[m, f] K[f, c])  (its adjoint)
    dw[f, c]      = IDFT2(sum_m X[m, c] conj(D[m, f]))[:k, :k]

with D the transforms of dout's T x T tiles, zero-padded to L x L. The transforms are
matrix products with DFT matrices (``conv_fft``'s), the input's is kept for dw.
"""

import numpy as np

from ..backend import xp_of
from .batch_split import contiguous, run
from .conv_fft import (_along_height, _along_width, _back_along_width, _kernel_factor, _matrices,
                       per_frequency)
from .scratch import row_chunks, zero_padded


EXACT_TILES = range(30, 11, -1)  # tile sides tried, largest first, on an output they divide
# When inference on one image takes its tile rows a band at a time (conv_forward): how many
# complex values one band's spectrum may hold (32 MiB of complex64 on the CPU).
SPECTRUM_LIMIT = {"cpu": 2 ** 22, "gpu": 2 ** 28}


def tile_size(k, Ho, Wo):
    """T: the output tile's side for a k x k kernel and an Ho x Wo output. The largest T in
    ``EXACT_TILES`` that divides both Ho and Wo, so that no tile is part-filled and no output
    is cropped from a larger one; else L = T + k - 1 = 24. At least k - 1 either way, so that
    a tile's overhang reaches no further than the next tile.

    Measured (64 -> 64, 7x7, forward + backward, ms, each pair in one run; 2-core CPU): batch
    12 at 90x120, T = 30 280 against T = 18's 328; at 45x60, T = 15 87 against 128; 360x480,
    batch 1, 485 against 544. Sides that leave part-filled tiles were slower: at 90x120 T = 26
    337 and T = 36 406 where T = 30 took 275."""
    return exact_tile(k, Ho, Wo) or max(k - 1, 24 - (k - 1))


def exact_tile(k, Ho, Wo):
    """The largest T in ``EXACT_TILES`` (and >= k - 1) that divides both Ho and Wo, or None."""
    return next((T for T in EXACT_TILES if Ho % T == 0 and Wo % T == 0 and T >= k - 1), None)


def _grid(Ho, Wo, T):
    return -(-Ho // T), -(-Wo // T)


def _padded(x, pad, tH, tW, T, k):
    """xpad (N, C, tH T + k - 1, tW T + k - 1): x with ``pad`` zeros before and as many after as
    whole tiles need, in scratch (its transform is computed from it at once)."""
    H, W = x.shape[2:]
    return zero_padded(x, pad, "fft_tiles.padded", spare_rows=tH * T + k - 1 - (H + 2 * pad),
                       spare_cols=tW * T + k - 1 - (W + 2 * pad))


def _spectrum(z, T, span, L):
    """(L, Lb, N tH tW, C): the L x L transforms of z's (N, C, Hz, Wz) patches of span x span
    values at a stride of T (zero-padded to L), frequency-major for the channel products."""
    xp = xp_of(z)
    N, C, Hz, Wz = z.shape
    tH, tW = (Hz - span) // T + 1, (Wz - span) // T + 1
    strided = xp.lib.stride_tricks.as_strided
    sN, sC, sH, sW = z.strides
    # along the width: each row's patches (overlapping when span > T), one product
    rows = contiguous(strided(z, (N, C, Hz, tW, span), (sN, sC, sH, sW * T, sW)))
    real = xp.asarray(_along_width(span, L, np.dtype(z.dtype).name))
    complex_dtype = xp.result_type(z.dtype, np.complex64)
    half = (rows.reshape(-1, span) @ real).view(complex_dtype)  # (N C Hz tW, Lb)
    half = half.reshape(N, C, Hz, tW, -1)
    # along the height: the patches' rows first, the tiles and channels last
    hN, hC, hH, hW, hB = half.strides
    patches = contiguous(strided(half, (span, half.shape[-1], N, tH, tW, C),
                                 (hH, hB, hN, hH * T, hW, hC)))
    down = xp.asarray(_along_height(span, L, np.dtype(complex_dtype).name, False))
    return (down @ patches.reshape(span, -1)).reshape(L, -1, N * tH * tW, C)


def _tiles(spectrum, N, tH, tW, rows, cols, dtype):
    """(N, ·, tH, rows, tW, cols): the first rows x cols values of each tile's inverse
    transform, from a spectrum (L, Lb, N tH tW, ·)."""
    xp = xp_of(spectrum)
    L, Lb, _, C = spectrum.shape
    up = xp.asarray(_along_height(rows, L, np.dtype(spectrum.dtype).name, True))
    half = (up @ spectrum.reshape(L, -1)).reshape(rows, Lb, N, tH, tW, C)
    half = contiguous(half.transpose(2, 5, 3, 0, 4, 1))  # (N, C, tH, rows, tW, Lb)
    real = xp.asarray(_back_along_width(cols, L, 1.0 / (L * L), np.dtype(dtype).name))
    out = half.view(dtype).reshape(-1, 2 * Lb) @ real
    return out.reshape(N, C, tH, rows, tW, cols)


def conv_forward(x, w, pad, keep=None):
    """out (N, F, Ho, Wo) of x (N, C, H, W) and w (F, C, k, k). ``keep``, a dict, receives
    the input's spectrum for :func:`conv_backward`; None (inference) lets one image go in
    bands of tile rows."""
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    Ho, Wo = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    T = tile_size(k, Ho, Wo)
    L = T + k - 1
    tH, tW = _grid(Ho, Wo, T)
    xpad = _padded(x, pad, tH, tW, T, k)
    dh, right = _kernel_factor(w, L, L, 0, +1, True)  # conj(K), (L, Lb, C, F)
    kernel = (dh @ right).reshape(L, -1, C, F)
    # Inference on one image (predict at full size) takes its tile rows in bands whose spectrum
    # fits SPECTRUM_LIMIT: at 360x480 the layer then peaks 80 MiB lower at the same speed. A batch
    # stays whole: cut in parts, its per-frequency products shrink, and took 15-20% longer at
    # batch 12, 90x120 and batch 4, 180x240 (each measured interleaved with the whole, in one
    # process). Training keeps the whole spectrum for dw.
    banded = keep is None and N == 1
    chunks = (row_chunks(x, tH, L * (L // 2 + 1) * tW * C, SPECTRUM_LIMIT) if banded
              else [(slice(0, N), slice(0, tH))])
    out = None if len(chunks) == 1 else xp_of(x).empty((N, F, tH * T, tW * T), dtype=x.dtype)
    for part, rows in chunks:
        X = _spectrum(xpad[part, :, rows.start * T:rows.stop * T + k - 1], T, L, L)
        if keep is not None:
            keep["spectrum"] = X
        n, r = part.stop - part.start, rows.stop - rows.start
        tiles = _tiles(per_frequency(X, kernel), n, r, tW, T, T, x.dtype).reshape(n, F, r * T, tW * T)
        if out is None:
            out = tiles
        else:
            out[part, :, rows.start * T:rows.stop * T] = tiles
    return out if (tH * T, tW * T) == (Ho, Wo) else contiguous(out[:, :, :Ho, :Wo])


def conv_backward(dout, x, w, pad, need_dx, spectrum=None):
    """(dx or None, dw) for ``out = conv_forward(x, w, pad)`` and dout (N, F, Ho, Wo);
    ``spectrum`` is the input's, kept by the forward pass (computed again when None)."""
    xp = xp_of(dout, x, w)
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    Ho, Wo = dout.shape[2:]
    T = tile_size(k, Ho, Wo)
    L = T + k - 1
    tH, tW = _grid(Ho, Wo, T)
    if spectrum is None:
        spectrum = _spectrum(_padded(x, pad, tH, tW, T, k), T, L, L)
    if (tH * T, tW * T) != (Ho, Wo):
        dout = zero_padded(dout, 0, "fft_tiles.dout", spare_rows=tH * T - Ho, spare_cols=tW * T - Wo)
    D = _spectrum(dout, T, T, L)  # (L, Lb, M, F)
    # dw: the k x k values of each (c, f)'s inverse transform, by inverse DFT matrices
    G = per_frequency(spectrum.transpose(0, 1, 3, 2), D.conj())  # (L, Lb, C, F)
    ih, iw = _matrices(xp, L, L, k, 0, G.dtype, inverse=True)  # (L, k), (Lb, k)
    over_b = xp.ascontiguousarray(iw.T) @ G.reshape(L, -1, C * F)  # (L, k v, C F)
    dw = (ih.T @ over_b.reshape(L, -1)).real.reshape(k, k, C, F) / (L * L)
    dw = dw.transpose(3, 2, 0, 1).astype(w.dtype)
    if not need_dx:
        return None, dw
    dh, right = _kernel_factor(w, L, L, 0, -1, False)  # K, (L, Lb, F, C)
    tiles = _tiles(per_frequency(D, (dh @ right).reshape(L, -1, F, C)), N, tH, tW, L, L, x.dtype)
    return contiguous(_overlap_add(tiles, T, k)[:, :, pad:pad + H, pad:pad + W]), dw


def _overlap_add(tiles, T, k):
    """(N, C, (tH + 1) T, (tW + 1) T): tiles (N, C, tH, L, tW, L) added at a stride of T, each
    tile's last k - 1 rows and columns onto the next tile's first; images cut among threads."""
    xp = xp_of(tiles)
    N, C, tH, L, tW, _ = tiles.shape
    wide = xp.empty((N, C, tH, L, tW + 1, T), dtype=tiles.dtype)
    out = xp.empty((N, C, tH + 1, T, (tW + 1) * T), dtype=tiles.dtype)

    def part(s):
        across = wide[s]
        across[..., :tW, :] = tiles[s, ..., :T]
        across[..., tW, :] = 0
        across[..., 1:, :k - 1] += tiles[s, ..., T:]
        across = across.reshape(across.shape[:4] + ((tW + 1) * T,))
        down = out[s]
        down[:, :, :tH] = across[:, :, :, :T]
        down[:, :, tH] = 0
        down[:, :, 1:, :k - 1] += across[:, :, :, T:]
    run(part, tiles)
    return out.reshape(N, C, (tH + 1) * T, (tW + 1) * T)
