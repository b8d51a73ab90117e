"""The batch cut among threads: every part runs once, errors come back, and no layer's value
changes with the number of threads (the cut is per sample, or per filter or frequency where
a convolution cuts, never inside a sum: so bit for bit)."""

import os
import threading

import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet.functional import batch_split
from tinysegnet.functional.activation import relu_inplace


@pytest.fixture
def cut_small(monkeypatch):
    """Cut even the tests' small arrays, into as many parts as the test asks."""
    monkeypatch.setattr(batch_split, "MIN_VALUES", 1)


def test_parts_cover_the_batch_once(cut_small):
    x = np.zeros((7, 3))
    with batch_split.using_threads(3):
        assert batch_split.parts(x) == [slice(0, 2), slice(2, 4), slice(4, 7)]
    with batch_split.using_threads(20):
        assert len(batch_split.parts(x)) == 7  # never more parts than samples
    with batch_split.using_threads(1):
        assert batch_split.parts(x) == [slice(0, 7)]
    assert batch_split.parts(np.zeros(())) == [...]


def test_small_arrays_and_the_device_are_not_cut(stand_in):
    with batch_split.using_threads(4):
        assert batch_split.parts(np.zeros((8, batch_split.MIN_VALUES // 8))) == [slice(0, 8)]
        assert len(batch_split.parts(np.zeros((8, batch_split.MIN_VALUES)))) == 4
        assert batch_split.parts(stand_in.zeros((8, batch_split.MIN_VALUES))) == [slice(0, 8)]


def test_run_calls_every_part_on_threads_and_waits_for_them(cut_small):
    x = np.arange(12.0).reshape(6, 2)
    seen, names = [], set()

    def part(s):
        names.add(threading.current_thread().name)
        seen.append((s.start, s.stop))
        x[s] *= 2
    with batch_split.using_threads(3):
        batch_split.run(part, x)
    assert sorted(seen) == [(0, 2), (2, 4), (4, 6)]
    assert len(names) > 1  # the first part here, the others in the pool
    np.testing.assert_array_equal(x, np.arange(12.0).reshape(6, 2) * 2)


def test_an_error_in_any_part_is_raised_after_all_parts_end(cut_small):
    x, done = np.zeros((4, 1)), []

    def part(s):
        if s.start == 2:
            raise KeyError("the pool's part failed")
        done.append(s.start)
    with batch_split.using_threads(2), pytest.raises(KeyError, match="pool's part"):
        batch_split.run(part, x)
    assert done == [0]


def test_parts_in_the_pool_follow_the_callers_floating_point_settings(cut_small):
    """A diverging run's overflow is reported once by the engine (np.errstate "ignore"), and
    "raise" must raise from whichever thread overflowed."""
    import warnings
    x = np.full((4, 1), 1e30, dtype=np.float32)
    with batch_split.using_threads(4):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(over="ignore"):
                batch_split.run(lambda s: x[s] * x[s], x)
        with np.errstate(over="raise"), pytest.raises(FloatingPointError):
            batch_split.run(lambda s: x[s] * x[s] if s.start else None, x)  # only the pool overflows


def test_the_thread_count_comes_back_and_must_be_positive():
    before = batch_split.threads()
    with pytest.raises(RuntimeError), batch_split.using_threads(1):
        assert batch_split.threads() == 1
        raise RuntimeError
    assert batch_split.threads() == before
    with pytest.raises(ValueError, match="at least one thread"), batch_split.using_threads(0):
        pass


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_makes_its_own_pool(cut_small):
    x = np.ones((4, 2))
    with batch_split.using_threads(2):
        batch_split.run(lambda s: None, x)  # the parent's pool exists now
        pid = os.fork()
        if pid == 0:  # the child: the parent's threads are not here, a new pool must do the work
            try:
                batch_split.run(lambda s: x[s].__imul__(3), x)
                os._exit(0 if (x == 3).all() else 1)
            finally:
                os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_contiguous_copies_a_view_cut_among_threads(cut_small, stand_in):
    a = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5).transpose(2, 3, 0, 1)
    with batch_split.using_threads(3):
        b = batch_split.contiguous(a)
    assert b.flags.c_contiguous
    np.testing.assert_array_equal(b, a)
    assert batch_split.contiguous(b) is b
    d = batch_split.contiguous(stand_in.asarray(a.copy()).transpose(1, 0, 2, 3))
    np.testing.assert_array_equal(d.get(), a.transpose(1, 0, 2, 3))


def _layers(rng, dtype):
    """Every cut layer's outputs, forward and backward, at a ceil-mode shape (odd sides)."""
    x = rng.standard_normal((5, 3, 7, 9)).astype(dtype)
    d = rng.standard_normal(x.shape).astype(dtype)
    g, b = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
    results = {}
    out, cache = F.relu_forward(x)
    results.update(relu=out, relu_dx=F.relu_backward(d, cache), relu_inplace=relu_inplace(x.copy()))
    pooled, idx = F.maxpool2x2_forward(x)
    results.update(pool=pooled, idx=idx, pool_dx=F.maxpool2x2_backward(pooled * 2, idx, x.shape),
                   unpool=F.unpool2x2_forward(pooled, idx, x.shape),
                   unpool_dx=F.unpool2x2_backward(d, idx))
    for training in (True, False):
        mean, var = np.zeros(3, dtype), np.ones(3, dtype)
        out, cache = F.batchnorm2d_forward(x, g, b, mean, var, training)
        dx, dg, db = F.batchnorm2d_backward(d, cache)
        results.update({f"bn{training}": out, f"bn_dx{training}": dx, f"bn_dg{training}": dg,
                        f"mean{training}": mean, f"var{training}": var})
    for k in (1, 3, 5):
        w = rng.standard_normal((4, 3, k, k)).astype(dtype)
        for method in F.conv.METHODS:
            if F.conv.ONLY_KERNEL.get(method, k) != k:
                continue
            out, cache = F.conv2d_forward(x, w, method=method)
            dx, dw, _ = F.conv2d_backward(out, cache)
            results.update({f"{method}{k}": out, f"{method}{k}_dx": dx, f"{method}{k}_dw": dw})
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_layer_is_the_same_bit_for_bit_in_any_number_of_parts(cut_small, dtype):
    with batch_split.using_threads(1):
        whole = _layers(np.random.default_rng(0), dtype)
    for n in (2, 3, 5):
        with batch_split.using_threads(n):
            cut = _layers(np.random.default_rng(0), dtype)
        for key, value in whole.items():
            assert cut[key].dtype == value.dtype, key
            np.testing.assert_array_equal(cut[key], value, err_msg=f"{key} in {n} parts")
