import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet.gradcheck import check_gradients
from tinysegnet.testing import strict_cupy

from conftest import rel_close


METHODS = list(F.conv.METHODS)  # rowshift, im2col, fft, fft-tiles, winograd, winograd4, pointwise


def cases(methods, *kernel_cases):
    """(method, *case) for every method and case whose kernel (the case's first value, or
    the case itself) the method computes: Winograd's take 3x3 kernels only, pointwise 1x1."""
    pairs = []
    for method in methods:
        for case in kernel_cases:
            case = case if isinstance(case, tuple) else (case,)
            if F.conv.ONLY_KERNEL.get(method, case[0]) == case[0]:
                pairs.append((method,) + case)
    return pairs


@pytest.mark.parametrize("method,k,pad,bias", cases(METHODS, (1, None, True), (3, None, True),
                                                     (7, None, False), (3, 0, True), (5, 4, False),
                                                     (3, 2, False)))
def test_fast_matches_reference_forward_and_backward(xp, rng, k, pad, bias, method):
    x = xp.asarray(rng.standard_normal((2, 3, 9, 8)))
    w = xp.asarray(rng.standard_normal((4, 3, k, k)))
    b = xp.asarray(rng.standard_normal(4)) if bias else None
    out, cache = F.conv2d_forward(x, w, b, pad, method=method)
    ref, ref_cache = F.conv2d_forward_reference(x, w, b, pad)
    assert out.shape == ref.shape
    rel_close(out, ref, 1e-12)
    dout = xp.asarray(rng.standard_normal(out.shape))
    for ours, theirs in zip(F.conv2d_backward(dout, cache), F.conv2d_backward_reference(dout, ref_cache)):
        if theirs is None:
            assert ours is None
        else:
            rel_close(ours, theirs, 1e-12)


@pytest.mark.parametrize("method,k", cases(METHODS, 1, 3, 7))
def test_gradients(xp, rng, k, method):
    x = xp.asarray(rng.standard_normal((2, 3, 7, 8)))
    w = xp.asarray(rng.standard_normal((2, 3, k, k)))
    b = xp.asarray(rng.standard_normal(2))
    out, cache = F.conv2d_forward(x, w, b, method=method)
    dout = xp.asarray(rng.standard_normal(out.shape))
    dx, dw, db = F.conv2d_backward(dout, cache)
    errors = check_gradients(lambda x, w, b: F.conv2d_forward(x, w, b, method=method)[0],
                             dict(x=x, w=w, b=b), dict(x=dx, w=dw, b=db), dout)
    assert max(errors.values()) < 1e-6


def test_keeps_dtype(xp, rng):
    for dtype in (np.float32, np.float64):
        x = xp.asarray(rng.standard_normal((1, 2, 5, 5)), dtype=dtype)
        w = xp.asarray(rng.standard_normal((3, 2, 3, 3)), dtype=dtype)
        out, cache = F.conv2d_forward(x, w)
        dx, dw, _ = F.conv2d_backward(out, cache)
        assert out.dtype == dx.dtype == dw.dtype == dtype


@pytest.mark.parametrize("x_shape,w_shape,match", [
    ((3, 5, 5), (2, 3, 3, 3), "4-D"),
    ((1, 4, 5, 5), (2, 3, 3, 3), "channels"),
    ((1, 3, 5, 5), (2, 3, 2, 2), "odd"),
])
def test_bad_shapes(x_shape, w_shape, match):
    with pytest.raises(ValueError, match=match) as info:
        F.conv2d_forward(np.zeros(x_shape), np.zeros(w_shape))
    assert "conv2d_forward" in str(info.value)


def test_mixed_dtypes_refused():
    with pytest.raises(ValueError, match="upcast"):
        F.conv2d_forward(np.zeros((1, 1, 3, 3), np.float32), np.zeros((1, 1, 3, 3)))


