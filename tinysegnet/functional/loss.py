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

from ..backend import xp_of
from ._checks import require_float, require_ndim


def softmax_cross_entropy(logits, labels, class_weights=None, ignore_index=None):
    """Returns ``(loss, dlogits)``: loss a Python float, dlogits shaped like logits."""
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

    valid = labels != ignore_index if ignore_index is not None else xp.ones(labels.shape, bool)
    targets = xp.where(valid, labels, 0)
    if labels.size and (int(targets.min()) < 0 or int(targets.max()) >= K):
        bad = labels[valid & ((labels < 0) | (labels >= K))]
        raise ValueError(f"{fn}: label {int(bad[0])} is outside [0, {K}) and is not the "
                         f"ignore label {ignore_index}")

    shifted = logits - logits.max(axis=1, keepdims=True)
    log_z = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_z
    log_p_true = xp.take_along_axis(log_p, targets[:, None].astype(xp.intp), axis=1)[:, 0]

    pixel_weight = valid.astype(logits.dtype)
    if class_weights is not None:
        pixel_weight *= class_weights.astype(logits.dtype, copy=False)[targets]
    n_valid = max(int(valid.sum()), 1)
    loss = float(-(pixel_weight * log_p_true).sum() / n_valid)

    onehot = xp.arange(K)[None, :, None, None] == targets[:, None]
    dlogits = xp.exp(log_p) - onehot
    dlogits *= (pixel_weight / n_valid)[:, None]
    return loss, dlogits
