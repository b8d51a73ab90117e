"""The lessons' exercise checks: each runs a student's function on hidden cases and compares it
with tinysegnet's own implementation, which is switched off while the student's code runs.

Every check is ``check(student_function) -> message`` and raises :class:`ExerciseFailed` with
one message naming the case and the first wrong element. The cases are chosen to catch the
plausible wrong answers: non-square maps, odd sizes, kernels other than 3, batches of more
than one, logits of +-1000, class weights from 0.1 to 10, classes absent from a split,
all in float64 with distinct values (so no maximum is a tie unless a case wants one).

While the student's function runs, every function of ``tinysegnet.functional``,
``tinysegnet.metrics`` (but the helpers the statements hand out, ``boundary`` and
``dilate``) and ``tinysegnet.data.transforms`` raises instead of computing: calling the
library is not an answer. ``tests/test_exercises.py`` holds, for every check, the reference
solution and a catalogue of wrong answers that must all fail.
"""

import contextlib
import importlib
import pkgutil
import types

import numpy as np

from .. import functional as F
from .. import metrics
from ..data import transforms

GIVEN = {"boundary", "dilate", "_disk_offsets"}  # helpers the metrics exercise hands out (and theirs)


class ExerciseFailed(AssertionError):
    """A wrong answer: the message names the exercise, the case and what is wrong."""


def _library_functions():
    modules = [importlib.import_module(f"{F.__name__}.{m.name}") for m in pkgutil.iter_modules(F.__path__)]
    modules += [F, metrics, transforms]
    found = {}
    for module in modules:
        for name, value in vars(module).items():
            if (isinstance(value, types.FunctionType) and value.__module__.startswith("tinysegnet")
                    and name not in GIVEN and not value.__code__.co_freevars):
                found[id(value)] = value
    return list(found.values())


def _refusing(name):
    """A code object for ``name`` that raises (builtins only: it runs in the library's module)."""
    namespace = {}
    exec(f"def {name}(*args, **kwargs):\n"
         f"    raise RuntimeError('tinysegnet\\'s own {name} is switched off during this check: "
         f"write the computation yourself, with NumPy')", {}, namespace)
    return namespace[name].__code__


@contextlib.contextmanager
def library_off():
    """Make every library implementation raise while the block runs (however it was
    imported: the functions' code is swapped, not their names), then restore them."""
    functions = _library_functions()
    saved = [f.__code__ for f in functions]
    try:
        for f in functions:
            f.__code__ = _refusing(f.__name__)
        yield
    finally:
        for f, code in zip(functions, saved):
            f.__code__ = code


def _run(exercise, case, fn, *args):
    """The student's answer for one case, computed with the library off; any exception is
    reported as the exercise's failure."""
    with library_off():
        try:
            return fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
        except NotImplementedError:
            raise
        except Exception as e:
            raise ExerciseFailed(f"exercise {exercise}, {case}: your function raised "
                                 f"{type(e).__name__}: {e}") from None


def _compare(exercise, case, name, mine, expected, tol=1e-7):
    """Same shape, and every element within tol of the expected scale; else one message."""
    expected = np.asarray(expected, dtype=np.float64)
    try:
        mine = np.asarray(mine, dtype=np.float64)
    except (TypeError, ValueError):
        raise ExerciseFailed(f"exercise {exercise}, {case}: {name} is not an array of numbers "
                             f"({type(mine).__name__})") from None
    if mine.shape != expected.shape:
        raise ExerciseFailed(f"exercise {exercise}, {case}: {name} has shape {mine.shape}, "
                             f"expected {expected.shape}")
    scale = max(float(np.nanmax(np.abs(expected))) if np.isfinite(expected).any() else 1.0, 1e-12)
    wrong = ~(np.isclose(mine, expected, rtol=tol, atol=tol * scale) |
              (np.isnan(mine) & np.isnan(expected)))
    if wrong.any():
        index = tuple(int(i) for i in np.argwhere(wrong)[0])
        where = f"{name}[{', '.join(map(str, index))}]" if index else name
        raise ExerciseFailed(f"exercise {exercise}, {case}: {where} is {mine[index]:.6g}, "
                             f"expected {expected[index]:.6g} ({int(wrong.sum())} of "
                             f"{wrong.size} elements wrong)")


