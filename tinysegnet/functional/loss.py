"""Per-pixel softmax cross-entropy with class weights and an ignored (void) label.

Shapes::

    logits   (N, K, H, W)   unnormalised class scores
    labels   (N, H, W)      integer class ids in [0, K), or ignore_index
    weights  (K,)           optional class weights w (median-frequency balancing, say)

    p = softmax(logits) over axis 1, computed as exp(z - logsumexp(z)) for stability
    loss = sum_{valid pixels} w[y] * (-log p[y]) / (number of valid pixels)
    dlogits = w[y] * (p - onehot(y)) / (number of valid pixels)   (0 at ignored pixels)

Dividing by the number of valid pixels is what Caffe's SoftmaxWithLoss (SegNet's
own loss) and Chainer do. PyTorch's ``cross_entropy(weight=...)`` divides by the sum
of the weights of the valid pixels instead, so the two differ by that factor.
"""

import numpy as np

from ..backend import xp_of
from ._checks import require_float, require_ndim


def check_labels(labels, n_classes, ignore_index=None):
    """Raise ValueError naming the first label outside [0, n_classes) that is not ignore_index.

    NumPy labels only: on a GPU the check would make the host wait for the device, so
    callers check labels on the host, where they start, before moving them.
    """
    bad = (labels < 0) | (labels >= n_classes)
    if ignore_index is not None:
        bad &= labels != ignore_index
    if bad.any():
        raise ValueError(f"softmax_cross_entropy: label {int(labels[bad][0])} is outside "
                         f"[0, {n_classes}) and is not the ignore label {ignore_index}")


def softmax(logits):
    """Class probabilities (N, K, H, W) from logits (N, K, H, W): exp(z_k) / sum_j exp(z_j),
    computed from z - max_k z so that no exponent overflows."""
    require_ndim("softmax", "logits", logits, 4, "(N, K, H, W)")
    require_float("softmax", "logits", logits)
    xp = xp_of(logits)
    e = xp.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, labels, class_weights=None, ignore_index=None):
    """Returns ``(loss, dlogits)``: loss a 0-d array (``float(loss)`` for the number; on a
    GPU that waits for the device, so do it once per step), dlogits shaped like logits.

    NumPy labels are checked (:func:`check_labels`); device labels must be checked by the
    caller before they are moved, since an out-of-range label would index out of bounds.
    """
    fn = "softmax_cross_entropy"
    require_ndim(fn, "logits", logits, 4, "(N, K, H, W)")
    require_float(fn, "logits", logits)
    xp = xp_of(logits, labels, class_weights)
    N, K, H, W = logits.shape
    if labels.shape != (N, H, W):
        raise ValueError(f"{fn}: labels {tuple(labels.shape)} must be (N, H, W) = {(N, H, W)} "
                         f"for logits {tuple(logits.shape)}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{fn}: labels must be integers, got dtype {labels.dtype}")
    if class_weights is not None and class_weights.shape != (K,):
        raise ValueError(f"{fn}: class_weights must have shape ({K},), "
                         f"got {tuple(class_weights.shape)}")
    if xp is np:
        check_labels(labels, K, ignore_index)

    valid = labels != ignore_index if ignore_index is not None else xp.ones(labels.shape, bool)
    targets = xp.where(valid, labels, 0).astype(xp.intp)

    shifted = logits - logits.max(axis=1, keepdims=True)
    log_z = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_z
    log_p_true = xp.take_along_axis(log_p, targets[:, None], axis=1)[:, 0]

    pixel_weight = valid.astype(logits.dtype)
    if class_weights is not None:
        pixel_weight *= class_weights.astype(logits.dtype, copy=False)[targets]
    # Kept on the device: reading the count back would make the host wait every step.
    n_valid = xp.maximum(valid.sum(), 1).astype(logits.dtype)
    loss = -(pixel_weight * log_p_true).sum() / n_valid

    onehot = xp.arange(K)[None, :, None, None] == targets[:, None]
    dlogits = xp.exp(log_p) - onehot
    dlogits *= (pixel_weight / n_valid)[:, None]
    return loss, dlogits
