"""The capstone's glue: a student's layer functions, as the lessons define them, wrapped into
the signatures of ``tinysegnet.functional`` so that ``functional.use`` runs SegNet-Basic on
them. Only the arithmetic is the student's; the glue moves arguments and caches around."""

import numpy as np

from ..functional.loss import softmax_cross_entropy as library_loss


def library_signatures(conv_forward, conv_dw, conv_dx, bn_dx, bn_dparams, maxpool_forward,
                       maxpool_dx, unpool_forward, unpool_dvalues, ce_grad):
    """{name: function} for ``tinysegnet.functional.use``: the convolution, batch norm's
    backward pass, pooling, unpooling and the loss's gradient become the student's."""

    def conv2d_forward(x, w, b=None, backward=True):  # backward: the library's hint; a cache either way
        bias = np.zeros(w.shape[0]) if b is None else b
        return conv_forward(x, w, bias).astype(x.dtype), (x, w, b is not None)

    def conv2d_backward(dout, cache, need_dx=True):
        x, w, has_bias = cache
        p = (w.shape[2] - 1) // 2
        dw = conv_dw(np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))), dout, w.shape[2])
        dx = conv_dx(dout, w) if need_dx else None
        return dx, dw, dout.sum(axis=(0, 2, 3)) if has_bias else None

    def batchnorm2d_backward(dout, cache):  # the forward pass stays the library's
        scale = cache.inv_std[None, :, None, None]
        xhat = (cache.x - cache.mean[None, :, None, None]) * scale
        dgamma, dbeta = bn_dparams(dout, xhat)
        dx = (bn_dx(dout, xhat, cache.gamma, cache.inv_std) if cache.training
              else dout * cache.gamma[None, :, None, None] * scale)  # running statistics: constants
        return dx, dgamma, dbeta

    def maxpool2x2_forward(x):
        return maxpool_forward(x)

    def maxpool2x2_backward(dout, indices, input_shape):
        return maxpool_dx(dout, indices, tuple(input_shape))

    def unpool2x2_forward(x, indices, output_shape):
        return unpool_forward(x, indices, tuple(output_shape)[-2:])

    def unpool2x2_backward(dout, indices):
        return unpool_dvalues(dout, indices)

    def softmax_cross_entropy(logits, labels, class_weights=None, ignore_index=None):
        weights = np.ones(logits.shape[1]) if class_weights is None else class_weights
        ignore = -1 if ignore_index is None else ignore_index
        loss, _ = library_loss(logits, labels, class_weights, ignore_index)  # the value only
        return loss, ce_grad(logits, labels, weights, ignore).astype(logits.dtype)

    return dict(conv2d_forward=conv2d_forward, conv2d_backward=conv2d_backward,
                batchnorm2d_backward=batchnorm2d_backward, maxpool2x2_forward=maxpool2x2_forward,
                maxpool2x2_backward=maxpool2x2_backward, unpool2x2_forward=unpool2x2_forward,
                unpool2x2_backward=unpool2x2_backward, softmax_cross_entropy=softmax_cross_entropy)