def _passed(exercise, cases):
    return f"exercise {exercise} passed ({cases} cases)"


def _distinct(rng, shape, scale=0.01):
    """float64 values all different from each other (no ties in a max)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) - n / 2.0).reshape(shape) * scale


def _describe(**shapes):
    return ", ".join(f"{k} {tuple(v.shape) if hasattr(v, 'shape') else v}" for k, v in shapes.items())


# -- lesson 2: convolution -------------------------------------------------------------------

CONV_CASES = [((2, 3, 5, 7), 4, 3), ((1, 2, 6, 4), 3, 5), ((3, 2, 4, 5), 2, 1), ((1, 1, 7, 3), 2, 7)]


def _conv_case(i, x_shape, f, k):
    rng = np.random.default_rng(100 + i)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((f, x_shape[1], k, k))
    b = rng.standard_normal(f)
    return x, w, b


def conv_forward(fn):
    """Exercise 2.1: ``fn(x, w, b) -> out``, x (N, C, H, W), w (F, C, k, k), b (F,), out
    (N, F, H, W): stride 1, zero padding (k - 1) / 2, as ``F.conv2d_forward``."""
    for i, (shape, f, k) in enumerate(CONV_CASES):
        x, w, b = _conv_case(i, shape, f, k)
        case = f"case {i + 1} ({_describe(x=x, w=w)})"
        _compare("2.1", case, "out", _run("2.1", case, fn, x, w, b), F.conv2d_forward(x, w, b)[0])
    return _passed("2.1", len(CONV_CASES))


def conv_dw(fn):
    """Exercise 2.2: ``fn(xpad, dout, k) -> dw`` (F, C, k, k), xpad the input padded by
    (k - 1) / 2 on each side, dout (N, F, H, W)."""
    for i, (shape, f, k) in enumerate(CONV_CASES):
        x, w, b = _conv_case(i, shape, f, k)
        out, cache = F.conv2d_forward(x, w, b)
        dout = np.random.default_rng(200 + i).standard_normal(out.shape)
        p = (k - 1) // 2
        xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        case = f"case {i + 1} ({_describe(x=x, w=w)})"
        _compare("2.2", case, "dw", _run("2.2", case, fn, xpad, dout, k), F.conv2d_backward(dout, cache)[1])
    return _passed("2.2", len(CONV_CASES))


def conv_dx(fn):
    """Exercise 2.3: ``fn(dout, w) -> dx`` (N, C, H, W), dout (N, F, H, W), w (F, C, k, k)."""
    for i, (shape, f, k) in enumerate(CONV_CASES):
        x, w, b = _conv_case(i, shape, f, k)
        out, cache = F.conv2d_forward(x, w, b)
        dout = np.random.default_rng(300 + i).standard_normal(out.shape)
        case = f"case {i + 1} ({_describe(dout=dout, w=w)})"
        _compare("2.3", case, "dx", _run("2.3", case, fn, dout, w), F.conv2d_backward(dout, cache)[0])
    return _passed("2.3", len(CONV_CASES))


# -- lesson 3: batch norm ----------------------------------------------------------------------

BN_SHAPES = [(3, 2, 4, 3), (2, 3, 5, 1), (1, 4, 3, 6)]


def _bn_case(i, shape):
    rng = np.random.default_rng(400 + i)
    C = shape[1]
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3, (1, C, 1, 1)) + rng.uniform(-2, 2, (1, C, 1, 1))
    gamma, beta = rng.uniform(0.5, 2, C) * rng.choice([-1, 1], C), rng.standard_normal(C)
    out, cache = F.batchnorm2d_forward(x, gamma, beta, np.zeros(C), np.ones(C), True)
    dout = rng.standard_normal(out.shape)
    xhat = (x - cache.mean[None, :, None, None]) * cache.inv_std[None, :, None, None]
    return x, gamma, cache, dout, xhat


def bn_dx(fn):
    """Exercise 3.1: ``fn(dout, xhat, gamma, inv_std) -> dx``, training mode (the batch's own
    mean and variance), all (N, C, H, W) but gamma and inv_std (C,)."""
    for i, shape in enumerate(BN_SHAPES):
        x, gamma, cache, dout, xhat = _bn_case(i, shape)
        case = f"case {i + 1} (x {shape})"
        _compare("3.1", case, "dx", _run("3.1", case, fn, dout, xhat, gamma, cache.inv_std),
                 F.batchnorm2d_backward(dout, cache)[0])
    return _passed("3.1", len(BN_SHAPES))


def bn_dparams(fn):
    """Exercise 3.2: ``fn(dout, xhat) -> (dgamma, dbeta)``, each (C,)."""
    for i, shape in enumerate(BN_SHAPES):
        x, gamma, cache, dout, xhat = _bn_case(i, shape)
        case = f"case {i + 1} (x {shape})"
        answer = _run("3.2", case, fn, dout, xhat)
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise ExerciseFailed(f"exercise 3.2, {case}: return the pair (dgamma, dbeta)")
        _, dgamma, dbeta = F.batchnorm2d_backward(dout, cache)
        _compare("3.2", case, "dgamma", answer[0], dgamma)
        _compare("3.2", case, "dbeta", answer[1], dbeta)
    return _passed("3.2", len(BN_SHAPES))


# -- lesson 4: pooling and unpooling -----------------------------------------------------------

POOL_SHAPES = [(2, 3, 5, 7), (1, 2, 6, 4), (1, 1, 3, 3), (2, 1, 4, 6)]


def _pool_case(i, shape):
    x = _distinct(np.random.default_rng(500 + i), shape)
    out, indices = F.maxpool2x2_forward(x)
    return x, out, indices


def maxpool_forward(fn):
    """Exercise 4.1: ``fn(x) -> (out, indices)``, 2x2 windows, stride 2, ceil mode; indices
    the position 0..3 of each maximum in its window (row-major), ties to the first."""
    cases = [_pool_case(i, s)[:1] for i, s in enumerate(POOL_SHAPES)]
    tie = np.zeros((1, 1, 2, 4))
    tie[0, 0] = [[1, 5, 2, 2], [5, 4, 2, 1]]  # two 5s, and 2s in the second window
    cases.append((tie,))
    for i, (x,) in enumerate(cases):
        case = f"case {i + 1} (x {x.shape}{', with ties' if i == len(cases) - 1 else ''})"
        answer = _run("4.1", case, fn, x)
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise ExerciseFailed(f"exercise 4.1, {case}: return the pair (out, indices)")
        out, indices = F.maxpool2x2_forward(x)
        _compare("4.1", case, "out", answer[0], out)
        _compare("4.1", case, "indices", answer[1], indices)
    return _passed("4.1", len(cases))


def maxpool_dx(fn):
    """Exercise 4.2: ``fn(dout, indices, input_shape) -> dx`` (input_shape)."""
    for i, shape in enumerate(POOL_SHAPES):
        x, out, indices = _pool_case(i, shape)
        dout = np.random.default_rng(600 + i).standard_normal(out.shape)
        case = f"case {i + 1} (x {shape})"
        _compare("4.2", case, "dx", _run("4.2", case, fn, dout, indices, shape),
                 F.maxpool2x2_backward(dout, indices, shape))
    return _passed("4.2", len(POOL_SHAPES))


def unpool_forward(fn):
    """Exercise 4.3: ``fn(values, indices, size) -> out`` (N, C, H, W) with size = (H, W)."""
    for i, shape in enumerate(POOL_SHAPES):
        x, out, indices = _pool_case(i, shape)
        values = np.random.default_rng(700 + i).standard_normal(out.shape)
        case = f"case {i + 1} (values {out.shape} -> {shape[2:]})"
        _compare("4.3", case, "out", _run("4.3", case, fn, values, indices, shape[2:]),
                 F.unpool2x2_forward(values, indices, shape[2:]))
    return _passed("4.3", len(POOL_SHAPES))


def unpool_dvalues(fn):
    """Exercise 4.4: ``fn(dout, indices) -> dvalues`` (shaped like indices), dout (N, C, H, W)."""
    for i, shape in enumerate(POOL_SHAPES):
        x, out, indices = _pool_case(i, shape)
        dout = np.random.default_rng(800 + i).standard_normal(shape)
        case = f"case {i + 1} (dout {shape})"
        _compare("4.4", case, "dvalues", _run("4.4", case, fn, dout, indices),
                 F.unpool2x2_backward(dout, indices))
    return _passed("4.4", len(POOL_SHAPES))


# -- lesson 5: loss and class balance ----------------------------------------------------------

def _loss_cases():
    rng = np.random.default_rng(900)
    cases = []
    for shape, K, scale in (((2, 3, 4), 4, 1.0), ((1, 5, 2), 3, 1000.0), ((3, 2, 3), 5, 30.0)):
        logits = rng.standard_normal((shape[0], K) + shape[1:]) * scale
        labels = rng.integers(0, K, shape)
        labels.flat[rng.choice(labels.size, labels.size // 3, replace=False)] = 9  # void
        weights = np.exp(rng.uniform(np.log(0.1), np.log(10), K))  # 0.1 .. 10
        cases.append((logits, labels, weights))
    return cases


def ce_grad(fn):
    """Exercise 5.1: ``fn(logits, labels, weights, ignore) -> dlogits`` of the weighted mean
    cross-entropy over valid pixels (label != ignore), as ``F.softmax_cross_entropy``."""
    cases = _loss_cases()
    for i, (logits, labels, weights) in enumerate(cases):
        case = f"case {i + 1} (logits {logits.shape}, |logits| up to {np.abs(logits).max():.0f})"
        _compare("5.1", case, "dlogits", _run("5.1", case, fn, logits, labels, weights, 9),
                 F.softmax_cross_entropy(logits, labels, weights, 9)[1])
    return _passed("5.1", len(cases))


def median_frequency(fn):
    """Exercise 5.2: ``fn(labels, n_classes, ignore) -> weights`` (n_classes,), median-frequency
    balancing; a class that never occurs weighs 0."""
    rng = np.random.default_rng(1000)
    cases = []
    for n, size, K in ((4, (6, 5), 4), (5, (3, 8), 6)):
        labels = rng.integers(0, K - 1, (n,) + size)  # the last class never occurs
        labels[0] = 0  # an image of one class: frequencies differ from global ones
        labels[1, :2] = 11  # void
        labels[2, 0, 0] = K - 2  # a class in one pixel of one image
        cases.append((labels, K))
    for i, (labels, K) in enumerate(cases):
        case = f"case {i + 1} (labels {labels.shape}, {K} classes)"
        _compare("5.2", case, "weights", _run("5.2", case, fn, labels, K, 11),
                 transforms.median_frequency_weights(labels, K, 11), tol=1e-6)
    return _passed("5.2", len(cases))


# -- lesson 8: metrics -------------------------------------------------------------------------

def _metric_cases():
    rng = np.random.default_rng(1100)
    labels = rng.integers(0, 4, (2, 5, 6))
    labels[0, 0] = 11  # void row
    labels[labels == 3] = 2  # class 3 absent from the truth...
    predictions = rng.integers(0, 5, (2, 5, 6))  # ... but predicted; class 4 only predicted too
    return [(predictions, labels, 5), (rng.integers(0, 3, (1, 4, 7)), rng.integers(0, 3, (1, 4, 7)), 3)]


def confusion(fn):
    """Exercise 8.1: ``fn(predictions, labels, n_classes, ignore) -> conf`` (n_classes,
    n_classes), conf[t, p] = pixels of true class t predicted as p, void pixels left out."""
    cases = _metric_cases()
    for i, (p, t, K) in enumerate(cases):
        case = f"case {i + 1} (labels {t.shape}, {K} classes)"
        _compare("8.1", case, "conf", _run("8.1", case, fn, p, t, K, 11),
                 metrics.confusion_matrix(p, t, K, 11))
    return _passed("8.1", len(cases))


def scores(fn):
    """Exercise 8.2: ``fn(conf) -> (G, C, mIoU)``; classes absent from the truth are left out
    of C's and mIoU's means."""
    cases = [metrics.confusion_matrix(p, t, K, 11) for p, t, K in _metric_cases()]
    cases.append(np.array([[5, 1, 0], [0, 0, 0], [2, 0, 7]]))
    for i, conf in enumerate(cases):
        case = f"case {i + 1} (conf {conf.shape}, rows {conf.sum(axis=1).tolist()})"
        answer = _run("8.2", case, fn, conf)
        if not isinstance(answer, tuple) or len(answer) != 3:
            raise ExerciseFailed(f"exercise 8.2, {case}: return (G, C, mIoU)")
        expected = metrics.scores(conf)
        for name, value in zip(("G", "C", "mIoU"), answer):
            _compare("8.2", case, name, value, expected[name])
    return _passed("8.2", len(cases))


def boundary_f1(fn):
    """Exercise 8.3: ``fn(prediction, label, n_classes, ignore) -> BF`` of one image (H, W)
    with ``metrics.boundary`` and ``metrics.dilate`` given; tolerance 0.75% of the diagonal."""
    label = np.zeros((120, 160), int)  # diagonal 200 px: a tolerance of 1.5 px
    label[:, 100:] = 1
    label[30:70, 20:60] = 2
    label[:5] = 11  # void
    shifted = np.zeros_like(label)
    shifted[:, 102:] = 1  # 2 px off: outside the tolerance
    shifted[30:70, 21:61] = 2  # 1 px off: inside
    partial = label.copy()
    partial[partial == 11] = 0
    partial[90:, 110:130] = 3  # a class only predicted
    cases = [(label.copy(), label, "a perfect prediction"), (shifted, label, "shifted boundaries"),
             (partial, label, "an extra class"), (np.zeros((120, 160), int), label, "one class everywhere")]
    for i, (p, t, what) in enumerate(cases):
        case = f"case {i + 1} ({what}, {t.shape[0]}x{t.shape[1]})"
        _compare("8.3", case, "BF", _run("8.3", case, fn, p, t, 4, 11),
                 metrics.boundary_f1(p, t, 4, 11), tol=1e-9)
    return _passed("8.3", len(cases))


# -- lesson 10: decoders -----------------------------------------------------------------------

def conv_transpose_backward(fn):
    """Exercise 10.1: ``fn(dout, x, w) -> (dx, dw)`` of the stride-2, padding-1 transposed
    convolution ``F.conv_transpose2d_forward(x, w, output_shape)``, w (C, F, 4, 4)."""
    shapes = [((2, 3, 4, 5), 2, (8, 10)), ((1, 2, 3, 3), 3, (5, 6)), ((1, 1, 5, 2), 2, (9, 3))]
    for i, (x_shape, f, size) in enumerate(shapes):
        rng = np.random.default_rng(1200 + i)
        x, w = rng.standard_normal(x_shape), rng.standard_normal((x_shape[1], f, 4, 4))
        out, cache = F.conv_transpose2d_forward(x, w, size)
        dout = rng.standard_normal(out.shape)
        case = f"case {i + 1} ({_describe(x=x, w=w)}, out {out.shape[2:]})"
        answer = _run("10.1", case, fn, dout, x, w)
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise ExerciseFailed(f"exercise 10.1, {case}: return the pair (dx, dw)")
        dx, dw = F.conv_transpose2d_backward(dout, cache)
        _compare("10.1", case, "dx", answer[0], dx)
        _compare("10.1", case, "dw", answer[1], dw)
    return _passed("10.1", len(shapes))


# -- lesson 11: Bayesian SegNet ----------------------------------------------------------------

class _Given:
    """A generator that hands out fixed uniform draws, so the library draws the mask the
    student's function is given."""

    def __init__(self, draws):
        self.draws = draws

    def random(self, shape, dtype):
        return self.draws.astype(dtype)


