"""Fused elementwise kernels for the GPU: one kernel launch where NumPy-style code takes many.

Why: on a GPU every array operation is a kernel launch (about 10 us each), and batch norm's
per-channel arithmetic, the pooling's comparisons and the optimiser's update are many small
operations. A function decorated with :func:`kernel` is plain array code, elementwise only
(arithmetic, comparisons, the array module's ufuncs such as ``maximum``, scalars,
broadcasting), written against the module it is given as its first argument: CuPy compiles
it into one kernel (``cupy.fuse``), and NumPy runs it as written, which makes the function
its own NumPy twin. The layers call these kernels on the GPU only; on the CPU they
keep their in-place passes cut among threads (``batch_split``), and the tests hold the two
paths to each other in float64. The strict CuPy stand-in counts a kernel as one launch and
refuses anything inside that CuPy could not fuse.
"""

import functools

import numpy as np

from ..backend import xp_of


def kernel(fn):
    """``fn(xp, *arrays)`` called as ``kernel(*arrays)``: one GPU kernel on CuPy (fused once per
    array module, compiled by CuPy per dtype and number of dimensions), ``fn(numpy, ...)`` as
    written on NumPy."""
    fused = {}

    @functools.wraps(fn)
    def call(*args):
        xp = xp_of(*args)
        if xp is np:
            return fn(np, *args)
        if xp not in fused:
            fused[xp] = xp.fuse(kernel_name=f"tinysegnet_{fn.__name__}")(
                lambda *arrays: fn(xp, *arrays))
        return fused[xp](*args)
    return call
