"""Every layer of SegNet as a pair of plain functions.

``*_forward(...)`` returns the output and whatever the backward pass needs (the
cache); ``*_backward(dout, cache)`` returns the gradients. Each docstring gives
the shapes and the formula. Arrays may be NumPy or CuPy: each function uses the
array module of its inputs (``tinysegnet.backend.xp_of``).
"""

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
