"""Shared fixtures: every layer test runs on NumPy, and on CuPy where a CUDA device exists."""

import numpy as np
import pytest

from tinysegnet import backend


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA device (skipped without)")
    config.addinivalue_line("markers", "camvid: needs ../shared/camvid (skipped without)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(params=["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def xp(request):
    """The array module under test: numpy, or cupy behind the gpu marker."""
    if request.param == "gpu":
        if not backend.gpu_available():
            pytest.skip("CuPy with a CUDA device is not available")
        import cupy
        return cupy
    return np


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
