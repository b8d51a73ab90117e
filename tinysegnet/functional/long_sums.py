"""Matrix products over long sums (the convolutions' dw: a sum over every position of the
batch) that round the same on any number of BLAS threads.

Why: OpenBLAS adds a product's K terms a block at a time, and when what is left of K is
between one and two blocks long it halves it, rounded up to a multiple of its kernel's
unroll. Its one-thread and its threaded drivers round that half to different unrolls, so
the blocks, and with them the last bits of the sum, follow the thread count: on this
project's 2-core machine (64 x K) @ (K x 64) on 1 and 2 threads differ for K = 690, 1380
or 3000 in float32, for K = 200 in complex64. ``train --threads auto`` changes the count
between epochs, so without this a resumed run would not repeat itself.

:func:`matmul` sums the first multiple of ``STRETCH`` terms in one product, whose halves
then stay whole multiples of every unroll, and the few left in a second product shorter
than any block. Swept over K = 200 ... 6000 for float32, float64 and complex64, every
product agreed on 1 and 2 threads (and 1,600 of the unsplit ones did not). A sum that fits
in one block (``ONE_BLOCK``) is left whole: the split's second product and its add cost the
FFT tiles' dw (K = 144 tiles at 90x120, batch 12) 23 ms a layer. A GPU's products do not
depend on a thread count: there it is one ``matmul``.
"""

import numpy as np

from ..backend import xp_of

STRETCH = 128
# The longest sum OpenBLAS adds in one block, by dtype, on this project's machines (AMD EPYC,
# OpenBLAS 0.3.31): the first K whose product differed on 1 and 2 threads, less one (complex64
# 193, float32 449), and none differed up to it over seven shapes from 3 x 5 to 512 x 512.
ONE_BLOCK = {"float32": 448, "float64": 384, "complex64": 192, "complex128": 128}


def matmul(a, b, out=None):
    """``a @ b`` for a (..., M, K) and b (..., K, P), stacked as ``xp.matmul`` stacks them,
    into ``out`` when given: ``a[..., :h] @ b[..., :h, :] + a[..., h:] @ b[..., h:, :]`` with
    h the largest multiple of :data:`STRETCH` up to K (one product for K within
    :data:`ONE_BLOCK`), so the result is the same on any number of BLAS threads."""
    xp = xp_of(a, b)
    K = a.shape[-1]
    head = K - K % STRETCH
    if xp is not np or K <= ONE_BLOCK.get(np.result_type(a, b).name, STRETCH) or head == K:
        return xp.matmul(a, b, out=out)
    out = xp.matmul(a[..., :head], b[..., :head, :], out=out)
    out += xp.matmul(a[..., head:], b[..., head:, :])
    return out
