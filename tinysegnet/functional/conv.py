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

* ``conv2d_forward`` / ``conv2d_backward``: the fast version the models use. It
  turns the convolution into matrix products by one of seven methods, each in its
  own file: ``conv_rowshift.py`` (k shifted copies of the input; best on large
  maps), ``conv_im2col.py`` (k * k copies; best on small maps with many channels
  and on inputs with few channels), ``conv_fft.py`` (the convolution theorem on
  whole maps, its transforms as products with DFT matrices; best for 7x7 kernels on
  small maps in large batches), ``conv_fft_tiles.py`` (the same on tiles;
  7x7 kernels on larger maps and at any batch), ``conv_winograd.py`` (Winograd's
  F(2x2, 3x3) and F(4x4, 3x3), the latter in ``conv_winograd4.py``: 3x3 kernels on many
  channels) and ``conv_pointwise.py`` (1x1 kernels: one product per image, no copy).
  :func:`choose_method` picks one by shape; ``method=`` forces it. They keep their
  temporaries in reused scratch buffers (``scratch.py`` says why).
* ``conv2d_forward_reference`` / ``conv2d_backward_reference``: plain loops
  that read like the formula above; the tests check every fast method against
  them, and the lessons start from them.
"""

import contextlib
from typing import NamedTuple

import numpy as np

from ..backend import xp_of
from . import (conv_fft, conv_fft_tiles, conv_im2col, conv_pointwise, conv_rowshift, conv_winograd,
               conv_winograd4)
from ._checks import require_float, require_ndim

METHODS = {"rowshift": conv_rowshift, "im2col": conv_im2col, "fft": conv_fft,
           "fft-tiles": conv_fft_tiles, "winograd": conv_winograd, "winograd4": conv_winograd4,
           "pointwise": conv_pointwise}
# The methods that compute one kernel size only, and that size.
ONLY_KERNEL = {"winograd": 3, "winograd4": 3, "pointwise": 1}
# The methods whose forward pass keeps the input's transform for the backward pass's dw.
_KEEPING = {"fft", "fft-tiles"}
# A method every convolution uses instead of choose_method's pick, for measuring the two
# against each other in whole models (``bench model --conv-method``); None: let it pick.
# Set it only through using_method(), which always restores it.
forced_method = None


@contextlib.contextmanager
def using_method(name):
    """Every convolution in the block uses method ``name`` (one of :data:`METHODS`; None: each
    picks its own), a method of :data:`ONLY_KERNEL` only the layers of its kernel size, which
    are all it computes; the previous setting comes back however the block ends."""
    global forced_method
    if name is not None and name not in METHODS:
        raise ValueError(f"using_method: {name!r} is not one of {', '.join(METHODS)}")
    previous, forced_method = forced_method, name
    try:
        yield
    finally:
        forced_method = previous


class ConvCache(NamedTuple):
    """What a convolution's backward pass needs, for the fast and the reference version alike.

    x         (N, C, H, W)  the input (not the padded copy: the fast methods pad into scratch)
    w         (F, C, k, k)  the filters
    has_bias  bool          whether a bias was added (then db is returned)
    pad       int           zeros added on each side
    method    str           one of :data:`METHODS`, or "reference": which backward to run
    spectrum  array or None the FFT methods' transform of x, (Hf, Wb, N, C) or
                            (L, Lb, N tH tW, C), which their backward reuses for dw; None
                            for the other methods
    """
    x: object
    w: object
    has_bias: bool
    pad: int
    method: str
    spectrum: object = None


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


def choose_method(x_shape, w_shape, xp):
    """The fastest method for these shapes on array module ``xp``, by the rule measured with
    ``bench layers``.

    On a GPU both take a whole chunk of images at once, im2col in about ten kernel launches
    and row shifts in about 2 k; row shifts copy the input k times instead of k * k, which
    pays on maps of 2,048 positions or more with 16 channels or more. On the CPU: im2col
    when the input has few channels (row shifts would multiply a k-fold larger product out
    of almost no work) or when the map holds fewer positions than 4 F (the
    weights outweigh the image, and reordering them plus the padded rows cost the
    row-shift method more than im2col's copies); row shifts otherwise. For kernels of 5
    or more on 16 channels or more, an FFT method: on tiles wherever a tile side of 12 to 30
    divides the map (``conv_fft_tiles.exact_tile``: no part-filled tile, no crop) on maps of
    1,500 positions or more; else on whole maps in batches of 4 or more whose maps are small
    (H W <= 400 N), where the kernel's transform (C F frequencies' worth, whatever the
    batch) is paid back and its transforms along H and W (O(H + W) per value) stay below the
    direct method's k * k per channel, (H + W) 8 <= C k k; else on tiles for maps of 1,500
    positions or more (a 24 x 24 tile's transform serves every tile of every image, so
    neither batch nor map size makes it dearer per output). Forward + backward on a 2-core
    CPU, whole-map FFT vs tiles vs row shifts (and im2col where it wins), 64 -> 64, 7x7, ms:
    batch 12, 90x120 (tiles of 30): 455 vs 279 vs 1068; 45x60 (tiles of 15): 108 vs 82 vs
    296; 23x30 (tiles of 18, part-filled): 27 vs 51 vs 95; 12x15: 9 vs 19 vs 36; batch 4,
    90x120: 261 vs 120 vs 379; 45x60: 62 vs 39 vs 107; 23x30: 15 vs 19 vs 29; batch 1,
    90x120: 226 vs 49 vs 94; 45x60: 60 vs 14 vs 28; 23x30: 13 vs 11 vs 7.5, im2col 6.9;
    12x15: 5.9 vs 9.7 vs 3.5, im2col 2.7; 180x240: tiles 152 vs row shifts 380; 360x480:
    406 vs 1322. An input of 3 channels stays with im2col (batch 12, 90x120, no dx: tiles 94
    vs row shifts 174 vs im2col 88 ms).
    1x1 kernels are one matrix product per image on the CPU (64 -> 11 at 90x120, batch 12:
    14 ms against row shifts' 27 and im2col's 36, forward + backward).
    For 3x3 kernels on 128 channels or more, Winograd: F(4x4, 3x3) where the map outweighs
    the weights (N H W >= 4 F), F(2x2, 3x3) on the rest of the maps of at most 2,048
    positions with N H W > F. Their transforms cost memory traffic (F(2x2)'s patches are 4
    times the input, F(4x4)'s 2.25 times) which 2.25 and 4 times fewer multiply-adds repay
    once the channels are many; F(4x4)'s kernel transform (36 F C values) outweighs a small
    map's work. Forward + backward with the commands' allocator (``allocator.
    reuse_freed_memory``; ``bench layers --repeat 3``, commit f6d9123, a machine its
    neighbours slowed by up to a fifth), row shifts vs im2col vs F(2x2) vs F(4x4), ms: batch
    12, 64 -> 64 at 90x120: 256 vs 327 vs 352 vs 285; 128 -> 128 at 45x60: 205 vs 245 vs 281
    vs 249; 256 -> 256 at 23x30: 261 vs 256 vs 223 vs 178; 512 -> 512 at 12x15: 335 vs 224 vs
    157 vs 123; at 6x8: 121 vs 54 vs 49 vs 56; batch 1, 256 -> 256 at 45x60: 62 vs 63 vs 51
    vs 46; 512 -> 512 at 23x30: 87 vs 59 vs 51 vs 50; at 12x15: 40 vs 20 vs 22 vs 41.
    Before both, 3x3 kernels from and to 64 channels or more in batches of 6 or more take the FFT's
    tiles where a side divides the map: 30 x 30 tiles hold 32 x 32 patches (1.14 times the
    outputs' frequencies, half of them kept, against Winograd F(4x4)'s 2.25 times), paid
    back once the batch spreads the kernel's transform. Row shifts vs F(4x4) vs tiles, ms:
    batch 12, 64 -> 64 at 90x120: 251 vs 325 vs 244; 180x240: 1068 vs 1143 vs 943; 128 ->
    128 at 45x60 (tiles of 15): 216 vs 208 vs 154; batch 6, 64 -> 64 at 90x120: 179 vs 209
    vs 154; batch 8, 128 -> 128 at 45x60: 179 vs 155 vs 133; but batch 4: 108 vs 121 vs 116
    and 82 vs 72 vs 87, batch 1 at 360x480: 342 vs 398 vs 371 (measured before F(4x4)'s dx
    became a forward pass; since, at batch 12, F(4x4) 285 and 249 against the tiles' 252 and
    185, in the run above). To few filters the per-frequency
    products are too small to pay for the transforms: SegNet's classifier, 64 -> 11 at 90x120,
    batch 12, row shifts 68 against the tiles' 119.
    """
    N, C, H, W = x_shape
    if xp is not np:
        return "rowshift" if C >= 16 and H * W >= 2048 else "im2col"
    F, k = w_shape[0], w_shape[2]
    if k == 1:
        return "pointwise"
    if k >= 5 and C >= 16:
        if H * W >= 1500 and conv_fft_tiles.exact_tile(k, H, W):
            return "fft-tiles"
        if N >= 4 and H * W <= 400 * N and (H + W) * 8 <= C * k * k:
            return "fft"
        if H * W >= 1500:
            return "fft-tiles"
    if k == 3 and C >= 64 and F >= 64 and N >= 6 and H * W >= 1500 and conv_fft_tiles.exact_tile(k, H, W):
        return "fft-tiles"
    if k == 3 and C >= 128:
        if N * H * W >= 4 * F:
            return "winograd4"
        if H * W <= 2048 and N * H * W > F:
            return "winograd"
    return "im2col" if C < 16 or N * H * W <= 4 * F else "rowshift"


def conv2d_forward(x, w, b=None, pad=None, method=None, backward=True):
    """Fast convolution. Returns ``(out, cache)``, the cache a :class:`ConvCache`; shapes and
    formula in the module docstring.

    ``pad`` defaults to ``k // 2`` (output the size of the input) and may be 0..k-1.
    ``method`` is one of :data:`METHODS` (those of :data:`ONLY_KERNEL` for their kernel size
    only); None lets :func:`choose_method` pick. ``backward=False`` says no backward pass will
    follow (inference): the FFT methods then keep no transform for it and may take an image in
    parts, holding less memory (a backward pass called all the same computes the transform
    again).
    """
    pad = _check_conv_args("conv2d_forward", x, w, b, pad)
    k = w.shape[2]
    if method is None and forced_method is not None and ONLY_KERNEL.get(forced_method, k) == k:
        method = forced_method
    method = method or choose_method(x.shape, w.shape, xp_of(x, w))
    if method not in METHODS:
        raise ValueError(f"conv2d_forward: method must be one of {', '.join(METHODS)}, got {method!r}")
    if ONLY_KERNEL.get(method, k) != k:
        raise ValueError(f"conv2d_forward: the {method} method computes {ONLY_KERNEL[method]}x"
                         f"{ONLY_KERNEL[method]} kernels only, got w {tuple(w.shape)}")
    kept = {} if backward else None
    out = (METHODS[method].conv_forward(x, w, pad, kept) if method in _KEEPING
           else METHODS[method].conv_forward(x, w, pad))
    if b is not None:
        out += b[None, :, None, None]
    return out, ConvCache(x, w, b is not None, pad, method, (kept or {}).get("spectrum"))


def conv2d_backward(dout, cache, need_dx=True):
    """Gradients of the fast convolution: ``(dx, dw, db)``, ``db`` None without a bias.

    ``need_dx=False`` skips (and returns None for) dx: a network's first layer has no
    use for the gradient of the image.

    dout (N, F, Ho, Wo) -> dx (N, C, H, W), dw (F, C, k, k), db (F,)::

        db[f]          = sum_{n,i,j} dout[n, f, i, j]
        dw[f, c, u, v] = sum_{n,i,j} dout[n, f, i, j] * xpad[n, c, i + u, j + v]
        dx[n, c, h, w] = sum_{f,u,v} dout[n, f, h + p - u, w + p - v] * w[f, c, u, v]
    """
    if cache.method == "reference":
        return conv2d_backward_reference(dout, cache)
    x, w, has_bias, pad, method = cache.x, cache.w, cache.has_bias, cache.pad, cache.method
    N, C, H, W = x.shape
    F, _, k, _ = w.shape
    expected = (N, F, H + 2 * pad - k + 1, W + 2 * pad - k + 1)
    if dout.shape != expected:
        raise ValueError(f"conv2d_backward: dout has shape {tuple(dout.shape)}, expected {expected}")
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    if method in _KEEPING:
        dx, dw = METHODS[method].conv_backward(dout, x, w, pad, need_dx, cache.spectrum)
    else:
        dx, dw = METHODS[method].conv_backward(dout, x, w, pad, need_dx)
    return dx, dw, db


def conv2d_forward_reference(x, w, b=None, pad=None):
    """The same convolution as plain loops over (n, f, i, j): slow, but it is the formula.

    Returns ``(out, cache)`` like :func:`conv2d_forward`, the cache a :class:`ConvCache`.
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
    return out, ConvCache(x, w, b is not None, pad, "reference")


def conv2d_backward_reference(dout, cache):
    """Loop version of :func:`conv2d_backward`: every output element sends its gradient
    back to the window it was computed from. Returns ``(dx, dw, db)``."""
    x, w, has_bias, pad = cache.x, cache.w, cache.has_bias, cache.pad
    xp = xp_of(dout, w)
    N, F, Ho, Wo = dout.shape
    k = w.shape[2]
    xpad = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
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
