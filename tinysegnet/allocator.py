"""Large arrays reused instead of fresh from the operating system, for the commands' processes.

Why: glibc's malloc serves every block over its mmap threshold (at most 32 MiB) by a fresh
``mmap`` and hands it back by ``munmap`` when NumPy frees it, so each of a training step's
feature maps (33 MB at the CamVid protocol's batch of 12) comes back as new pages that the
kernel zero-fills on first touch: measured on the 2-core CPU, one 68 MB product took 74 ms
into a new array against 28 ms into an existing one. :func:`reuse_freed_memory` raises the
threshold so that such blocks come from the heap, and the trim threshold so that freed ones
stay there for the next step; the process's peak memory is what it was, held until exit.

The commands turn it on for their whole run (``cli.run_main``); a library user may do the
same around a loop. Elsewhere than glibc (macOS, musl) it does nothing.
"""

import contextlib
import ctypes
import ctypes.util

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_DEFAULT = 128 * 1024  # glibc's initial value of both thresholds
_LARGE = 1 << 30  # blocks up to 1 GiB from the heap; freed memory up to 1 GiB kept


def _glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None
    except OSError:
        return None


@contextlib.contextmanager
def reuse_freed_memory():
    """While the block runs, glibc keeps freed large blocks for reuse instead of returning
    them to the system; afterwards both thresholds go back to glibc's initial 128 KiB (glibc
    then no longer adapts the mmap threshold as it would have: a fixed threshold is all
    mallopt can restore)."""
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_THRESHOLD, _LARGE)
    libc.mallopt(_M_TRIM_THRESHOLD, _LARGE)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT)
        libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT)
