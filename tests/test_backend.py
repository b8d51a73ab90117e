import numpy as np
import pytest

from tinysegnet.errors import DeviceError
from tinysegnet import backend


def test_cpu_is_numpy():
    assert backend.array_module("cpu") is np
    assert backend.resolve_device("cpu") == "cpu"


def test_env_override_cpu(monkeypatch):
    monkeypatch.setenv(backend.DEVICE_ENV, "cpu")
    assert backend.resolve_device("auto") == "cpu"


def test_bad_device_names(monkeypatch):
    with pytest.raises(DeviceError, match="tpu"):
        backend.resolve_device("tpu")
    monkeypatch.setenv(backend.DEVICE_ENV, "cuda")
    with pytest.raises(DeviceError, match="TINYSEGNET_DEVICE"):
        backend.resolve_device("auto")


def test_gpu_without_cuda_is_an_error(monkeypatch):
    if backend.gpu_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="CuPy"):
        backend.resolve_device("gpu")
    monkeypatch.setenv(backend.DEVICE_ENV, "gpu")
    with pytest.raises(RuntimeError, match="CuPy"):
        backend.resolve_device("auto")


def test_xp_of_numpy_and_roundtrip(xp):
    a = xp.arange(6.0).reshape(2, 3)
    assert backend.xp_of(a, None, 3.0) is xp
    device = "gpu" if xp is not np else "cpu"
    assert backend.device_of(a) == device
    back = backend.to_numpy(backend.to_device(backend.to_numpy(a), device))
    np.testing.assert_array_equal(back, np.arange(6.0).reshape(2, 3))


def test_mixing_numpy_and_device_arrays_is_a_clear_error(device_xp):
    with pytest.raises(TypeError, match="mixed"):
        backend.xp_of(np.zeros(2), device_xp.zeros(2))


def test_the_probe_names_the_real_cause(monkeypatch):
    """No usable GPU: the reason carries what failed, not only that something did."""
    import sys
    backend._probe_cupy.cache_clear()
    monkeypatch.setitem(sys.modules, "cupy", None)  # an import that fails
    try:
        assert backend._probe_cupy() == (None, "CuPy does not import (ModuleNotFoundError: "
                                                "import of cupy halted; None in sys.modules)")
    finally:
        backend._probe_cupy.cache_clear()


def test_a_machine_without_a_driver_is_told_so(monkeypatch):
    import types
    failing = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(
        getDeviceCount=lambda: (_ for _ in ()).throw(RuntimeError("CUDA driver version is insufficient")))))
    monkeypatch.setitem(__import__("sys").modules, "cupy", failing)
    monkeypatch.setattr(backend.os.path, "exists", lambda p: False if "nvidia" in p else True)
    backend._probe_cupy.cache_clear()
    try:
        module, reason = backend._probe_cupy()
        assert module is None and reason.startswith("no NVIDIA driver on this machine")
    finally:
        backend._probe_cupy.cache_clear()


def test_auto_says_why_an_installed_cupy_is_not_used(monkeypatch):
    monkeypatch.delenv(backend.DEVICE_ENV, raising=False)
    monkeypatch.setattr(backend, "gpu_unavailable_reason", lambda: "CuPy sees no CUDA device")
    assert backend.gpu_skipped_note("auto") == "the GPU is not used: CuPy sees no CUDA device"
    assert backend.gpu_skipped_note("cpu") is None
    monkeypatch.setattr(backend, "gpu_unavailable_reason", lambda: "CuPy does not import (No module named 'cupy')")
    assert backend.gpu_skipped_note("auto") is None  # no GPU stack installed: nothing to explain
