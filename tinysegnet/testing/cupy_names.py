"""The names CuPy exports, as the strict stand-in needs them: ``cupy_names.json`` beside this file.

``python -m tinysegnet.testing.cupy_names > tinysegnet/testing/cupy_names.json`` rewrites the
list from the installed CuPy; a test compares the two whenever CuPy is installed, so the
stand-in never lets through a name that the pinned CuPy lacks.
"""

import json
import os

PATH = os.path.join(os.path.dirname(__file__), "cupy_names.json")


# Python 3.12's buffer protocol (PEP 688) gives every buffer-exporting class these two: they
# follow the Python version, not CuPy's (seen: CuPy 14.2 on Python 3.12 has them, on 3.11 not).
_PYTHON_VERSION_DUNDERS = {"__buffer__", "__release_buffer__"}


def _public(obj):
    return sorted(n for n in dir(obj) if not n.startswith("_"))


def names_of(cupy):
    """{"version", "cupy", "ndarray", "lib.stride_tricks", "cuda"}: the public names of each."""
    import cupy.lib.stride_tricks  # noqa: F401  (a submodule: imported for its names)
    return {"version": cupy.__version__,
            "cupy": _public(cupy),
            # the class's own operators and conversions, not those every Python object inherits
            "ndarray": sorted(set(_public(cupy.ndarray)) | {n for c in cupy.ndarray.__mro__ if c is not object
                                                            for n in vars(c) if n.startswith("__")}
                               - _PYTHON_VERSION_DUNDERS),
            "lib.stride_tricks": _public(cupy.lib.stride_tricks),
            "cuda": _public(cupy.cuda)}


def load():
    with open(PATH) as f:
        return json.load(f)


if __name__ == "__main__":
    import cupy
    print(json.dumps(names_of(cupy), indent=1))
