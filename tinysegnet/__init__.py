"""tinysegnet: SegNet written from scratch on NumPy, running unchanged on CuPy.

Start with ``tinysegnet.functional`` (every layer's forward and backward pass),
then ``tinysegnet.nn`` (thin layer objects) and ``tinysegnet.models``.
"""

__version__ = "0.1.0"
