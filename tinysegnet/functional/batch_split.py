"""Per-sample work on every core: a batch cut into one run of samples per thread (NumPy only).

Why: NumPy's elementwise operations run on one core, while its matrix products use them all,
so on the CPU ReLU, pooling, unpooling and batch norm's passes took a third of a SegNet-Basic
step. Their values at one sample depend on that sample alone, and NumPy lets go of the GIL
inside an operation, so cutting the batch among threads changes no value and divides the
time. Measured on a 2-core machine (12 x 64 x 90 x 120 float32): max pooling 19.0 ms in one
thread, 10.7 ms cut in two.

A layer writes its outputs through ``out=`` into arrays it made, a slice of samples at a
time::

    out = xp.empty_like(x)
    run(lambda s: xp.maximum(x[s], 0, out=out[s]), x)

The FFT methods cut their frequencies the same way: each frequency's product of channels is
a small one that the BLAS runs on one core, independent of every other frequency's. On CuPy
(the GPU runs every sample of a kernel at once) and for small arrays the part runs once,
over everything. A part must not call :func:`run` itself.
"""

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from ..backend import xp_of

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
# Below this many values a part is done before a thread would have started on it.
MIN_VALUES = 1 << 17

_threads = CORES
_pool = None


def _forget_pool():
    """A forked child has the pool object but none of its threads: it makes its own."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


@contextlib.contextmanager
def using_threads(n):
    """Cut batches among ``n`` threads in the body (1: not at all); the count before comes back."""
    global _threads
    if int(n) < 1:
        raise ValueError(f"using_threads: need at least one thread, got {n}")
    previous, _threads = _threads, int(n)
    try:
        yield
    finally:
        _threads = previous


def threads():
    """How many threads a batch is cut among now."""
    return _threads


def parts(x):
    """The slices of x's first axis that :func:`run` calls its part with: one per thread, each
    of at least ``MIN_VALUES`` values; a single slice of all on CuPy and for small arrays
    (``...`` for a 0-d one)."""
    if x.ndim == 0:
        return [...]
    n = x.shape[0]
    count = min(n, _threads, x.size // MIN_VALUES) if isinstance(x, np.ndarray) else 1
    count = max(count, 1)
    bounds = [n * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def run(part, x):
    """Calls ``part(s)`` for each slice ``s`` of :func:`parts` (x), the first in this thread and
    the rest in the pool at the same time, all under this thread's ``np.errstate``; returns
    when all are done, raising an error of theirs (this thread's first)."""
    global _pool
    first, *rest = parts(x)
    if not rest:
        part(first)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max(CORES, _threads) - 1, thread_name_prefix="tinysegnet")
    settings = np.geterr()  # NumPy's floating-point error handling is per thread: the caller's

    def as_the_caller(s):
        with np.errstate(**settings):
            part(s)
    pending = [_pool.submit(as_the_caller, s) for s in rest]
    try:
        part(first)
    finally:
        wait(pending)  # no part may still be writing when the caller goes on
    for future in pending:
        future.result()


def contiguous(a):
    """A C-contiguous copy of the view ``a`` (a transposed one, say), its first axis cut among
    the threads: NumPy's own copy runs on one core (``ascontiguousarray`` on CuPy); ``a``
    itself when it is contiguous already."""
    if not isinstance(a, np.ndarray):
        return xp_of(a).ascontiguousarray(a)
    if a.flags.c_contiguous:
        return a
    out = np.empty(a.shape, dtype=a.dtype)
    run(lambda s: np.copyto(out[s], a[s]), out)
    return out
