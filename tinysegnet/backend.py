"""The array module (NumPy or CuPy) that tinysegnet computes with, and moves between devices.

Every layer is written once against an array module ``xp``; it finds the right
one from its inputs with :func:`xp_of`, so the same code runs on NumPy arrays on
the CPU and CuPy arrays on a CUDA GPU.

Device names are ``"cpu"`` and ``"gpu"``; ``"auto"`` means the GPU when CuPy
imports and sees a CUDA device, the CPU otherwise. The environment variable
``TINYSEGNET_DEVICE=cpu|gpu`` overrides ``"auto"``.
"""

import functools
import os

import numpy as np

DEVICE_ENV = "TINYSEGNET_DEVICE"
DEVICES = ("auto", "cpu", "gpu")


@functools.lru_cache(maxsize=None)
def _usable_cupy():
    """CuPy if it imports and sees at least one CUDA device, else None (checked once)."""
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
    except Exception:  # no CuPy, no driver, no device: all mean "no GPU here"
        return None
    return None


def gpu_available():
    """True when CuPy imports and a CUDA device is present."""
    return _usable_cupy() is not None


def resolve_device(device="auto"):
    """Turn "auto" | "cpu" | "gpu" (or None) into "cpu" or "gpu".

    "auto" consults ``TINYSEGNET_DEVICE`` first. Asking for the GPU where there
    is none is an error, never a silent fall back to the CPU.
    """
    device = "auto" if device is None else str(device).lower()
    if device == "auto":
        device = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
        if device not in DEVICES:
            raise ValueError(f"{DEVICE_ENV}={device!r}: expected one of cpu, gpu, auto")
    if device not in DEVICES:
        raise ValueError(f"device {device!r}: expected one of {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    if device == "gpu" and not gpu_available():
        raise RuntimeError("device 'gpu' requested but CuPy with a CUDA device is not available "
                           "(pip install -r requirements-gpu.txt on a machine with an NVIDIA GPU)")
    return "gpu" if gpu_available() else "cpu"


def array_module(device):
    """numpy for "cpu", cupy for "gpu" ("auto" is resolved first)."""
    return _usable_cupy() if resolve_device(device) == "gpu" else np


def is_cupy_array(a):
    # Checked by module name so that CPU-only machines never import CuPy.
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
    return _usable_cupy() if kinds == {True} else np


def device_of(a):
    """"gpu" for a CuPy array, "cpu" otherwise."""
    return "gpu" if is_cupy_array(a) else "cpu"


def to_device(a, device):
    """A copy of array ``a`` on ``device`` (no copy when it is already there)."""
    if resolve_device(device) == "gpu":
        return _usable_cupy().asarray(a)
    return to_numpy(a)


def to_numpy(a):
    """``a`` as a NumPy array (copied back from the GPU when needed)."""
    return a.get() if is_cupy_array(a) else np.asarray(a)
