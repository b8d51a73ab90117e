"""Stochastic gradient descent with momentum and L2 weight decay (PyTorch's update rule).

For each parameter p with gradient g, velocity v (starting at 0)::

    g <- g + weight_decay * p
    v <- momentum * v + g
    p <- p - lr * v

On the GPU the three lines are one fused kernel per parameter (``functional.fused``), the
parameter and its velocity new arrays (without momentum, the first and last lines, the
parameter a new array); on the CPU they are updates in place. The same
arithmetic in the same order, so the two agree to the last bit in float64.
"""

import numpy as np

from .backend import device_of, to_device, xp_of
from .functional.fused import kernel


@kernel
def _momentum_step(xp, p, g, v, lr, momentum, weight_decay):
    """(v', p'): one step of the rule above for one parameter."""
    v = v * momentum + (g + weight_decay * p)
    return v, p - lr * v


@kernel
def _plain_step(xp, p, g, lr, weight_decay):
    """p': the rule without momentum (v is g) for one parameter."""
    return p - lr * (g + weight_decay * p)


class SGD:
    def __init__(self, parameters, lr, momentum=0.0, weight_decay=0.0):
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: need lr > 0, momentum >= 0, weight_decay >= 0; got lr={lr}, "
                             f"momentum={momentum}, weight_decay={weight_decay}")
        self.parameters = list(parameters)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity = [None] * len(self.parameters)

    def step(self):
        for i, p in enumerate(self.parameters):
            if p.grad is None:
                continue
            xp = xp_of(p.data, p.grad)
            if xp is not np and self.momentum:
                v = self.velocity[i]
                v = xp.zeros_like(p.data) if v is None else v  # momentum * 0 + g is g exactly
                self.velocity[i], p.data = _momentum_step(p.data, p.grad, v, self.lr, self.momentum,
                                                          self.weight_decay)
                continue
            if xp is not np:
                p.data = _plain_step(p.data, p.grad, self.lr, self.weight_decay)
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                if self.velocity[i] is None:
                    self.velocity[i] = g.copy() if g is p.grad else g
                else:
                    self.velocity[i] *= self.momentum
                    self.velocity[i] += g
                g = self.velocity[i]
            p.data -= self.lr * g

    def state_dict(self):
        """Velocities by parameter position (parameters without one yet are left out)."""
        return {f"velocity.{i}": v for i, v in enumerate(self.velocity) if v is not None}

    def load_state_dict(self, state):
        for i, p in enumerate(self.parameters):
            v = state.get(f"velocity.{i}")
            if v is not None and tuple(v.shape) != tuple(p.data.shape):
                raise ValueError(f"SGD.load_state_dict: velocity.{i} has shape {tuple(v.shape)}, "
                                 f"parameter {i} has {tuple(p.data.shape)}")
            self.velocity[i] = None if v is None else to_device(v, device_of(p.data)).astype(
                p.data.dtype, copy=True)
