"""The training step replayed from a CUDA graph: a few launches per step instead of ~500.

Why: on a GPU every array operation is a kernel launch that costs the host some
microseconds, and a SegNet-Basic step at the CamVid protocol makes 486 of them, so small
maps wait on the host, not on the device. CUDA stream capture records a step's launches
once; the graph it returns replays all of them in one call.

A graph replays the recorded kernels on the memory they were recorded with, and none of the
Python that recorded them runs again. So :class:`GraphedStep`

* copies each batch into input buffers of its own, and holds the class weights it records;
* records under a memory pool of its own, so that no array made later is ever handed memory
  the graph writes (CuPy's default pool would hand out what the step freed), and with
  scratch arrays of its own (``functional.scratch.unshared``: a shared buffer, grown by a
  later call, would be freed under the graph);
* points the parameters and velocities back at their own arrays after every update (the
  GPU's SGD writes new ones), with the new values copied into them (in a graph, where the
  loss is finite), so that every graph and every eager step reads the state the last step
  left, and a non-finite loss leaves the weights as they were, as :func:`train_step` does;
* reads the loss from the device after the replay: one wait per step, as in train_step.

The first step at an input shape runs eagerly (it creates the velocities and compiles the
kernels), the second records and replays; a graph is kept per shape (an epoch's last,
smaller batch has its own) and dropped when the optimiser's settings change (they are baked
into the kernels as numbers). Replays compute what eager steps compute, kernel for kernel.
Models with dropout are refused: a graph would replay one set of masks for ever.
"""

import contextlib
import math

import numpy as np

from .. import functional as F, nn
from ..functional import scratch
from ..backend import xp_of
from ..data.camvid import VOID
from .step import train_step


class GraphedStep:
    """``step(x, y) -> loss``: :func:`train_step` for ``model`` and ``optimizer``, replayed
    from CUDA graphs (CuPy only).

    x (N, 3, H, W) float and y (N, H, W) class ids on the GPU; ``class_weights`` (K,) on the
    GPU or None; pixels labelled ``ignore_index`` count towards neither loss nor gradient.
    Raises FloatingPointError on a non-finite loss, the weights left as they were.
    """

    def __init__(self, model, optimizer, class_weights=None, ignore_index=VOID):
        if nn.dropout_layers(model):
            raise ValueError("GraphedStep: the model has dropout layers, whose masks a CUDA graph "
                             "would replay unchanged at every step; train it with train_step")
        self.model, self.optimizer = model, optimizer
        self.class_weights, self.ignore_index = class_weights, ignore_index
        self._graphs = {}  # input shapes and dtypes -> _Recorded, or None after the eager step
        self._settings = None

    def __call__(self, x, y):
        if xp_of(x, y) is np:
            raise ValueError("GraphedStep: CUDA graphs need the model on the GPU; train_step runs anywhere")
        if not self.model.training:
            raise ValueError("GraphedStep: the model is in eval mode; call model.train() first")
        opt = self.optimizer
        settings = (opt.lr, opt.momentum, opt.weight_decay)
        if settings != self._settings:
            self._graphs.clear()
            self._settings = settings
        key = (x.shape, x.dtype.str, y.shape, y.dtype.str)
        if key not in self._graphs:
            self._graphs[key] = None
            with _kept_in_place(opt):
                return train_step(self.model, opt, x, y, self.class_weights, self.ignore_index)
        if self._graphs[key] is None:
            self._graphs[key] = _Recorded(self.model, opt, x, y, self.class_weights, self.ignore_index)
        recorded = self._graphs[key]
        recorded.x[...] = x
        recorded.y[...] = y
        recorded.graph.launch()
        loss = float(recorded.loss)
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss is {loss}")
        return loss


@contextlib.contextmanager
def _kept_in_place(optimizer, where=None):
    """The optimiser's parameters and velocities keep their arrays through the body: what the
    body binds to their names is copied into those arrays (where ``where()``, a device
    boolean, holds) and the names point back at them, however the body ends. A velocity the
    body creates is kept as it is."""
    parameters, velocities = optimizer.parameters, optimizer.velocity
    arrays, velocity_arrays = [p.data for p in parameters], list(velocities)
    try:
        yield
        masked = {} if where is None else dict(where=where())  # copyto's where=None copies nothing
        for p, data in zip(parameters, arrays):
            if p.data is not data:
                xp_of(data).copyto(data, p.data, **masked)
        for new, velocity in zip(velocities, velocity_arrays):
            if velocity is not None and new is not velocity:
                xp_of(velocity).copyto(velocity, new, **masked)
    finally:
        for p, data in zip(parameters, arrays):
            p.data = data
        velocities[:] = [new if old is None else old for new, old in zip(velocities, velocity_arrays)]


class _Recorded:
    """One recorded step: the graph, its input buffers, its loss, and the pool and stream
    whose memory and recording it holds."""

    def __init__(self, model, optimizer, x, y, class_weights, ignore_index):
        xp = xp_of(x, y)
        self.pool, self.stream = xp.cuda.MemoryPool(), xp.cuda.Stream(non_blocking=True)
        xp.cuda.Device().synchronize()  # the new stream does not wait for work queued before
        if optimizer.momentum and any(v is None for v in optimizer.velocity):
            raise RuntimeError("GraphedStep: a parameter has no velocity after the eager step "
                               "(it had no gradient); a graph would restart its momentum at every step")
        with xp.cuda.using_allocator(self.pool.malloc), self.stream, scratch.unshared():
            # Holding the batch while recording: no recorded kernel runs then, but the labels
            # the loss gathers by are real ones (the stand-in computes as it records).
            self.x, self.y = x.copy(), y.copy()
            self.stream.begin_capture()
            try:
                with _kept_in_place(optimizer, lambda: xp.isfinite(loss)):
                    loss, dlogits = F.softmax_cross_entropy(model.forward(self.x), self.y, class_weights,
                                                            ignore_index)
                    model.backward(dlogits)
                    optimizer.step()
            finally:
                self.graph = self.stream.end_capture()
        self.loss, self.class_weights = loss, class_weights
