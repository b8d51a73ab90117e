"""The GPU's fused kernels: one launch each on the stand-in, refused where CuPy could not fuse,
and the GPU path of every layer that uses them equal to the CPU's to the last bit (float64)."""

import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet.functional.fused import kernel
from tinysegnet.nn import Parameter
from tinysegnet.optim import SGD
from tinysegnet.testing import strict_cupy


@kernel
def _scaled_sum(xp, a, b, scale):
    return xp.maximum(a, b) * scale + (a > b)


def test_a_kernel_is_one_launch_on_the_device_and_plain_code_on_numpy(stand_in):
    a, b = np.arange(6.0).reshape(2, 3), np.full((2, 3), 2.5)
    expected = np.maximum(a, b) * 3 + (a > b)
    np.testing.assert_array_equal(_scaled_sum(a, b, 3.0), expected)
    da, db = stand_in.asarray(a), stand_in.asarray(b)
    with strict_cupy.counting() as c:
        result = _scaled_sum(da, db, 3.0)
    assert c.ops == 1
    np.testing.assert_array_equal(result.get(), expected)


@pytest.mark.parametrize("body, what", [
    (lambda xp, a: a.reshape(-1), "ndarray.reshape"),
    (lambda xp, a: a.sum(), "ndarray.sum"),
    (lambda xp, a: a[0], "indexing"),
    (lambda xp, a: xp.matmul(a, a), "cupy.matmul"),
    (lambda xp, a: float(a[0, 0]), "indexing"),
    (lambda xp, a: a.__iadd__(1), "in-place"),
])
def test_what_cupy_cannot_fuse_is_refused(stand_in, body, what):
    fused = stand_in.fuse(kernel_name="bad")(body)
    with pytest.raises(NotImplementedError, match=f"{what}.*inside cupy.fuse"):
        fused(stand_in, stand_in.asarray(np.ones((2, 2))))
    with pytest.raises(TypeError, match="NumPy ndarray"):  # host arrays are refused as elsewhere
        stand_in.fuse()(lambda a: a + 1)(np.ones(2))
    assert strict_cupy._fusing is None  # the refusal leaves no kernel open


def _every_path(xp, dtype=np.float64):
    """Each layer's outputs on xp (numpy: the CPU's passes; the stand-in: the fused kernels),
    at a ceil-mode shape, and two SGD steps with momentum and weight decay, and without momentum."""
    rng = np.random.default_rng(3)
    on = lambda a: xp.asarray(a.astype(dtype))  # noqa: E731
    x, d = on(rng.standard_normal((3, 4, 7, 9))), on(rng.standard_normal((3, 4, 7, 9)))
    g, b = on(rng.standard_normal(4)), on(rng.standard_normal(4))
    results = {}
    pooled, idx = F.maxpool2x2_forward(x)
    results.update(pool=pooled, idx=idx, pool_dx=F.maxpool2x2_backward(pooled * 2, idx, x.shape),
                   unpool=F.unpool2x2_forward(pooled, idx, x.shape), unpool_dx=F.unpool2x2_backward(d, idx))
    for training in (True, False):
        mean, var = on(rng.standard_normal(4)), on(rng.random(4) + 0.5)
        out, cache = F.batchnorm2d_forward(x, g, b, mean, var, training)
        dx, dg, db = F.batchnorm2d_backward(d, cache)
        results.update({f"bn{training}": out, f"bn_dx{training}": dx, f"bn_dg{training}": dg,
                        f"bn_db{training}": db, f"mean{training}": mean, f"var{training}": var})
    p, plain = Parameter(on(rng.standard_normal((2, 3)))), Parameter(on(rng.standard_normal((2, 3))))
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4)
    plain_opt = SGD([plain], lr=0.1, weight_decay=5e-4)
    for step in range(2):
        p.grad, plain.grad = on(rng.standard_normal((2, 3))), on(rng.standard_normal((2, 3)))
        opt.step()
        plain_opt.step()
        results[f"sgd{step}"], results[f"velocity{step}"] = p.data.copy(), opt.velocity[0].copy()
        results[f"plain_sgd{step}"] = plain.data.copy()
    assert plain_opt.velocity == [None]
    return {k: v.get() if hasattr(v, "get") else v for k, v in results.items()}


def test_the_gpu_path_is_the_cpu_path_to_the_last_bit(device_xp):
    """Through the stand-in (NumPy running the kernels' code) to the last bit; on a GPU, where
    CUDA contracts products and sums into fused multiply-adds, to float64 rounding."""
    cpu, gpu = _every_path(np), _every_path(device_xp)
    for key, value in cpu.items():
        assert gpu[key].dtype == value.dtype, key
        if device_xp is strict_cupy or value.dtype.kind in "bu":
            np.testing.assert_array_equal(gpu[key], value, err_msg=key)
        else:
            np.testing.assert_allclose(gpu[key], value, rtol=1e-10, atol=1e-12, err_msg=key)


def test_fused_layers_take_few_launches(stand_in):
    x = stand_in.asarray(np.random.default_rng(0).standard_normal((2, 4, 8, 10)).astype(np.float32))
    ones, zeros = stand_in.ones(4, dtype=np.float32), stand_in.zeros(4, dtype=np.float32)
    with strict_cupy.counting() as pool:
        out, idx = F.maxpool2x2_forward(x)
    with strict_cupy.counting() as unpool:
        F.unpool2x2_forward(out, idx, x.shape)
    with strict_cupy.counting() as back:
        F.unpool2x2_backward(x, idx)
    running = zeros.copy(), ones.copy()
    with strict_cupy.counting() as bn:
        F.batchnorm2d_forward(x, ones, zeros, *running, True)
    assert (pool.ops, unpool.ops, back.ops) == (1, 1, 1)
    assert bn.ops <= 7, bn.ops  # mean, squares, variance, statistics, two running updates, affine
