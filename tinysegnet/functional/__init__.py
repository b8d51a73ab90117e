"""Every layer of SegNet as a pair of plain functions.

``*_forward(...)`` returns the output and whatever the backward pass needs (the
cache); ``*_backward(dout, cache)`` returns the gradients. Each docstring gives
the shapes and the formula. Arrays may be NumPy or CuPy: each function uses the
array module of its inputs (``tinysegnet.backend.xp_of``).

The layers of ``tinysegnet.nn`` and the training loop look these functions up on this
package each time they run, so :func:`use` swaps in your own implementations for every
model at once (the course's capstone trains SegNet-Basic on a student's layers that way)::

    with tinysegnet.functional.use(conv2d_forward=my_forward, conv2d_backward=my_backward):
        model.forward(x)
"""

import contextlib
import sys

from .activation import relu_backward, relu_forward
from .batchnorm import batchnorm2d_backward, batchnorm2d_forward
from .depthwise import depthwise_conv2d_backward, depthwise_conv2d_forward
from .dropout import dropout_backward, dropout_forward
from .conv import (conv2d_backward, conv2d_backward_reference, conv2d_forward,
                   conv2d_forward_reference)
from .loss import check_labels, softmax, softmax_cross_entropy
from .pooling import (maxpool2x2_backward, maxpool2x2_forward, unpool2x2_backward,
                      unpool2x2_forward)
from .upsampling import (add_backward, add_forward, bilinear_upsample_backward,
                         bilinear_upsample_forward, conv_transpose2d_backward,
                         conv_transpose2d_forward, resize_scores)

__all__ = [
    "conv2d_forward", "conv2d_backward", "conv2d_forward_reference", "conv2d_backward_reference",
    "batchnorm2d_forward", "batchnorm2d_backward",
    "relu_forward", "relu_backward", "dropout_forward", "dropout_backward",
    "maxpool2x2_forward", "maxpool2x2_backward", "unpool2x2_forward", "unpool2x2_backward",
    "softmax", "softmax_cross_entropy", "check_labels",
    # the decoder variants of the paper's Table 1
    "conv_transpose2d_forward", "conv_transpose2d_backward", "depthwise_conv2d_forward",
    "depthwise_conv2d_backward", "bilinear_upsample_forward", "bilinear_upsample_backward",
    "add_forward", "add_backward", "resize_scores",
]


@contextlib.contextmanager
def use(**implementations):
    """Replace functions of this package by ``name=function`` while the block runs, then
    restore the library's. A replacement must take the same arguments and return the same
    things as the function it replaces; its cache may be anything its own backward reads."""
    package = sys.modules[__name__]
    unknown = sorted(set(implementations) - set(__all__))
    if unknown:
        raise ValueError(f"use: no function {', '.join(unknown)} in tinysegnet.functional "
                         f"(see its __all__)")
    saved = {name: getattr(package, name) for name in implementations}
    try:
        for name, function in implementations.items():
            setattr(package, name, function)
        yield
    finally:
        for name, function in saved.items():
            setattr(package, name, function)
