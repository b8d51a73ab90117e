"""Winograd's F(4x4, 3x3): ``conv_winograd``'s code with 4x4 output tiles (its docstring says
why and what changes), a method of its own for ``conv.choose_method`` to pick."""

from . import conv_winograd


def conv_forward(x, w, pad):
    """out (N, F, Ho, Wo) of x (N, C, H, W) and w (F, C, 3, 3)."""
    return conv_winograd.conv_forward(x, w, pad, m=4)


def conv_backward(dout, x, w, pad, need_dx):
    """(dx or None, dw) for ``out = conv_forward(x, w, pad)`` and dout (N, F, Ho, Wo)."""
    return conv_winograd.conv_backward(dout, x, w, pad, need_dx, m=4)
