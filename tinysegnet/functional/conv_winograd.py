"""Convolution by Winograd's minimal filtering F(2x2, 3x3) and F(4x4, 3x3) (Lavin and Gray,
"Fast Algorithms for Convolutional Neural Networks", 2016): the fast methods for SegNet's
VGG16 3x3 layers. Written below for F(2x2, 3x3); F(4x4, 3x3) is the same with 4x4 tiles
from 6x6 patches (their corners 4 apart), 36 positions and the matrices ``_BT4``, ``_G4``,
``_AT4``: 36 multiply-adds per tile, filter and channel where the direct method takes 144,
4 times fewer, at the price of matrices with entries up to 8 and down to 1/24 (float32 results
a few times less exact than F(2x2)'s; float64 to 1e-12 all the same).

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

and dx is dout correlated with the kernel flipped in space, its channel axes swapped (as in
``conv_rowshift.py``): a forward pass of the same method. The adjoint transforms
(dV = U^T dM, then the patches' gradients added back where they overlap) cost more: 62
against 48 ms for 256 -> 256 at 23x30 and 101 against 72 for 64 -> 64 at 90x120, batch 12,
F(4x4), most of it the overlapping adds.

Images go a chunk at a time (16 MB of V on the CPU), so that a chunk's transforms are still
near the cache when the products read them; the backward pass makes each chunk's V again
rather than keep four times the input from the forward pass. The values 1/2 and +-1 of the
matrices keep float32 results as accurate as the direct method's (tested against the loops;
float64 to 1e-12). Maps whose output's side is not a multiple of the tile's get extra rows or columns of
zeros, computed and dropped.
"""

import functools

import numpy as np

from ..backend import xp_of
from . import long_sums
from .scratch import image_chunks, scratch, zero_padded

_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)

# F(4, 3): y = A^T [(G g) * (B^T d)] for a patch d of 6 and a filter g of 3
_BT4 = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=float)
_G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])
_AT4 = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                dtype=float)
_FILTERS = {2: (_BT, _G, _AT), 4: (_BT4, _G4, _AT4)}  # by the output tile's side m


@functools.lru_cache(maxsize=8)
def _kronecker(dtype_name, m):
    """(B^T (x) B^T (a^2, a^2), G (x) G (a^2, 9), A^T (x) A^T (m^2, a^2)) in ``dtype_name``
    (NumPy), a = m + 2: (P (x) P) @ vec(d) = vec(P d P^T) for a matrix d stored row by row."""
    return tuple(np.kron(f, f).astype(dtype_name) for f in _FILTERS[m])


def _matrices(xp, dtype, m):
    return tuple(xp.asarray(f) for f in _kronecker(np.dtype(dtype).name, m))


