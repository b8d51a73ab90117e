"""Convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms
for Convolutional Neural Networks", 2016): the fast method for SegNet's VGG16 3x3 layers.

Shapes and names as in ``conv.py``; k = 3. The output is cut into 2x2 tiles, tile (i, j)
computed from the 4x4 patch ``d`` of the padded input whose corner is (2i, 2j); the
patches of neighbouring tiles overlap by two rows or columns. For one tile, one filter
``g`` (3x3) and one channel the 2x2 result is::

    Y = A^T [(G g G^T) * (B^T d B)] A           (* elementwise, 4x4)

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

which is exactly the correlation of ``d`` with ``g`` (the 1-D case F(2, 3): four products
where direct correlation takes six). Summed over channels, the elementwise product becomes,
for each of the 16 positions (a, b) of the 4x4 transforms, one matrix product::

    V[ab, c, t]  = (B^T d_t,c B)[a, b]       input's transform   (16, C, T), T = N th tw tiles
    U[ab, f, c]  = (G g_f,c G^T)[a, b]       kernel's transform  (16, F, C)
    M[ab]        = U[ab] @ V[ab]             the channels mixed  (16, F, T)
    out tiles    = A^T M A                   (2, 2, F, T)

16 multiply-adds per tile, filter and channel where the direct method takes 36 (9 for each
of the tile's 4 outputs): 2.25 times fewer. Each transform is one product with a Kronecker
matrix (``B^T (x) B^T`` is 16 x 16), so it runs at the matrix-product rate too. Backward
stays in the transformed domain (the transforms are linear, so their adjoints are the
transposed matrices)::

    dM  = (A (x) A) dout's tiles             (16, F, T)
    dU  = dM @ V^T  ->  dw = (G^T (x) G^T) dU
    dV  = U^T @ dM  ->  d patches = (B (x) B) dV, added back where the patches overlap

The values 1/2 and +-1 of the matrices keep float32 results as accurate as the direct
method's (tested against the loops; float64 to 1e-12). Maps whose output has an odd side
get one extra row or column of zeros, computed and dropped.
"""

import functools

import numpy as np

from ..backend import xp_of
from .scratch import scratch, zero_padded

_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)


@functools.lru_cache(maxsize=8)
def _kronecker(dtype_name):
    """(B^T (x) B^T (16, 16), G (x) G (16, 9), A^T (x) A^T (4, 16)) in ``dtype_name`` (NumPy):
    (P (x) P) @ vec(d) = vec(P d P^T) for a matrix d stored row by row."""
    return tuple(np.kron(m, m).astype(dtype_name) for m in (_BT, _G, _AT))


def _matrices(xp, dtype):
    return tuple(xp.asarray(m) for m in _kronecker(np.dtype(dtype).name))


def _tiles(Ho, Wo):
    """(th, tw): 2x2 tiles covering an Ho x Wo output."""
    return (Ho + 1) // 2, (Wo + 1) // 2


def _input_transform(x, pad, th, tw):
    """V (16, C, N th tw): the transform of every 4x4 patch of x zero-padded by ``pad`` (and
    at the bottom and right to 2 th + 2 by 2 tw + 2). A new array (backward reads it)."""
    xp = xp_of(x)
    N, C, H, W = x.shape
    xpad = zero_padded(x, pad, "winograd.padded", spare_rows=2 * th + 2 - (H + 2 * pad),
                       spare_cols=2 * tw + 2 - (W + 2 * pad))
    sn, sc, sh, sw = xpad.strides
    # patches[u, v, c, n, i, j] = xpad[n, c, 2 i + u, 2 j + v]: a view, copied out once
    view = xp.lib.stride_tricks.as_strided(xpad, (4, 4, C, N, th, tw),
                                           (sh, sw, sc, sn, 2 * sh, 2 * sw))
    patches = scratch("winograd.patches", (4, 4, C, N, th, tw), x.dtype, xp)
    patches[...] = view
    bt, _, _ = _matrices(xp, x.dtype)
    return (bt @ patches.reshape(16, -1)).reshape(16, C, N * th * tw)


