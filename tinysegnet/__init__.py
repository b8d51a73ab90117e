"""tinysegnet: SegNet written from scratch on NumPy, running unchanged on CuPy.

Start with ``tinysegnet.functional`` (every layer's forward and backward pass),
then ``tinysegnet.nn`` (thin layer objects) and ``tinysegnet.models``.
"""

from importlib import metadata as _metadata

try:  # the version pip installed (pyproject.toml's), not a second copy of it here
    __version__ = _metadata.version("tinysegnet")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"