@pytest.mark.parametrize("method,k,bias", cases(METHODS, (1, True), (3, True), (7, False)))
def test_agrees_with_torch(rng, k, bias, method):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 5, 11, 9)).astype(np.float32)
    w = rng.standard_normal((4, 5, k, k)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32) if bias else None
    out, cache = F.conv2d_forward(x, w, b, method=method)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, dw, db = F.conv2d_backward(dout, cache)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    tout = torch.nn.functional.conv2d(tx, tw, tb, padding=k // 2)
    tout.backward(torch.tensor(dout))
    rel_close(out, tout.detach().numpy())
    rel_close(dx, tx.grad.numpy())
    rel_close(dw, tw.grad.numpy())
    if bias:
        rel_close(db, tb.grad.numpy())


def test_alternating_shapes_through_reused_scratch(xp, rng):
    """A large call leaves data in the scratch buffers; smaller calls with other paddings
    must still see zero borders (a stale border would change these results)."""
    for method, k, pad, shape in cases(METHODS, (7, 3, (2, 3, 9, 8)), (5, 4, (1, 2, 6, 7)),
                                       (3, 1, (2, 4, 11, 5)), (3, 2, (1, 3, 7, 6)), (3, 0, (2, 2, 9, 9))):
        big_k = F.conv.ONLY_KERNEL.get(method, 7)
        big = xp.asarray(rng.standard_normal((3, 5, 20, 22))), xp.asarray(rng.standard_normal((6, 5, big_k, big_k)))
        F.conv2d_backward(*F.conv2d_forward(*big, method=method))
        x = xp.asarray(rng.standard_normal(shape))
        w = xp.asarray(rng.standard_normal((3, shape[1], k, k)))
        out, cache = F.conv2d_forward(x, w, None, pad, method=method)
        ref, ref_cache = F.conv2d_forward_reference(x, w, None, pad)
        rel_close(out, ref, 1e-12)
        dout = xp.asarray(rng.standard_normal(out.shape))
        for ours, theirs in zip(F.conv2d_backward(dout, cache), F.conv2d_backward_reference(dout, ref_cache)):
            if theirs is not None:
                rel_close(ours, theirs, 1e-12)


def test_im2col_in_chunks_of_images(rng, monkeypatch):
    """Batches whose columns exceed the limit go through in several chunks."""
    from tinysegnet.functional import conv_im2col
    x, w = rng.standard_normal((5, 3, 6, 7)), rng.standard_normal((4, 3, 3, 3))
    whole, cache = F.conv2d_forward(x, w, method="im2col")
    grads = F.conv2d_backward(whole, cache)
    monkeypatch.setitem(conv_im2col.COLUMNS_LIMIT, "cpu", 2 * 3 * 9 * 6 * 7)  # two images a chunk
    chunked, cache = F.conv2d_forward(x, w, method="im2col")
    rel_close(chunked, whole, 1e-12)
    for a, b in zip(F.conv2d_backward(whole, cache), grads):
        if b is not None:
            rel_close(a, b, 1e-12)


def test_fft_tiles_infer_one_image_in_bands_of_tile_rows(xp, rng, monkeypatch):
    """Inference on one image (``backward=False``) takes its tile rows in bands whose spectrum
    fits the limit; the result is the loops', and a backward pass asked for anyway computes
    the spectrum again. A batch, or a forward pass for training, stays whole."""
    from tinysegnet.functional import conv_fft_tiles
    x, w = rng.standard_normal((1, 3, 36, 24)), rng.standard_normal((2, 3, 7, 7))  # 3 x 2 tiles of 12
    ref, ref_cache = F.conv2d_forward_reference(x, w)
    dout = rng.standard_normal(ref.shape)
    x, w, d = xp.asarray(x), xp.asarray(w), xp.asarray(dout)
    per_row = 18 * 10 * 2 * 3  # L Lb tW C: one tile row's spectrum
    for device in ("cpu", "gpu"):
        monkeypatch.setitem(conv_fft_tiles.SPECTRUM_LIMIT, device, per_row)
    bands = []
    spectrum = conv_fft_tiles._spectrum
    monkeypatch.setattr(conv_fft_tiles, "_spectrum", lambda z, *a: bands.append(z.shape) or spectrum(z, *a))
    out, cache = F.conv2d_forward(x, w, method="fft-tiles", backward=False)
    rel_close(out, ref, 1e-12)
    assert [s[2] for s in bands] == [18, 18, 18] and cache.spectrum is None  # a tile row each
    for ours, theirs in zip(F.conv2d_backward(d, cache), F.conv2d_backward_reference(dout, ref_cache)):
        if theirs is not None:
            rel_close(ours, theirs, 1e-12)
    bands.clear()
    F.conv2d_forward(x, w, method="fft-tiles")  # for training: whole, the spectrum kept
    F.conv2d_forward(xp.concatenate([x, x]), w, method="fft-tiles", backward=False)  # a batch: whole
    assert [s[2] for s in bands] == [42, 42]


def test_im2col_in_bands_of_rows(rng, monkeypatch):
    """An image whose columns exceed the limit goes through in bands of its rows (3, 2 and 2
    of 7 here), dw summed over them."""
    from tinysegnet.functional import conv_im2col
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    ref, ref_cache = F.conv2d_forward_reference(x, w)
    dout = rng.standard_normal(ref.shape)
    from tinysegnet.functional import scratch
    limit = 3 * 3 * 9 * 6  # three output rows' columns
    monkeypatch.setitem(conv_im2col.COLUMNS_LIMIT, "cpu", limit)
    scratch.release()
    out, cache = F.conv2d_forward(x, w, method="im2col")
    assert scratch._buffers[("im2col.cols", "numpy", x.dtype.str)].size <= limit  # the columns held
    rel_close(out, ref, 1e-12)
    for ours, theirs in zip(F.conv2d_backward(dout, cache), F.conv2d_backward_reference(dout, ref_cache)):
        if theirs is not None:
            rel_close(ours, theirs, 1e-12)


@pytest.mark.parametrize("method,positions,tiles", [("winograd", 16, 4 * 3), ("winograd4", 36, 2 * 2)])
def test_winograd_in_chunks_of_images(rng, monkeypatch, method, positions, tiles):
    """Batches whose transforms exceed the limit go through in several chunks, dw summed over them."""
    from tinysegnet.functional import conv_winograd
    x, w = rng.standard_normal((5, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    ref, ref_cache = F.conv2d_forward_reference(x, w)
    dout = rng.standard_normal(ref.shape)
    monkeypatch.setitem(conv_winograd.TRANSFORM_LIMIT, "cpu", 2 * positions * 3 * tiles)  # two images a chunk
    out, cache = F.conv2d_forward(x, w, method=method)
    rel_close(out, ref, 1e-12)
    for a, b in zip(F.conv2d_backward(dout, cache), F.conv2d_backward_reference(dout, ref_cache)):
        if b is not None:
            rel_close(a, b, 1e-12)


def test_choose_method():
    assert F.conv.choose_method((4, 3, 90, 120), (64, 3, 7, 7), np) == "im2col"  # few channels
    assert F.conv.choose_method((12, 64, 90, 120), (11, 64, 1, 1), np) == "pointwise"  # the classifier
    # 7x7 on many channels: tiles where a side of 12-30 divides the map, else the whole map's
    # FFT for small maps in large batches, else tiles
    assert F.conv.choose_method((12, 64, 45, 60), (64, 64, 7, 7), np) == "fft-tiles"  # tiles of 15
    assert F.conv.choose_method((12, 64, 23, 30), (64, 64, 7, 7), np) == "fft"
    assert F.conv.choose_method((4, 64, 23, 30), (64, 64, 7, 7), np) == "fft"
    assert F.conv.choose_method((4, 64, 45, 60), (64, 64, 7, 7), np) == "fft-tiles"
    assert F.conv.choose_method((12, 64, 90, 120), (64, 64, 7, 7), np) == "fft-tiles"  # CamVid's protocol
    assert F.conv.choose_method((1, 64, 360, 480), (64, 64, 7, 7), np) == "fft-tiles"
    assert F.conv.choose_method((1, 64, 23, 30), (64, 64, 7, 7), np) == "rowshift"  # too small for either
    assert F.conv.choose_method((2, 64, 12, 15), (64, 64, 7, 7), np) == "rowshift"
    assert F.conv.choose_method((12, 256, 23, 30), (256, 256, 3, 3), np) == "winograd4"  # SegNet's 3x3
    assert F.conv.choose_method((4, 128, 45, 60), (128, 128, 3, 3), np) == "winograd4"
    assert F.conv.choose_method((1, 128, 90, 120), (128, 128, 3, 3), np) == "winograd4"
    assert F.conv.choose_method((12, 512, 6, 8), (512, 512, 3, 3), np) == "winograd"  # 4x4 tiles too big
    assert F.conv.choose_method((1, 512, 23, 30), (512, 512, 3, 3), np) == "winograd"  # weights dominate
    assert F.conv.choose_method((12, 64, 90, 120), (64, 64, 3, 3), np) == "fft-tiles"  # 30 x 30 tiles
    assert F.conv.choose_method((12, 128, 45, 60), (128, 128, 3, 3), np) == "fft-tiles"  # 15 x 15
    assert F.conv.choose_method((4, 64, 90, 120), (64, 64, 3, 3), np) == "rowshift"  # transforms outweigh
    assert F.conv.choose_method((12, 64, 90, 120), (11, 64, 3, 3), np) == "rowshift"  # SegNet's classifier
    assert F.conv.choose_method((1, 512, 12, 15), (512, 512, 3, 3), np) == "im2col"  # weights dominate


def test_choose_method_on_a_device():
    """On a GPU row shifts for large maps with many channels, im2col for the rest."""
    assert F.conv.choose_method((12, 64, 90, 120), (64, 64, 7, 7), strict_cupy) == "rowshift"
    assert F.conv.choose_method((12, 64, 23, 30), (64, 64, 7, 7), strict_cupy) == "im2col"
    assert F.conv.choose_method((12, 3, 90, 120), (64, 3, 7, 7), strict_cupy) == "im2col"


def test_unknown_method_refused():
    with pytest.raises(ValueError, match="method must be one of rowshift, im2col, fft, .*, pointwise"):
        F.conv2d_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), method="direct")


def test_winograd_takes_3x3_kernels_only(rng):
    with pytest.raises(ValueError, match="1x1 kernels only"):
        F.conv2d_forward(np.zeros((1, 1, 7, 7)), np.zeros((1, 1, 3, 3)), method="pointwise")
    with pytest.raises(ValueError, match="3x3 kernels only"):
        F.conv2d_forward(np.zeros((1, 1, 7, 7)), np.zeros((1, 1, 7, 7)), method="winograd")
    # forced for a whole model, it computes the 3x3 layers and leaves the others their pick
    x, w7, w3 = rng.standard_normal((1, 2, 9, 9)), rng.standard_normal((2, 2, 7, 7)), rng.standard_normal((2, 2, 3, 3))
    with F.conv.using_method("winograd"):
        assert F.conv2d_forward(x, w3)[1].method == "winograd"
        assert F.conv2d_forward(x, w7)[1].method == F.conv.choose_method(x.shape, w7.shape, np)


@pytest.mark.parametrize("method,k,pad", cases(METHODS, (1, 0), (3, 0), (3, 1)))
def test_results_do_not_live_in_scratch(xp, rng, method, k, pad):
    """Outputs and gradients must survive the next convolution of the same shapes."""
    def run():
        x, w = xp.asarray(rng.standard_normal((2, 3, 6, 5))), xp.asarray(rng.standard_normal((4, 3, k, k)))
        out, cache = F.conv2d_forward(x, w, None, pad, method=method)
        return (out,) + F.conv2d_backward(xp.asarray(rng.standard_normal(out.shape)), cache)[:2]
    first = run()
    kept = [a.copy() for a in first]
    run()
    for a, b in zip(first, kept):
        assert (a == b).all()


@pytest.mark.parametrize("fft", ["fft", "fft-tiles"])
def test_the_fft_methods_in_a_whole_training_step_match_row_shifts(rng, fft):
    """SegNet-Basic, float64, with an FFT method in every layer: logits and every gradient as
    with row shifts everywhere."""
    from tinysegnet.models import SegNetBasic
    x = rng.standard_normal((8, 3, 24, 32))
    y = rng.integers(0, 12, (8, 24, 32)).astype(np.uint8)
    results = {}
    for method in (fft, "rowshift"):
        model = SegNetBasic(width=16, seed=0).astype(np.float64).train()
        with F.conv.using_method(method):
            logits = model.forward(x)
            model.backward(F.softmax_cross_entropy(logits, y, None, 11)[1])
        results[method] = (logits, {n: p.grad for n, p in model.named_parameters()})
    assert np.abs(results[fft][0] - results["rowshift"][0]).max() < 1e-10
    for name, grad in results[fft][1].items():
        assert np.abs(grad - results["rowshift"][1][name]).max() <= 1e-9 * max(np.abs(grad).max(), 1.0), name


def test_using_method_restores_the_choice_however_the_block_ends():
    with pytest.raises(RuntimeError):
        with F.conv.using_method("fft"):
            assert F.conv.forced_method == "fft"
            raise RuntimeError
    assert F.conv.forced_method is None


@pytest.mark.parametrize("winograd", ["winograd", "winograd4"])
def test_the_winograd_methods_in_a_whole_segnet_step_match_im2col(rng, winograd):
    """SegNet (VGG16's 3x3 layers, narrowed), float64: logits and every gradient with Winograd
    in every 3x3 layer as with im2col everywhere."""
    from tinysegnet.models import SegNet
    x = rng.standard_normal((2, 3, 32, 48))
    y = rng.integers(0, 12, (2, 32, 48)).astype(np.uint8)
    results = {}
    for method in (winograd, "im2col"):
        model = SegNet(base_width=8, seed=0).astype(np.float64).train()
        with F.conv.using_method(method):
            logits = model.forward(x)
            model.backward(F.softmax_cross_entropy(logits, y, None, 11)[1])
        results[method] = (logits, {n: p.grad for n, p in model.named_parameters()})
    assert np.abs(results[winograd][0] - results["im2col"][0]).max() < 1e-10
    for name, grad in results[winograd][1].items():
        assert np.abs(grad - results["im2col"][1][name]).max() <= 1e-9 * max(np.abs(grad).max(), 1.0), name


@pytest.mark.parametrize("k,pad,shape,T", [(7, 3, (2, 2, 40, 45), 18), (7, 0, (1, 2, 37, 19), 18),
                                           (5, 4, (1, 3, 21, 44), 20), (3, 1, (1, 2, 23, 50), 22),
                                           (7, 3, (1, 2, 60, 90), 30), (7, 3, (2, 2, 45, 60), 15),
                                           (3, 1, (1, 2, 60, 90), 30)])
def test_fft_tiles_across_many_tiles_against_the_loops(xp, rng, k, pad, shape, T):
    """Maps of several tiles each way, the last one part-filled (or, where a tile side divides
    the output, every tile whole): every overlap-add seam and the cropped edges, float64,
    forward and both gradients, the kept spectrum and a new one."""
    from tinysegnet.functional import conv_fft_tiles
    Ho, Wo = shape[2] + 2 * pad - k + 1, shape[3] + 2 * pad - k + 1
    assert conv_fft_tiles.tile_size(k, Ho, Wo) == T and Ho > T  # more than one tile
    x, w = xp.asarray(rng.standard_normal(shape)), xp.asarray(rng.standard_normal((3, shape[1], k, k)))
    out, cache = F.conv2d_forward(x, w, None, pad, method="fft-tiles")
    ref, ref_cache = F.conv2d_forward_reference(x, w, None, pad)
    rel_close(out, ref, 1e-12)
    dout = xp.asarray(rng.standard_normal(out.shape))
    expected = F.conv2d_backward_reference(dout, ref_cache)[:2]
    for spectrum in (cache.spectrum, None):
        dx, dw = conv_fft_tiles.conv_backward(dout, x, w, pad, True, spectrum)
        rel_close(dx, expected[0], 1e-12)
        rel_close(dw, expected[1], 1e-12)


def test_long_sums_round_the_same_on_one_and_two_blas_threads(rng):
    from threadpoolctl import threadpool_limits
    from tinysegnet.functional import long_sums
    for dtype, K in [(np.float32, 1380), (np.complex64, 200)]:  # sums OpenBLAS cut by thread count
        a = rng.standard_normal((64, K)).astype(dtype)
        b = rng.standard_normal((64, K)).astype(dtype).T
        results = []
        for count in (1, 2):
            with threadpool_limits(count):
                results.append(long_sums.matmul(a, b))
        assert results[0].tobytes() == results[1].tobytes()
        np.testing.assert_allclose(results[0], a.astype(np.complex128) @ b, rtol=1e-4, atol=1e-3)
