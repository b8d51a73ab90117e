import numpy as np

from tinysegnet.functional import scratch


def test_same_purpose_reuses_memory_and_grows_when_needed():
    scratch.release()
    a = scratch.scratch("test", (3, 4), np.float32, np)
    b = scratch.scratch("test", (2, 5), np.float32, np)
    assert b.shape == (2, 5) and b.flags.c_contiguous and np.shares_memory(a, b)
    bigger = scratch.scratch("test", (10, 10), np.float32, np)
    assert not np.shares_memory(a, bigger)
    assert np.shares_memory(bigger, scratch.scratch("test", (4, 4), np.float32, np))


def test_purposes_and_dtypes_are_kept_apart():
    scratch.release()
    a = scratch.scratch("test", (8,), np.float32, np)
    assert not np.shares_memory(a, scratch.scratch("other", (8,), np.float32, np))
    d = scratch.scratch("test", (8,), np.float64, np)
    assert d.dtype == np.float64 and not np.shares_memory(a, d)


def test_release_forgets_every_buffer():
    a = scratch.scratch("test", (8,), np.float32, np)
    scratch.release()
    assert not np.shares_memory(a, scratch.scratch("test", (8,), np.float32, np))


def test_zero_padded_clears_what_an_earlier_call_left():
    scratch.release()
    scratch.scratch("test.padded", (200,), np.float64, np).fill(7.0)  # a dirty buffer
    x = np.arange(12, dtype=np.float64).reshape(1, 2, 2, 3) + 1
    xpad = scratch.zero_padded(x, 2, "test.padded", spare_rows=1)
    assert xpad.shape == (1, 2, 7, 7)
    expected = np.zeros((1, 2, 7, 7))
    expected[:, :, 2:4, 2:5] = x
    assert (xpad == expected).all()


def test_unshared_calls_get_memory_of_their_own_and_leave_the_buffers():
    scratch.release()
    shared = scratch.scratch("test", (8,), np.float32, np)
    with scratch.unshared():
        a, b = (scratch.scratch("test", (n,), np.float32, np) for n in (8, 100))
        assert not np.shares_memory(a, shared) and not np.shares_memory(a, b) and b.shape == (100,)
    assert np.shares_memory(shared, scratch.scratch("test", (8,), np.float32, np))  # not grown, not freed


def test_gpu_chunks_fit_a_quarter_of_the_free_memory(stand_in, monkeypatch, rng):
    """A GPU with little memory free takes a batch in smaller chunks (the limit in values
    stays the ceiling), and the convolution is the same."""
    import tinysegnet.functional as F
    from tinysegnet.functional import conv_rowshift
    from tinysegnet.testing import strict_cupy
    x = stand_in.asarray(rng.standard_normal((5, 2, 9, 8)))
    assert scratch.image_chunks(x, 100, {"cpu": 0, "gpu": 1000}) == [slice(0, 5)]
    monkeypatch.setattr(strict_cupy, "DEVICE_MEMORY", (4 * 8 * 250, 1 << 30))  # 250 float64 values
    assert scratch.image_chunks(x, 100, {"cpu": 0, "gpu": 1000}) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    w = stand_in.asarray(rng.standard_normal((3, 2, 3, 3)))
    per_image = 2 * 3 * 11 * 10  # C k Hp Wp: the row shifts' copies of one image
    monkeypatch.setattr(strict_cupy, "DEVICE_MEMORY", (4 * 8 * 2 * per_image, 1 << 30))
    monkeypatch.setitem(conv_rowshift.SHIFTS_LIMIT, "gpu", 1 << 28)
    out, _ = F.conv2d_forward(x, w, method="rowshift")
    ref, _ = F.conv2d_forward_reference(x, w)
    np.testing.assert_allclose(out.get(), ref.get(), rtol=1e-12, atol=1e-12)


def test_row_chunks_take_whole_images_while_one_fits_else_even_bands_of_rows():
    x = np.zeros((3, 2, 10, 4))
    whole = slice(0, 10)
    assert scratch.row_chunks(x, 10, 5, {"cpu": 100, "gpu": 0}) == [(slice(0, 2), whole), (slice(2, 3), whole)]
    bands = scratch.row_chunks(x[:1], 10, 5, {"cpu": 20, "gpu": 0})  # 4 rows a band at most: 3 bands
    assert bands == [(slice(0, 1), slice(0, 4)), (slice(0, 1), slice(4, 8)), (slice(0, 1), slice(8, 10))]
    assert scratch.row_chunks(x[:1], 10, 5, {"cpu": 1, "gpu": 0})[-1] == (slice(0, 1), slice(9, 10))  # a row at least
