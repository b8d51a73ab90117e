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

Images go a chunk at a time (16 MB of V on the CPU), so that a chunk's transforms are still
near the cache when the products read them; the backward pass makes each chunk's V again
rather than keep four times the input from the forward pass. The values 1/2 and +-1 of the
matrices keep float32 results as accurate as the direct method's (tested against the loops;
float64 to 1e-12). Maps whose output has an odd side get one extra row or column of zeros,
computed and dropped.
"""

import functools

import numpy as np

from ..backend import xp_of
from .scratch import image_chunks, scratch, zero_padded

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


# Images are taken in chunks whose input transform holds at most this many values: 16 MB of
# float32 on the CPU, so that a chunk's transforms stay near the cache between the three
# products that read them; 1 GiB on a GPU, where each chunk costs kernel launches.
TRANSFORM_LIMIT = {"cpu": 2 ** 22, "gpu": 2 ** 28}


def _input_transform(xpad, th, tw):
    """V (16, C, n th tw) of the images of ``xpad`` (n, C, 2 th + 2, 2 tw + 2): the transform
    of every 4x4 patch, in a scratch array."""
    xp = xp_of(xpad)
    n, C = xpad.shape[:2]
    sn, sc, sh, sw = xpad.strides
    # patches[u, v, c, m, i, j] = xpad[m, c, 2 i + u, 2 j + v]: a view, copied out once
    view = xp.lib.stride_tricks.as_strided(xpad, (4, 4, C, n, th, tw), (sh, sw, sc, sn, 2 * sh, 2 * sw))
    patches = scratch("winograd.patches", (4, 4, C, n, th, tw), xpad.dtype, xp)
    patches[...] = view
    bt, _, _ = _matrices(xp, xpad.dtype)
    V = scratch("winograd.input_transform", (16, C, n * th * tw), xpad.dtype, xp)
    xp.matmul(bt, patches.reshape(16, -1), out=V.reshape(16, -1))
    return V


def _kernel_transform(w):
    """U (16, F, C): G g G^T for every 3x3 filter g = w[f, c]."""
    xp = xp_of(w)
    F, C = w.shape[:2]
    _, gg, _ = _matrices(xp, w.dtype)
    return (gg @ w.reshape(F * C, 9).T).reshape(16, F, C)


def _padded(x, pad, th, tw):
    """x zero-padded by ``pad``, and at the bottom and right to 2 th + 2 by 2 tw + 2 (scratch)."""
    H, W = x.shape[2:]
    return zero_padded(x, pad, "winograd.padded", spare_rows=2 * th + 2 - (H + 2 * pad),
                       spare_cols=2 * tw + 2 - (W + 2 * pad))


def _chunks(x, th, tw):
    return image_chunks(x, 16 * x.shape[1] * th * tw, TRANSFORM_LIMIT)


def conv_forward(x, w, pad):
    """out (N, F, Ho, Wo) of x (N, C, H, W) and w (F, C, 3, 3)."""
    xp = xp_of(x, w)
    N, C, H, W = x.shape
    F = w.shape[0]
    Ho, Wo = H + 2 * pad - 2, W + 2 * pad - 2
    th, tw = _tiles(Ho, Wo)
    xpad = _padded(x, pad, th, tw)
    U = _kernel_transform(w)
    _, _, at = _matrices(xp, x.dtype)
    out = xp.empty((N, F, Ho, Wo), dtype=x.dtype)
    for part in _chunks(x, th, tw):
        V = _input_transform(xpad[part], th, tw)
        n = V.shape[2] // (th * tw)
        M = scratch("winograd.mixed", (16, F, n * th * tw), x.dtype, xp)
        xp.matmul(U, V, out=M)
        tiles = scratch("winograd.out_tiles", (2, 2, F, n, th, tw), x.dtype, xp)
        xp.matmul(at, M.reshape(16, -1), out=tiles.reshape(4, -1))
        # out[m, f, 2 i + a, 2 j + b] = tiles[a, b, f, m, i, j]
        whole = tiles.transpose(3, 2, 4, 0, 5, 1).reshape(n, F, 2 * th, 2 * tw)
        out[part] = whole[:, :, :Ho, :Wo]
    return out


def conv_backward(dout, x, w, pad, need_dx):
    """(dx or None, dw) for ``out = conv_forward(x, w, pad)`` and dout (N, F, Ho, Wo). Each
    chunk's input transform is made again (in scratch) rather than kept from the forward pass:
    recomputing it costs less than the memory traffic of keeping four times the input."""
    xp = xp_of(dout, x, w)
    N, C, H, W = x.shape
    F = w.shape[0]
    Ho, Wo = dout.shape[2:]
    th, tw = _tiles(Ho, Wo)
    xpad = _padded(x, pad, th, tw)
    bt, gg, at = _matrices(xp, x.dtype)
    U_t = xp.ascontiguousarray(_kernel_transform(w).transpose(0, 2, 1)) if need_dx else None  # (16, C, F)
    # dout's tiles, odd sides padded by a zero row or column
    padded = zero_padded(dout, 0, "winograd.dout", spare_rows=2 * th - Ho, spare_cols=2 * tw - Wo)
    dU = xp.zeros((16, F, C), dtype=x.dtype)
    dx = xp.empty_like(x) if need_dx else None
    for part in _chunks(x, th, tw):
        V = _input_transform(xpad[part], th, tw)
        n = V.shape[2] // (th * tw)
        dtiles = scratch("winograd.dout_tiles", (2, 2, F, n, th, tw), x.dtype, xp)
        dtiles[...] = padded[part].reshape(n, F, th, 2, tw, 2).transpose(3, 5, 1, 0, 2, 4)
        dM = scratch("winograd.dmixed", (16, F, n * th * tw), x.dtype, xp)
        xp.matmul(at.T, dtiles.reshape(4, -1), out=dM.reshape(16, -1))
        # one product per position: NumPy's stacked product of a transposed V leaves BLAS
        for ab in range(16):
            dU[ab] += dM[ab] @ V[ab].T
        if need_dx:
            dV = scratch("winograd.dinput_transform", (16, C, n * th * tw), x.dtype, xp)
            xp.matmul(U_t, dM, out=dV)
            dpatches = scratch("winograd.dpatches", (16, C * n * th * tw), x.dtype, xp)
            xp.matmul(bt.T, dV.reshape(16, -1), out=dpatches)
            dx[part] = _scattered(dpatches, C, n, th, tw, pad, H, W)
    dw = (gg.T @ dU.reshape(16, F * C)).reshape(3, 3, F, C).transpose(2, 3, 0, 1)
    return dx, xp.ascontiguousarray(dw)


def _scattered(dpatches, C, n, th, tw, pad, H, W):
    """The gradients of the 4x4 patches (16, C n th tw) added back where they were read from:
    each patch's four 2x2 quadrants go to the 2x2 blocks they overlap. dx (n, C, H, W)."""
    xp = xp_of(dpatches)
    dpatches = dpatches.reshape(4, 4, C, n, th, tw)
    dxpad = scratch("winograd.dx_padded", (n, C, 2 * th + 2, 2 * tw + 2), dpatches.dtype, xp)
    dxpad[...] = 0
    for qa in (0, 1):
        for qb in (0, 1):
            quadrant = dpatches[2 * qa:2 * qa + 2, 2 * qb:2 * qb + 2]  # (2, 2, C, n, th, tw)
            block = quadrant.transpose(3, 2, 4, 0, 5, 1).reshape(n, C, 2 * th, 2 * tw)
            dxpad[:, :, 2 * qa:2 * qa + 2 * th, 2 * qb:2 * qb + 2 * tw] += block
    return dxpad[:, :, pad:pad + H, pad:pad + W]
