"""BLAS threads (and the threads a batch is cut among) that match the cores other processes
leave free.

Why: NumPy's BLAS (OpenBLAS) runs one thread per core and splits every matrix product evenly
among them. When another process keeps a core busy, each product waits for the thread that
shares a core with it, and a step slows by far more than the core it lost. Measured with
``python -m tinysegnet.bench epoch --vs-torch --load 1`` (2-core machine, one core kept busy):
training 173 ms per image with 2 BLAS threads against 118 with 1; idle, 104 with 2 against
127 with 1. So ``train`` (``--threads auto``, its default) lets the thread count follow the
machine, read again before every epoch.

How busy the others are is read from Linux's ``/proc/stat`` (all CPU time spent, steal
included, since a hypervisor's share is lost to us too) minus this process's own CPU time,
over the last interval; elsewhere "auto" changes nothing. threadpoolctl sets the count; the
elementwise layers' cut of the batch (``functional.batch_split``) follows the same count.
"""

import contextlib
import math
import os
import time

from threadpoolctl import threadpool_limits

from .functional import batch_split

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_SAMPLE = 0.3  # seconds of watching before the first decision


def _cpu_seconds():
    """(seconds of CPU time the whole machine has spent, this process's), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait is taken
    values = [int(v) for v in fields[1:9]]
    taken = sum(values) - values[3] - values[4]
    own = os.times()
    return taken / _TICK, own.user + own.system


class FreeCores:
    """The cores other processes left free since the last reading (at most this process's
    affinity, at least 0)."""

    def __init__(self):
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self._last = (time.monotonic(), _cpu_seconds())

    def read(self):
        now, cpu = time.monotonic(), _cpu_seconds()
        (then, before), self._last = self._last, (now, cpu)
        if cpu is None or before is None or now <= then:
            return None
        others = ((cpu[0] - before[0]) - (cpu[1] - before[1])) / (now - then)
        return min(self.cores, max(0.0, self.cores - others))


def threads_for(free_cores, cores):
    """BLAS threads for ``free_cores`` (a fraction) of ``cores``: the nearest whole number, 1 to cores."""
    return max(1, min(cores, math.floor(free_cores + 0.5)))


@contextlib.contextmanager
def blas_threads(setting):
    """Yields ``adjust()`` for a loop to call before each stretch of work (an epoch), which
    sets NumPy's BLAS threads by ``setting`` and returns the count (None: unchanged):

    - None: the BLAS's own setting, untouched (every core);
    - an int: that many threads, set once;
    - "auto": the cores other processes left free since the previous call (the first call
      watches for a moment first).

    The elementwise layers cut the batch among as many threads. The BLAS's own setting and
    the cut's come back at the end. The count changes no value: the batch is cut per sample,
    and the products whose long sums OpenBLAS rounds by thread count (the convolutions' dw)
    are split where it cannot (``functional/long_sums.py``). tests/test_threads.py holds a
    SegNet-Basic step to it, so "auto" resumes bit for bit like a fixed count.
    """
    if setting is None or (setting == "auto" and _cpu_seconds() is None):
        yield lambda: None
        return
    watch, limiters, cuts = FreeCores(), [], contextlib.ExitStack()

    def limit(n):
        limiters.append(threadpool_limits(limits=n, user_api="blas"))
        cuts.enter_context(batch_split.using_threads(n))
        return n

    def adjust():
        if setting != "auto":
            return int(setting) if limiters else limit(int(setting))
        if not limiters:
            time.sleep(_SAMPLE)
        free = watch.read()
        n = limit(threads_for(free, watch.cores) if free is not None else watch.cores)
        watch.read()  # the next interval starts now
        return n

    with cuts:
        try:
            yield adjust
        finally:
            if limiters:
                limiters[0].restore_original_limits()
