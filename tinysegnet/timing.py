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


def alternating(fns, xp=np, warmup=1, repeat=5):
    """Median seconds of each of ``fns``, timed in turn: ``warmup`` rounds, then ``repeat``
    rounds of one run of each, the device synchronised after each run.

    Why in turn: a shared machine's speed drifts over seconds (its neighbours' work comes and
    goes), and timing one function's repeats and then another's puts the drift between them.
    Alternating spreads it over both, so their ratio measures the code."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    synchronize(xp)
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, kept in zip(fns, times):
            start = time.perf_counter()
            fn()
            synchronize(xp)
            kept.append(time.perf_counter() - start)
    return [statistics.median(kept) for kept in times]