def _tiles(Ho, Wo, m):
    """(th, tw): m x m tiles covering an Ho x Wo output."""
    return -(-Ho // m), -(-Wo // m)


# Images are taken in chunks whose input transform holds at most this many values: 16 MB of
# float32 on the CPU, so that a chunk's transforms stay near the cache between the three
# products that read them; 1 GiB on a GPU, where each chunk costs kernel launches.
TRANSFORM_LIMIT = {"cpu": 2 ** 22, "gpu": 2 ** 28}


def _input_transform(xpad, th, tw, m):
    """V (a^2, C, n th tw) of the images of ``xpad`` (n, C, m th + 2, m tw + 2): the transform
    of every a x a patch (a = m + 2), in a scratch array."""
    xp = xp_of(xpad)
    n, C = xpad.shape[:2]
    a = m + 2
    sn, sc, sh, sw = xpad.strides
    # patches[u, v, c, k, i, j] = xpad[k, c, m i + u, m j + v]: a view, copied out once
    view = xp.lib.stride_tricks.as_strided(xpad, (a, a, C, n, th, tw), (sh, sw, sc, sn, m * sh, m * sw))
    patches = scratch(f"winograd{m}.patches", (a, a, C, n, th, tw), xpad.dtype, xp)
    patches[...] = view
    bt, _, _ = _matrices(xp, xpad.dtype, m)
    V = scratch(f"winograd{m}.input_transform", (a * a, C, n * th * tw), xpad.dtype, xp)
    xp.matmul(bt, patches.reshape(a * a, -1), out=V.reshape(a * a, -1))
    return V


def _kernel_transform(w, m):
    """U (a^2, F, C): G g G^T for every 3x3 filter g = w[f, c]."""
    xp = xp_of(w)
    F, C = w.shape[:2]
    _, gg, _ = _matrices(xp, w.dtype, m)
    return (gg @ w.reshape(F * C, 9).T).reshape(-1, F, C)


def _padded(x, pad, th, tw, m):
    """x zero-padded by ``pad``, and at the bottom and right to m th + 2 by m tw + 2 (scratch)."""
    H, W = x.shape[2:]
    return zero_padded(x, pad, f"winograd{m}.padded", spare_rows=m * th + 2 - (H + 2 * pad),
                       spare_cols=m * tw + 2 - (W + 2 * pad))


def _chunks(x, th, tw, m):
    return image_chunks(x, (m + 2) ** 2 * x.shape[1] * th * tw, TRANSFORM_LIMIT)


def conv_forward(x, w, pad, m=2):
    """out (N, F, Ho, Wo) of x (N, C, H, W) and w (F, C, 3, 3), by F(m x m, 3 x 3)."""
    xp = xp_of(x, w)
    N, C, H, W = x.shape
    F = w.shape[0]
    Ho, Wo = H + 2 * pad - 2, W + 2 * pad - 2
    th, tw = _tiles(Ho, Wo, m)
    xpad = _padded(x, pad, th, tw, m)
    U = _kernel_transform(w, m)
    _, _, at = _matrices(xp, x.dtype, m)
    whole = (m * th, m * tw) == (Ho, Wo)
    out = xp.empty((N, F, m * th, m * tw), dtype=x.dtype)  # whole tiles, cropped at the end
    for part in _chunks(x, th, tw, m):
        V = _input_transform(xpad[part], th, tw, m)
        n = V.shape[2] // (th * tw)
        M = scratch(f"winograd{m}.mixed", (V.shape[0], F, n * th * tw), x.dtype, xp)
        xp.matmul(U, V, out=M)
        tiles = scratch(f"winograd{m}.out_tiles", (m, m, F, n, th, tw), x.dtype, xp)
        xp.matmul(at, M.reshape(V.shape[0], -1), out=tiles.reshape(m * m, -1))
        # out[k, f, m i + a, m j + b] = tiles[a, b, f, k, i, j]
        out[part].reshape(n, F, th, m, tw, m)[...] = tiles.transpose(3, 2, 4, 0, 5, 1)
    return out if whole else xp.ascontiguousarray(out[:, :, :Ho, :Wo])


def conv_backward(dout, x, w, pad, need_dx, m=2):
    """(dx or None, dw) for ``out = conv_forward(x, w, pad, m)`` and dout (N, F, Ho, Wo). Each
    chunk's input transform is made again (in scratch) rather than kept from the forward pass:
    recomputing it costs less than the memory traffic of keeping four times the input."""
    xp = xp_of(dout, x, w)
    N, C, H, W = x.shape
    F = w.shape[0]
    Ho, Wo = dout.shape[2:]
    th, tw = _tiles(Ho, Wo, m)
    xpad = _padded(x, pad, th, tw, m)
    _, gg, at = _matrices(xp, x.dtype, m)
    # dout's tiles, sides padded with zeros to whole tiles
    padded = zero_padded(dout, 0, f"winograd{m}.dout", spare_rows=m * th - Ho, spare_cols=m * tw - Wo)
    positions = (m + 2) ** 2
    dU = xp.empty((positions, F, C), dtype=x.dtype)
    for i, part in enumerate(_chunks(x, th, tw, m)):
        V = _input_transform(xpad[part], th, tw, m)
        n = V.shape[2] // (th * tw)
        dtiles = scratch(f"winograd{m}.dout_tiles", (m, m, F, n, th, tw), x.dtype, xp)
        dtiles[...] = padded[part].reshape(n, F, th, m, tw, m).transpose(3, 5, 1, 0, 2, 4)
        dM = scratch(f"winograd{m}.dmixed", (positions, F, n * th * tw), x.dtype, xp)
        xp.matmul(at.T, dtiles.reshape(m * m, -1), out=dM.reshape(positions, -1))
        # one product per position (NumPy's stacked product of a transposed V leaves BLAS),
        # a sum over every tile of the chunk
        for ab in range(positions):
            if i == 0:
                long_sums.matmul(dM[ab], V[ab].T, out=dU[ab])
            else:
                dU[ab] += long_sums.matmul(dM[ab], V[ab].T)
    dw = (gg.T @ dU.reshape(positions, F * C)).reshape(3, 3, F, C).transpose(2, 3, 0, 1)
    if not need_dx:
        return None, xp.ascontiguousarray(dw)
    # dw is done with the scratch arrays, so the forward pass below may reuse them
    w_flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    return conv_forward(dout, w_flipped, 2 - pad, m), xp.ascontiguousarray(dw)
