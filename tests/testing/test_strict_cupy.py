"""The strict CuPy stand-in refuses what CuPy refuses and counts what a GPU would launch."""

import numpy as np
import pytest

from tinysegnet import backend
from tinysegnet.testing import cupy_names, strict_cupy as xp


def test_names_match_the_installed_cupy():
    """Regenerates the checked-in list from CuPy where it is installed (a GPU machine)."""
    cupy = pytest.importorskip("cupy")
    if cupy.__version__ != cupy_names.load()["version"]:
        pytest.skip(f"CuPy {cupy.__version__} installed, the list is of {cupy_names.load()['version']}")
    installed, listed = cupy_names.names_of(cupy), cupy_names.load()
    for part in listed:
        if part != "version":
            extra, missing = set(installed[part]) - set(listed[part]), set(listed[part]) - set(installed[part])
            assert not extra and not missing, f"{part}: only installed {sorted(extra)}, only listed {sorted(missing)}"


def test_only_cupy_names_exist():
    assert xp.float32 is np.float32 and xp.inf == np.inf and xp.newaxis is None
    for numpy_only in ("errstate", "insert", "histogram_bin_edges"):
        assert hasattr(np, numpy_only)
        with pytest.raises(AttributeError, match=numpy_only):
            getattr(xp, numpy_only)
    with pytest.raises(NotImplementedError, match="ElementwiseKernel"):
        xp.ElementwiseKernel


def test_host_arrays_are_refused_everywhere_but_asarray():
    a, host = xp.ones((2, 3), np.float32), np.ones((2, 3), np.float32)
    for use in (lambda: a + host, lambda: host + a, lambda: xp.maximum(a, host),
                lambda: a.__setitem__(0, host[0]), lambda: a[np.array([0, 1])],
                lambda: np.asarray(a), lambda: np.exp(a), lambda: np.concatenate([a, a])):
        with pytest.raises(TypeError):
            use()
    assert (xp.asarray(host) == a).all()


def test_counts_launches_not_views():
    a = xp.asarray(np.arange(12.0).reshape(3, 4))
    with xp.counting() as c:
        a.reshape(4, 3), a.T, a[1:], a[:, ::2], xp.lib.stride_tricks.as_strided(a, (2, 2), (8, 8))
        a.astype(a.dtype, copy=False)
        xp.empty((3, 3)), xp.empty_like(a)  # memory from the pool, no kernel
    assert (c.ops, c.syncs) == (0, 0)
    with xp.counting() as c:
        b = a * 2 + 1            # 2
        b += a                   # 1
        b[0] = 0                 # 1
        xp.matmul(a, a.T, out=xp.empty((3, 3)))  # 1: the product
        total = b.sum()          # 1
        mask = (a > 1) & (a < 9) | (a == 0) ^ (a > 10)  # 7
        mask &= a > 2            # 2
    assert (c.ops, c.syncs) == (15, 0)
    h = a.get()
    np.testing.assert_array_equal(mask.get(), ((h > 1) & (h < 9) | (h == 0) ^ (h > 10)) & (h > 2))
    with xp.counting() as c:
        float(total), int(a[0, 0]), bool(a[0, 1] > 0), a.get(), xp.cuda.Device().synchronize()
    assert c.syncs == 5


def test_out_none_makes_a_new_array_as_cupy_does():
    a = xp.asarray(np.arange(6.0).reshape(2, 3))
    with xp.counting() as c:
        product = xp.matmul(a, a.T, out=None)
    assert c.ops == 1 and isinstance(product, xp.ndarray)
    np.testing.assert_array_equal(product.get(), a.get() @ a.get().T)


def test_reductions_give_device_scalars():
    s = xp.asarray(np.ones(4, np.float32)).sum()
    assert isinstance(s, xp.ndarray) and s.shape == () and s.dtype == np.float32


def test_backend_routes_the_gpu_device_to_the_stand_in(stand_in):
    assert backend.resolve_device("gpu") == "gpu" and backend.array_module("gpu") is stand_in
    a = backend.to_device(np.zeros(3), "gpu")
    assert backend.xp_of(a) is stand_in and backend.device_of(a) == "gpu"
    with pytest.raises(TypeError, match="mixed"):
        backend.xp_of(a, np.zeros(3))
    np.testing.assert_array_equal(backend.to_numpy(a), np.zeros(3))


def _captured(body):
    """(graph, what body returned) of ``body`` recorded on a stream under a private pool."""
    stream, pool = xp.cuda.Stream(non_blocking=True), xp.cuda.MemoryPool()
    with xp.cuda.using_allocator(pool.malloc), stream:
        stream.begin_capture()
        try:
            made = body()
        finally:
            graph = stream.end_capture()
    return graph, made


def test_a_graph_replays_what_it_recorded_on_the_same_memory():
    a, total = xp.asarray(np.arange(4.0)), xp.zeros(())
    graph, b = _captured(lambda: (total.__iadd__((a * 2).sum()), a + 1)[1])
    assert float(total) == 0  # recorded, not done
    with xp.counting() as c:
        graph.launch()
    assert (c.ops, c.syncs) == (1, 0) and float(total) == 12 and b.get().tolist() == [1, 2, 3, 4]
    a[...] = 10.0  # new contents of the same memory: the next launch reads them
    graph.launch()
    assert float(total) == 12 + 80 and b.get().tolist() == [11] * 4


@pytest.mark.parametrize("body, what", [
    (lambda a: float(a.sum()), "host synchronisation"),
    (lambda a: xp.asarray(np.ones(2)), "host-to-device copy"),
    (lambda a: xp.random.default_rng(0).random(2), "random draw"),
    (lambda a: xp.cuda.Device().synchronize(), "device synchronisation"),
])
def test_what_a_capture_cannot_record_is_refused(body, what):
    a = xp.ones(2)
    with pytest.raises(RuntimeError, match=what):
        _captured(lambda: body(a))


def test_a_capture_takes_memory_from_a_private_pool_on_its_own_stream():
    a, stream = xp.ones(2), xp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        with pytest.raises(RuntimeError, match="default pool"):
            a + 1
        with xp.cuda.using_allocator(xp.cuda.MemoryPool().malloc):
            a + 1
        stream.end_capture()
    stream.begin_capture()
    try:
        with pytest.raises(RuntimeError, match="another stream"):
            a += 1
    finally:
        stream.end_capture()
    assert a.get().tolist() == [1, 1]
