"""The array module (NumPy or CuPy) that tinysegnet computes with, and moves between devices.

Every layer is written once against an array module ``xp``; it finds the right
one from its inputs with :func:`xp_of`, so the same code runs on NumPy arrays on
the CPU and CuPy arrays on a CUDA GPU.

Device names are ``"cpu"`` and ``"gpu"``; ``"auto"`` means the GPU when CuPy
imports and sees a CUDA device, the CPU otherwise. The environment variable
``TINYSEGNET_DEVICE=cpu|gpu`` overrides ``"auto"``.
"""

import contextlib
import functools
import os

import numpy as np

from .errors import DeviceError

DEVICE_ENV = "TINYSEGNET_DEVICE"
TF32_ENV = "CUPY_TF32"  # CuPy's own switch, read once: at its first float32 matrix product
DEVICES = ("auto", "cpu", "gpu")


_stand_in = None  # a module playing CuPy's part (tests without a GPU): see using_gpu_module


@functools.lru_cache(maxsize=None)
def _probe_cupy():
    """(cupy, None) when CuPy imports and runs kernels on a CUDA device, else (None, reason).

    Counting devices is not enough: with the driver but not the CUDA toolkit's libraries
    (cuBLAS, NVRTC) CuPy sees the device and fails at its first kernel. So the probe runs
    one elementwise kernel and one matrix product and checks their results. Checked once.
    """
    try:
        import cupy
    except Exception as e:  # not installed, or a broken install: the reason is the message
        return None, f"CuPy does not import ({_first_line(e)})"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, "CuPy sees no CUDA device"
        a = cupy.arange(4, dtype=cupy.float32).reshape(2, 2)
        ok = float((a * 2 + 1).sum()) == 16.0 and float((a @ a).sum()) == 22.0
    except Exception as e:  # CuPy's many CUDA errors: the reason is the message
        if not os.path.exists("/proc/driver/nvidia/version"):
            # CUDA says "driver version is insufficient" where there is no driver at all
            return None, f"no NVIDIA driver on this machine (CuPy: {_first_line(e)})"
        return None, f"CuPy failed on the GPU: {_first_line(e)}"
    if not ok:
        return None, "CuPy computed a wrong result on the GPU"
    return cupy, None


def _first_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _gpu_module():
    """The module that computes on the "gpu" device: CuPy, or a test's stand-in, or None."""
    return _stand_in if _stand_in is not None else _probe_cupy()[0]


@contextlib.contextmanager
def using_gpu_module(module):
    """Route the "gpu" device to ``module`` for the body (a strict CuPy stand-in in tests)."""
    global _stand_in
    previous, _stand_in = _stand_in, module
    try:
        yield module
    finally:
        _stand_in = previous


def gpu_available():
    """True when the GPU computes: CuPy ran a kernel and a matrix product there."""
    return _gpu_module() is not None


def set_gpu_precision(precision):
    """A command's GPU precision, set at its start: "tf32" lets CuPy run float32 matrix
    products (our convolutions) on TF32 tensor cores, with 10-bit mantissas, as PyTorch runs
    its convolutions by default; "fp32" keeps full float32, CuPy's default. CuPy reads
    ``CUPY_TF32`` once, at its first float32 product, so this is a setting for a process
    before that product, not a switch around a block (and no library function calls it)."""
    if precision not in ("fp32", "tf32"):
        raise ValueError(f"set_gpu_precision: expected 'fp32' or 'tf32', got {precision!r}")
    os.environ[TF32_ENV] = "1" if precision == "tf32" else "0"


def gpu_precision():
    """"tf32" or "fp32": how CuPy runs this process's float32 matrix products, by the
    ``CUPY_TF32`` it reads (unset or 0: full float32)."""
    return "fp32" if os.environ.get(TF32_ENV, "0").strip() in ("", "0") else "tf32"


def gpu_skipped_note(asked):
    """One line for a run that asked for ``auto`` and got the CPU although CuPy is installed
    (a user who installed the GPU stack expects to hear why it is not used); else None."""
    reason = gpu_unavailable_reason()
    if str(asked or "auto").lower() != "auto" or os.environ.get(DEVICE_ENV) or reason is None \
            or reason.startswith("CuPy does not import"):
        return None
    return f"the GPU is not used: {reason}"


def gpu_unavailable_reason():
    """Why there is no GPU (one line), or None when there is one."""
    return None if gpu_available() else _probe_cupy()[1]


def resolve_device(device="auto"):
    """Turn "auto" | "cpu" | "gpu" (or None) into "cpu" or "gpu".

    "auto" consults ``TINYSEGNET_DEVICE`` first. Asking for the GPU where there
    is none is an error, never a silent fall back to the CPU.
    """
    device = "auto" if device is None else str(device).lower()
    if device == "auto":
        device = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
        if device not in DEVICES:
            raise DeviceError(f"{DEVICE_ENV}={device!r}: expected one of cpu, gpu, auto")
    if device not in DEVICES:
        raise DeviceError(f"device {device!r}: expected one of {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    if device == "gpu" and not gpu_available():
        raise DeviceError(f"device 'gpu' requested but the GPU is not usable: "
                           f"{gpu_unavailable_reason()} (README: the GPU)")
    return "gpu" if gpu_available() else "cpu"


def array_module(device):
    """numpy for "cpu", cupy for "gpu" ("auto" is resolved first)."""
    return _gpu_module() if resolve_device(device) == "gpu" else np


def is_cupy_array(a):
    """True for a device array. Checked by module name so that CPU-only machines never
    import CuPy (or by type, for a test's stand-in)."""
    if _stand_in is not None and isinstance(a, _stand_in.ndarray):
        return True
    return type(a).__module__.split(".")[0] == "cupy"


def xp_of(*arrays):
    """The array module of the given arrays (None entries and Python scalars are skipped).

    Raises TypeError when NumPy and CuPy arrays are mixed: the caller must move
    them to one device first (:func:`to_device`).
    """
    kinds = {is_cupy_array(a) for a in arrays if a is not None and hasattr(a, "shape")}
    if len(kinds) > 1:
        raise TypeError("NumPy and CuPy arrays mixed in one call: move them to one device "
                        "with tinysegnet.backend.to_device")
    return _gpu_module() if kinds == {True} else np


def device_of(a):
    """"gpu" for a CuPy array, "cpu" otherwise."""
    return "gpu" if is_cupy_array(a) else "cpu"


def to_device(a, device):
    """A copy of array ``a`` on ``device`` (no copy when it is already there)."""
    if resolve_device(device) == "gpu":
        return _gpu_module().asarray(a)
    return to_numpy(a)


def to_numpy(a):
    """``a`` as a NumPy array (copied back from the GPU when needed)."""
    return a.get() if is_cupy_array(a) else np.asarray(a)