def dropout(forward, backward):
    """Exercise 11.1: ``forward(x, p, u) -> (out, keep)`` with u the uniform draws (shaped like
    x; an element is kept where u >= p) and ``backward(dout, keep, p) -> dx``: inverted
    dropout, as ``F.dropout_forward`` in training mode."""
    cases = [((2, 3, 4, 5), 0.3), ((1, 2, 3, 7), 0.5), ((3, 1, 2, 2), 0.8)]
    for i, (shape, p) in enumerate(cases):
        rng = np.random.default_rng(1300 + i)
        x, u, dout = rng.standard_normal(shape), rng.random(shape), rng.standard_normal(shape)
        out, cache = F.dropout_forward(x, p, True, _Given(u))
        case = f"case {i + 1} (x {shape}, p = {p})"
        answer = _run("11.1", case, forward, x, p, u)
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise ExerciseFailed(f"exercise 11.1, {case}: forward returns the pair (out, keep)")
        _compare("11.1", case, "out", answer[0], out)
        _compare("11.1", case, "keep", answer[1], cache.keep)
        _compare("11.1", case, "dx", _run("11.1", case, backward, dout, cache.keep, p),
                 F.dropout_backward(dout, cache))
    return _passed("11.1", len(cases))


# -- lesson 12: the capstone -------------------------------------------------------------------

