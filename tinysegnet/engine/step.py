"""One SGD step on a batch, the unit :func:`~tinysegnet.engine.fit` repeats and anyone may call."""

import math

from .. import functional as F
from ..data.camvid import VOID


def train_step(model, optimizer, x, y, class_weights=None, ignore_index=VOID):
    """One step of SGD on a batch: forward, weighted cross-entropy over the valid pixels,
    backward, update. Returns the loss as a float (the step's one wait for the device).

    x (N, 3, H, W) float and y (N, H, W) class ids on the model's device; ``class_weights``
    (K,) or None; pixels labelled ``ignore_index`` count towards neither loss nor gradient.
    The model must be in training mode (``model.train()``). Raises FloatingPointError on a
    non-finite loss, before the update, so the weights stay those of the last good step.
    """
    # looked up on the package at each step, so functional.use() reaches the loss too
    loss, dlogits = F.softmax_cross_entropy(model.forward(x), y, class_weights, ignore_index)
    loss = float(loss)
    if not math.isfinite(loss):
        raise FloatingPointError(f"loss is {loss}")
    model.backward(dlogits)
    optimizer.step()
    return loss
