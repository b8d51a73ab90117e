"""Batch normalisation over the channels of an NCHW tensor: forward and backward.

Shapes::

    x, out                           (N, C, H, W)
    gamma, beta                      (C,)   scale and shift
    running_mean, running_var        (C,)   updated in place while training

With m = N * H * W values per channel, training mode normalises by the batch::

    mu = mean(x),  var = mean((x - mu)^2)          (biased, per channel)
    xhat = (x - mu) / sqrt(var + eps)
    out = gamma * xhat + beta
    running_mean <- (1 - momentum) * running_mean + momentum * mu
    running_var  <- (1 - momentum) * running_var  + momentum * var * m / (m - 1)

(PyTorch's convention: the biased variance normalises, the unbiased one enters the
running average). Inference mode uses the running statistics instead of mu and var.
"""

from typing import NamedTuple

import numpy as np

from ..backend import xp_of
from ._checks import require_float, require_ndim
from .batch_split import run
from .fused import kernel


class BatchNormCache(NamedTuple):
    """What batch norm's backward pass needs (xhat is rebuilt from these, not stored).

    x         (N, C, H, W)  the input
    mean      (C,)          the mean that normalised x: the batch's, or the running one
    inv_std   (C,)          1 / sqrt(var + eps) for that variance
    gamma     (C,)          the scale
    training  bool          batch statistics (they depend on x) or running ones (constants)
    """
    x: object
    mean: object
    inv_std: object
    gamma: object
    training: bool


def _per_channel(v):
    return v[None, :, None, None]


def batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training,
                        momentum=0.1, eps=1e-5):
    """Returns ``(out, cache)``, the cache a :class:`BatchNormCache`; formulas in the module
    docstring."""
    require_ndim("batchnorm2d_forward", "x", x, 4, "(N, C, H, W)")
    require_float("batchnorm2d_forward", "x", x)
    C = x.shape[1]
    for name, v in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if v.shape != (C,):
            raise ValueError(f"batchnorm2d_forward: {name} must have shape ({C},) for x "
                             f"{tuple(x.shape)}, got {tuple(v.shape)}")
    xp = xp_of(x, gamma, beta, running_mean, running_var)
    if training:
        m = x.size // C
        if m < 2:
            raise ValueError(f"batchnorm2d_forward: training needs more than one value per "
                             f"channel, got x {tuple(x.shape)}")
        mean = x.mean(axis=(0, 2, 3))
        if xp is np:
            squares = xp.empty_like(x)

            def centred_squares(s):
                xp.subtract(x[s], _per_channel(mean), out=squares[s])
                squares[s] *= squares[s]
            run(centred_squares, x)
        else:
            squares = _centred_squares(x, _per_channel(mean))
        var = squares.mean(axis=(0, 2, 3))
        inv_std, scale, shift, new_mean, new_var = _statistics(
            mean, var, gamma, beta, running_mean, running_var, momentum, momentum * m / (m - 1), eps)
        running_mean[...] = new_mean
        running_var[...] = new_var
    else:
        mean = running_mean.astype(x.dtype, copy=False)
        inv_std, scale, shift = _normalisation(mean, running_var.astype(x.dtype, copy=False),
                                               gamma, beta, eps)
    # out = gamma * (x - mean) * inv_std + beta, folded into one scale and one shift per
    # channel: two passes over x instead of four, and one output array instead of four.
    scale, shift = _per_channel(scale), _per_channel(shift)
    if xp is np:
        out = xp.empty_like(x)

        def normalise(s):
            xp.multiply(x[s], scale, out=out[s])
            out[s] += shift
        run(normalise, x)
    else:
        out = _affine(x, scale, shift)
    return out, BatchNormCache(x, mean, inv_std, gamma, training)