def _kernel_transform(w):
    """U (16, F, C): G g G^T for every 3x3 filter g = w[f, c]."""
    xp = xp_of(w)
    F, C = w.shape[:2]
    _, gg, _ = _matrices(xp, w.dtype)
    return (gg @ w.reshape(F * C, 9).T).reshape(16, F, C)


def conv_forward(x, w, pad, keep=None):
    """out (N, F, Ho, Wo) of x (N, C, H, W) and w (F, C, 3, 3). ``keep``, a dict, receives
    the input's transform V for :func:`conv_backward`."""
    xp = xp_of(x, w)
    N, C, H, W = x.shape
    F = w.shape[0]
    Ho, Wo = H + 2 * pad - 2, W + 2 * pad - 2
    th, tw = _tiles(Ho, Wo)
    V = _input_transform(x, pad, th, tw)
    if keep is not None:
        keep["spectrum"] = V
    M = _kernel_transform(w) @ V  # (16, F, T)
    _, _, at = _matrices(xp, x.dtype)
    tiles = (at @ M.reshape(16, -1)).reshape(2, 2, F, N, th, tw)
    # out[n, f, 2 i + a, 2 j + b] = tiles[a, b, f, n, i, j]
    out = tiles.transpose(3, 2, 4, 0, 5, 1).reshape(N, F, 2 * th, 2 * tw)
    return xp.ascontiguousarray(out[:, :, :Ho, :Wo])


def conv_backward(dout, x, w, pad, need_dx, transformed=None):
    """(dx or None, dw) for ``out = conv_forward(x, w, pad)`` and dout (N, F, Ho, Wo);
    ``transformed`` is the input's V, kept by the forward pass (computed again when None)."""
    xp = xp_of(dout, x, w)
    N, C, H, W = x.shape
    F = w.shape[0]
    Ho, Wo = dout.shape[2:]
    th, tw = _tiles(Ho, Wo)
    V = _input_transform(x, pad, th, tw) if transformed is None else transformed
    bt, gg, at = _matrices(xp, x.dtype)
    # dout's tiles (2, 2, F, N th tw), odd sides padded by a zero row or column
    padded = zero_padded(dout, 0, "winograd.dout", spare_rows=2 * th - Ho, spare_cols=2 * tw - Wo)
    dtiles = scratch("winograd.dout_tiles", (2, 2, F, N, th, tw), dout.dtype, xp)
    dtiles[...] = padded.reshape(N, F, th, 2, tw, 2).transpose(3, 5, 1, 0, 2, 4)
    dM = (at.T @ dtiles.reshape(4, -1)).reshape(16, F, -1)
    dU = dM @ V.transpose(0, 2, 1)  # (16, F, C)
    dw = (gg.T @ dU.reshape(16, F * C)).reshape(3, 3, F, C).transpose(2, 3, 0, 1)
    dw = xp.ascontiguousarray(dw)
    if not need_dx:
        return None, dw
    dV = _kernel_transform(w).transpose(0, 2, 1) @ dM  # (16, C, T)
    dpatches = (bt.T @ dV.reshape(16, -1)).reshape(4, 4, C, N, th, tw)
    # each patch's four 2x2 quadrants go back to the 2x2 blocks they were read from
    dxpad = xp.zeros((N, C, 2 * th + 2, 2 * tw + 2), dtype=x.dtype)
    for qa in (0, 1):
        for qb in (0, 1):
            quadrant = dpatches[2 * qa:2 * qa + 2, 2 * qb:2 * qb + 2]  # (2, 2, C, N, th, tw)
            block = quadrant.transpose(3, 2, 4, 0, 5, 1).reshape(N, C, 2 * th, 2 * tw)
            dxpad[:, :, 2 * qa:2 * qa + 2 * th, 2 * qb:2 * qb + 2 * tw] += block
    return dxpad[:, :, pad:pad + H, pad:pad + W], dw
