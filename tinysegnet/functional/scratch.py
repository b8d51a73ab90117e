"""Reusable scratch arrays for the fast convolution's temporaries.

Why: one 7x7 convolution of a batch of 4 at 90x120 works in about 60 MB of temporary
arrays (the shifted copies of the input and the per-kernel-row products). Arrays that
large come fresh from the operating system on every call, and the system zero-fills each
page on first touch; measured on a 2-core machine that was about a fifth of the forward
pass. Keeping one buffer per purpose, grown when a call needs more, removes that cost.

Purposes are named "<method>.<what it holds>" (``"im2col.cols"``): one name never stands
for two shapes or two meanings.

Rules: what a scratch array holds is undefined at the start of a call (callers write
before they read), and nothing that outlives the call (outputs, caches) may be one.
``release()`` hands the memory back; inside ``unshared()`` every call gets memory of its own
(a CUDA graph being recorded must: a shared buffer grown or released later would be freed
under the graph, and handed to arrays the graph then writes).
"""

import contextlib
import math

from ..backend import is_cupy_array, xp_of
from .batch_split import run

_buffers = {}  # (purpose, array module name, dtype) -> flat array
_shared = True  # False inside unshared()


def image_chunks(x, per_image, limits):
    """Slices of x's first axis (the batch) holding at most ``limits[device]`` // per_image
    images each (one image at least): how much of a batch a method takes at once, "cpu"
    and "gpu" limits in values of its largest temporary. On a GPU also at most what a
    quarter of the device's free memory holds (:func:`free_values`)."""
    N = x.shape[0]
    step = max(1, _limit(x, limits) // per_image)
    return [slice(start, min(start + step, N)) for start in range(0, N, step)]


def row_chunks(x, rows, per_row, limits):
    """(images, rows) slice pairs covering a method's output, batch x (N, ...) and ``rows``
    output rows an image, each pair's largest temporary holding at most ``limits[device]``
    values (``per_row`` of them an output row): whole images while one fits, as
    :func:`image_chunks` takes them; else an image at a time, in as few bands of rows as fit
    the limit (a row at least). Why the bands: one 360x480 image's im2col
    columns for a 3-channel 7x7 layer are 97 MiB, which scratch then keeps for the rest of the
    forward pass; in bands of 16 MiB the columns stay near the cache too."""
    N, limit = x.shape[0], _limit(x, limits)
    if per_row * rows <= limit:
        return [(part, slice(0, rows)) for part in image_chunks(x, per_row * rows, limits)]
    bands = -(-per_row * rows // max(limit, per_row))
    band = -(-rows // bands)
    return [(slice(n, n + 1), slice(r, min(r + band, rows))) for n in range(N) for r in range(0, rows, band)]


def _limit(x, limits):
    """``limits``' value for x's device, on a GPU at most what :func:`free_values` allows."""
    return min(limits["gpu"], free_values(x)) if is_cupy_array(x) else limits["cpu"]


def free_values(x):
    """Values of x's dtype that a quarter of its GPU's free memory holds, the blocks CuPy's
    pool keeps for reuse counted as free: a chunk's largest temporary and the two or three
    others about as large fit beside what the step already holds, on a GPU of any size."""
    xp = xp_of(x)
    free, _ = xp.cuda.Device().mem_info
    return (free + xp.get_default_memory_pool().free_bytes()) // (4 * x.dtype.itemsize)


def scratch(purpose, shape, dtype, xp):
    """A C-contiguous array of ``shape`` and ``dtype`` backed by the buffer for ``purpose``."""
    size = math.prod(shape)
    if not _shared:
        return xp.empty(shape, dtype=dtype)
    key = (purpose, xp.__name__, xp.dtype(dtype).str)
    buffer = _buffers.get(key)
    if buffer is None or buffer.size < size:
        _buffers.pop(key, None)  # free the smaller one before allocating the larger
        buffer = _buffers[key] = xp.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


def zero_padded(x, pad, purpose, spare_rows=0, spare_cols=0):
    """x (N, C, H, W) with ``pad`` zeros on each side, plus ``spare_rows`` zero rows at the
    bottom and ``spare_cols`` zero columns at the right, in the scratch buffer for
    ``purpose``: (N, C, H + 2 pad + spare_rows, W + 2 pad + spare_cols).

    Only the border is zeroed, since x overwrites the interior straight after; the images are
    cut among threads (``batch_split``).
    """
    N, C, H, W = x.shape
    xpad = scratch(purpose, (N, C, H + 2 * pad + spare_rows, W + 2 * pad + spare_cols), x.dtype,
                   xp_of(x))

    def part(s):
        xpad[s, :, :pad] = 0
        xpad[s, :, pad + H:] = 0
        xpad[s, :, pad:pad + H, :pad] = 0
        xpad[s, :, pad:pad + H, pad + W:] = 0
        xpad[s, :, pad:pad + H, pad:pad + W] = x[s]
    run(part, xpad)
    return xpad


@contextlib.contextmanager
def unshared():
    """While the block runs, scratch arrays are fresh ones, and the shared buffers are left
    as they are."""
    global _shared
    saved, _shared = _shared, False
    try:
        yield
    finally:
        _shared = saved


def release(xp=None):
    """Drop the scratch buffers of array module ``xp`` (every module's when None): the next
    convolution allocates afresh."""
    for key in [key for key in _buffers if xp is None or key[1] == xp.__name__]:
        del _buffers[key]
