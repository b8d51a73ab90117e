"""Numerical gradients by central differences, and the comparison that names what disagrees.

A backward pass is checked by comparing its gradients with

    df/dx[i] ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)

for every element i, where f is the scalar ``sum(forward(...) * dout)`` (so one
random ``dout`` checks the whole Jacobian-vector product) or the loss itself.
Run it in float64 on tiny shapes: in float32 the rounding error of the two
evaluations swamps their difference.

The measure is the largest elementwise relative error

    |a - b| / max(|a| + |b|, tiny)

A correct float64 backward usually lands below 1e-8; a wrong one near 1.
The limit is rounding: f is known to about 1e-16 * |f|, so a difference over 2h
has an absolute error of about noise = 10 * 2.2e-16 * max(|f|, 1) / h. An element is
only held to a relative ``tol`` where that is above the noise; ``check_gradients``
therefore uses ``tiny = noise / tol`` (about 2e-4 for |f| ~ 1, tol 1e-6), so smaller
elements are compared to within the noise itself. Keep values of order 1 so real
gradients stay well above it; a wrong backward pass errs by far more.
"""

import numpy as np

from .backend import to_numpy, xp_of

DEFAULT_STEP = 1e-5
DEFAULT_TOLERANCE = 1e-6
TINY = 1e-12


class GradientCheckError(AssertionError):
    """An analytic gradient that does not match the numerical one."""


def numerical_gradient(f, x, h=DEFAULT_STEP):
    """d f() / d x by central differences; ``f`` takes no arguments and returns a scalar.

    ``x`` is perturbed in place one element at a time and restored afterwards, so
    ``f`` should read ``x`` (a closure over the very array). Returns an array like ``x``.
    """
    if x.dtype != np.float64:
        raise ValueError(f"numerical_gradient: use float64 arrays, got {x.dtype} "
                         "(float32 rounding swamps the finite differences)")
    xp = xp_of(x)
    grad = xp.zeros_like(x)
    if not x.flags.c_contiguous:
        raise ValueError("numerical_gradient: x must be C-contiguous so it can be perturbed in place")
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(x.size):
        saved = float(flat_x[i])
        flat_x[i] = saved + h
        f_plus = float(f())
        flat_x[i] = saved - h
        f_minus = float(f())
        flat_x[i] = saved
        flat_grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def relative_error(a, b, tiny=TINY):
    """max over elements of |a - b| / max(|a| + |b|, tiny), as a float (0 for empty arrays)."""
    a, b = to_numpy(a), to_numpy(b)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), tiny)))


def assert_gradients_close(name, analytic, numeric, tol=DEFAULT_TOLERANCE, tiny=TINY):
    """Raise GradientCheckError naming ``name`` and the worst element if they disagree.

    Returns the relative error when they agree.
    """
    analytic, numeric = to_numpy(analytic), to_numpy(numeric)
    if analytic.shape != numeric.shape:
        raise GradientCheckError(f"{name}: analytic gradient has shape {analytic.shape}, "
                                 f"expected {numeric.shape}")
    err = np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), tiny)
    worst = float(err.max()) if err.size else 0.0
    if not worst <= tol:  # also catches NaN
        index = np.unravel_index(int(np.nanargmax(np.where(np.isnan(err), np.inf, err))),
                                 err.shape)
        raise GradientCheckError(
            f"{name}: relative error {worst:.2e} > {tol:.0e} at index {tuple(int(i) for i in index)}: "
            f"analytic {analytic[index]:.6g}, numeric {numeric[index]:.6g}")
    return worst


def check_gradients(f, inputs, analytic, dout=None, tol=DEFAULT_TOLERANCE, h=DEFAULT_STEP):
    """Check analytic gradients of ``f`` against central differences.

    f         function called as ``f(**inputs)``; returns an array (or a scalar loss)
    inputs    dict name -> float64 array, perturbed in place while checking
    analytic  dict name -> your gradient for that input (only these names are checked)
    dout      the upstream gradient the analytic ones were computed with; the checked
              scalar is ``sum(f(**inputs) * dout)``. Leave None when f returns a scalar.

    Returns ``{name: relative error}``; raises GradientCheckError on the first mismatch,
    naming the array and the element.
    """
    def scalar():
        out = f(**inputs)
        return out if dout is None else (out * dout).sum()

    noise = 10 * np.finfo(np.float64).eps * max(abs(float(scalar())), 1.0) / h
    errors = {}
    for name, grad in analytic.items():
        if name not in inputs:
            raise KeyError(f"check_gradients: no input named {name!r} (inputs: {sorted(inputs)})")
        numeric = numerical_gradient(scalar, inputs[name], h)
        errors[name] = assert_gradients_close(name, grad, numeric, tol, tiny=noise / tol)
    return errors