def batchnorm2d_backward(dout, cache):
    """Returns ``(dx, dgamma, dbeta)``.

    ::

        dbeta  = sum dout                       dgamma = sum dout * xhat
        training:  dx = inv_std / m * (m * g - sum(g) - xhat * sum(g * xhat)),  g = dout * gamma
        inference: dx = dout * gamma * inv_std  (the statistics are constants)

    (sums per channel over n, h, w; xhat is recomputed from the cached x). The training
    formula is what remains of the chain rule through mu and var once their own gradients
    are substituted in.
    """
    x, mean, inv_std, gamma, training = cache
    xp = xp_of(dout, x)
    m = dout.size // dout.shape[1]
    centre, spread = _per_channel(mean), _per_channel(inv_std)
    if xp is np:
        xhat, products = xp.empty_like(x), xp.empty_like(x)

        def normalised(s):
            xp.subtract(x[s], centre, out=xhat[s])
            xhat[s] *= spread
            xp.multiply(dout[s], xhat[s], out=products[s])
        run(normalised, x)
    else:
        products = _normalised_product(dout, x, centre, spread)
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = products.sum(axis=(0, 2, 3))
    scale = _per_channel(gamma * inv_std)
    if not training:
        if xp is not np:
            return dout * scale, dgamma, dbeta
        dx = products  # its values are summed: the array takes dx's
        run(lambda s: xp.multiply(dout[s], scale, out=dx[s]), x)
        return dx, dgamma, dbeta
    # With g = dout * gamma: sum(g) = gamma * dbeta and sum(g * xhat) = gamma * dgamma, so
    # dx = gamma * inv_std * (dout - dbeta / m - xhat * dgamma / m), built in dx and xhat.
    mean_dout, mean_slope = _per_channel(dbeta / m), _per_channel(dgamma / m)
    if xp is not np:
        return _input_gradient(dout, x, centre, spread, mean_dout, mean_slope, scale), dgamma, dbeta
    dx = products

    def gradient(s):
        xp.subtract(dout[s], mean_dout, out=dx[s])
        xhat[s] *= mean_slope
        dx[s] -= xhat[s]
        dx[s] *= scale
    run(gradient, x)
    return dx, dgamma, dbeta


# The GPU's kernels (``fused``): each one launch, and on NumPy the same arithmetic in the same
# order as the CPU's passes above, so the two paths agree to the last bit in float64.

@kernel
def _centred_squares(xp, x, mean):
    centred = x - mean
    return centred * centred


def _scale_and_shift(xp, mean, var, gamma, beta, eps):
    """(inv_std, scale, shift) per channel: plain code, traced into either kernel below."""
    inv_std = 1 / xp.sqrt(var + eps)
    scale = gamma * inv_std
    return inv_std, scale, beta - mean * scale


@kernel
def _statistics(xp, mean, var, gamma, beta, running_mean, running_var, momentum, var_weight, eps):
    """Per channel: (inv_std, scale, shift, running_mean', running_var'); var_weight is
    momentum * m / (m - 1)."""
    return (*_scale_and_shift(xp, mean, var, gamma, beta, eps),
            running_mean * (1 - momentum) + momentum * mean, running_var * (1 - momentum) + var_weight * var)


@kernel
def _normalisation(xp, mean, var, gamma, beta, eps):
    """Per channel: (inv_std, scale, shift) from given statistics."""
    return _scale_and_shift(xp, mean, var, gamma, beta, eps)


@kernel
def _affine(xp, x, scale, shift):
    return x * scale + shift


@kernel
def _normalised_product(xp, dout, x, mean, inv_std):
    return dout * ((x - mean) * inv_std)


@kernel
def _input_gradient(xp, dout, x, mean, inv_std, mean_dout, mean_slope, scale):
    return ((dout - mean_dout) - ((x - mean) * inv_std) * mean_slope) * scale


def batchnorm2d_fold(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    """``(w', b')``: a convolution (w (F, C, k, k), b (F,) or None) followed by inference-mode
    batch norm, as one convolution. With s = gamma / sqrt(running_var + eps)::

        w'[f] = s[f] w[f],   b'[f] = s[f] (b[f] - running_mean[f]) + beta[f]

    exactly the two layers' composition (one pass over the activation instead of three).
    """
    xp = xp_of(w, gamma, beta, running_mean, running_var)
    scale = (gamma / xp.sqrt(running_var.astype(w.dtype, copy=False) + eps)).astype(w.dtype, copy=False)
    shift = -running_mean.astype(w.dtype, copy=False) if b is None else b - running_mean
    return w * scale[:, None, None, None], (scale * shift + beta).astype(w.dtype, copy=False)
