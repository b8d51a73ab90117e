"""Shared fixtures: every layer test runs on NumPy, on the strict CuPy stand-in (the GPU
code path, checked without a GPU), and on CuPy where a CUDA device exists."""

import os

import numpy as np
import pytest

from tinysegnet import backend
from tinysegnet.testing import strict_cupy


def pytest_addoption(parser):
    parser.addoption("--gpu-stand-in", action="store_true",
                     help="route the gpu device to the strict CuPy stand-in for the whole run: with "
                          "TINYSEGNET_DEVICE=gpu, the suite runs as on a GPU machine, without one")


def pytest_configure(config):
    if config.getoption("--gpu-stand-in"):
        config.gpu_stand_in = backend.using_gpu_module(strict_cupy)  # kept: exiting it restores
        config.gpu_stand_in.__enter__()
    # The tests check full float32 on a GPU: a command's default there is TF32 (cli.apply_precision),
    # which CuPy would read at the suite's first product.
    os.environ[backend.TF32_ENV] = "0"
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA device (skipped without)")
    config.addinivalue_line("markers", "camvid: needs ../shared/camvid (skipped without)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    if os.environ.get(backend.DEVICE_ENV, "").strip().lower() == "gpu" and not backend.gpu_available():
        # Every test that trains on the default device would fail with the same cause: say it once.
        pytest.exit(f"{backend.DEVICE_ENV}=gpu but the GPU is not usable: "
                    f"{backend.gpu_unavailable_reason()}; unset it to test on the CPU", returncode=2)


@pytest.fixture(params=["cpu", "stand-in", pytest.param("gpu", marks=pytest.mark.gpu)])
def xp(request):
    """The array module under test: numpy, the strict CuPy stand-in, or cupy behind the gpu
    marker (skipped where no GPU is usable)."""
    if request.param == "stand-in":
        with backend.using_gpu_module(strict_cupy):
            yield strict_cupy
    elif request.param == "gpu":
        if backend._probe_cupy()[0] is None:
            pytest.skip(f"no usable GPU: {backend.gpu_unavailable_reason()}")
        yield backend._probe_cupy()[0]
    else:
        yield np


@pytest.fixture(params=["stand-in", pytest.param("gpu", marks=pytest.mark.gpu)])
def device_xp(request):
    """The module behind the "gpu" device for this test: the stand-in, or CuPy."""
    if request.param == "stand-in":
        with backend.using_gpu_module(strict_cupy):
            yield strict_cupy
    else:
        if backend._probe_cupy()[0] is None:
            pytest.skip(f"no usable GPU: {backend.gpu_unavailable_reason()}")
        yield backend._probe_cupy()[0]


@pytest.fixture
def stand_in():
    """Route the "gpu" device to the strict CuPy stand-in for one test."""
    with backend.using_gpu_module(strict_cupy):
        yield strict_cupy


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def rel_close(ours, reference, tol=1e-4):
    """max |ours - reference| / max |reference| <= tol (the oracle tests' agreement measure)."""
    ours, reference = backend.to_numpy(ours), backend.to_numpy(reference)
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    scale = max(float(np.abs(reference).max()), 1e-12)
    err = float(np.abs(ours - reference).max()) / scale
    assert err <= tol, f"relative disagreement {err:.2e} > {tol:.0e}"
    return err


def distinct_values(rng, shape, dtype=np.float64):
    """Values spaced at least 0.01 apart (a permutation), so max-pool windows have no ties."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.01).reshape(shape).astype(dtype)


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory):
    """A CamVid-layout folder of 6 train and 3 val synthetic scenes at 32x48."""
    from tinysegnet.data import synthetic
    root = str(tmp_path_factory.mktemp("data") / "tiny")
    synthetic.generate(root, (32, 48), counts={"train": 6, "val": 3}, seed=0)
    return root