def whole_model(implementations):
    """Exercise 12.1: SegNet-Basic (tiny, float64, training mode) run on ``implementations``
    (``{name: function}`` for ``functional.use``) gives the library's logits and loss, and its
    gradients for every parameter pass a numerical check against the library's forward pass."""
    from ..gradcheck import GradientCheckError, check_gradients
    from ..models import SegNetBasic

    cases = [((2, 3, 9, 10), 3), ((2, 3, 12, 7), 5)]
    for i, (shape, k) in enumerate(cases):
        case = f"case {i + 1} (SegNet-Basic of width 3 with {k}x{k} kernels, x {shape})"
        rng = np.random.default_rng(1400 + i)
        model = SegNetBasic(n_classes=3, width=3, kernel=k, seed=i).astype(np.float64).train()
        x = rng.standard_normal(shape)
        labels = rng.integers(0, 3, (shape[0],) + shape[2:])
        labels[0, 0, :2] = 7  # void
        weights = np.exp(rng.uniform(np.log(0.1), np.log(10), 3))
        expected = model.forward(x)
        expected_loss = float(F.softmax_cross_entropy(expected, labels, weights, 7)[0])
        with F.use(**implementations):
            try:
                logits = model.forward(x)
                loss, dlogits = F.softmax_cross_entropy(logits, labels, weights, 7)
                model.backward(dlogits)
            except NotImplementedError:
                raise
            except Exception as e:
                raise ExerciseFailed(f"exercise 12.1, {case}: your layers raised "
                                     f"{type(e).__name__}: {e}") from None
        _compare("12.1", case, "logits", logits, expected)
        _compare("12.1", case, "loss", float(loss), expected_loss)
        params = dict(model.named_parameters())
        grads = {name: p.grad for name, p in params.items()}

        def library_loss(**_):
            return F.softmax_cross_entropy(model.forward(x), labels, weights, 7)[0]
        try:
            check_gradients(library_loss, {n: p.data for n, p in params.items()}, grads)
        except GradientCheckError as e:
            raise ExerciseFailed(f"exercise 12.1, {case}: {e}") from None
    return _passed("12.1", len(cases))
