"""Timing code that may run on a GPU: the clock stops only once the device has finished.

CuPy returns as soon as a kernel is queued, so without a synchronize a timer measures the
launches, not the work.
"""

import statistics
import time

import numpy as np


def synchronize(xp):
    """Wait until the device of array module ``xp`` has finished its queued work (no-op on NumPy)."""
    if xp is not np:
        xp.cuda.Device().synchronize()


def timeit(fn, xp=np, warmup=1, repeat=5):
    """Median seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs, the device
    synchronised after each."""
    for _ in range(warmup):
        fn()
    synchronize(xp)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize(xp)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
