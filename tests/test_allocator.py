import ctypes

import numpy as np
import pytest

from tinysegnet import allocator

libc = allocator._glibc()
pytestmark = pytest.mark.skipif(libc is None or not hasattr(libc, "mallinfo2"), reason="glibc 2.33+ only")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mmapped_blocks():
    libc.mallinfo2.restype = _Mallinfo2
    return libc.mallinfo2().hblks


def test_large_arrays_come_from_the_heap_inside_and_from_mmap_after():
    with allocator.reuse_freed_memory():
        before = _mmapped_blocks()
        a = np.ones(2 ** 24, np.float32)  # 64 MiB
        assert _mmapped_blocks() == before  # from the heap, kept there when freed
        del a
    before = _mmapped_blocks()
    a = np.ones(2 ** 26, np.float32)  # 256 MiB, more than the heap kept from the block above
    assert _mmapped_blocks() == before + 1  # glibc's own rule again: mmap for a block this large
    del a
