"""The lessons' exercise checks: a student's function run on cases drawn from a seed, its
results compared with tinysegnet's own implementation.

Each exercise is an :class:`Exercise`: the functions a notebook defines and the cases that
test them. Cases are chosen to catch the plausible wrong answers (non-square maps, odd sizes,
kernels other than 3, batches, logits of +-1000, class weights from 0.1 to 10, classes absent
from the truth, from the prediction or from both, an even number of classes, batches with
and without void, edges 1-1.5 px apart, zeros in the input), all in float64 with a
tolerance (1e-10 of the expected scale) that float32 arithmetic cannot meet. A check also
fails an answer that writes into its inputs (each input is compared before and after) and one
that returns a buffer it reuses (the first case is called again after the others, and its
first result must still be right).

The same checks run two ways:

- in a notebook, ``checks.conv_forward(conv_forward)``: in this process, on a fresh seed each
  time, with tinysegnet's own implementation switched off while the student's function runs
  (feedback for the student; not a sandbox);
- when grading (:mod:`tinysegnet.course.grading`): the student's functions run in a sandboxed
  worker that has no tinysegnet, SciPy or PyTorch, the cases come from the instructor's seed,
  and the comparison happens here, in a process the student's code never ran in.

Every failure raises :class:`ExerciseFailed` with one message naming the exercise, the case
and the first wrong element. ``tests/course/test_exercises.py`` holds, for every check, the
lessons' solution and a catalogue of wrong answers that must all fail.
"""

import contextlib
import dataclasses
import importlib
import pkgutil
import types

import numpy as np

from .. import functional as F
from .. import metrics
from ..functional import conv_winograd
from ..data import transforms
from . import worker

GIVEN = {"boundary", "dilate", "_disk_offsets"}  # helpers the metrics exercise hands out (and theirs)
TOLERANCE = 1e-10  # of the expected scale: float64 answers meet it, float32 ones cannot
RULE = ("Use NumPy and Python's standard library only: tinysegnet's own functions, SciPy and "
        "PyTorch are not available to your code while it is graded.")


class ExerciseFailed(AssertionError):
    """A wrong answer: the message names the exercise, the case and what is wrong."""


class LayerError(Exception):
    """A student's layer failed inside the capstone's model (it raised, or wrote into its input)."""


@dataclasses.dataclass
class Case:
    """One call of a student's function: ``function(*args)`` should give ``expected`` (an
    array, or a tuple whose parts are named by ``names``)."""
    label: str
    function: str
    args: tuple
    expected: object
    names: tuple = ("out",)
    tol: float = TOLERANCE


@dataclasses.dataclass
class Exercise:
    """An exercise: its number, the functions the notebook defines (name: parameter names),
    and ``cases(rng) -> [Case]``."""
    number: str
    functions: dict
    cases: object


# -- comparing -------------------------------------------------------------------------------

def _fail(exercise, case, text):
    raise ExerciseFailed(f"exercise {exercise}, {case}: {text}")


def _compare(exercise, case, name, mine, expected, tol=TOLERANCE):
    """Same shape, and every element within tol of the expected scale; else one message."""
    expected = np.asarray(expected, dtype=np.float64)
    try:
        mine_array = np.asarray(mine)
        if mine_array.dtype.kind not in "biuf":
            raise TypeError
        values = mine_array.astype(np.float64)
    except (TypeError, ValueError):
        _fail(exercise, case, f"{name} is not an array of numbers ({type(mine).__name__})")
    if values.shape != expected.shape:
        _fail(exercise, case, f"{name} has shape {values.shape}, expected {expected.shape}")
    scale = max(float(np.nanmax(np.abs(expected))) if np.isfinite(expected).any() else 1.0, 1e-12)
    wrong = ~(np.isclose(values, expected, rtol=tol, atol=tol * scale) |
              (np.isnan(values) & np.isnan(expected)))
    if wrong.any():
        index = tuple(int(i) for i in np.argwhere(wrong)[0])
        where = f"{name}[{', '.join(map(str, index))}]" if index else name
        off = np.abs(values - expected)[wrong]
        error = float(off[np.isfinite(off)].max()) / scale if np.isfinite(off).any() else np.inf
        hint = (f"; the errors, up to {error:.0e} of the scale, are float32's rounding: compute in "
                f"float64" if error < 1e-5 else "")
        _fail(exercise, case, f"{where} is {values[index]:.10g}, expected {expected[index]:.10g} "
                              f"({int(wrong.sum())} of {wrong.size} elements wrong{hint})")


def _parts(exercise, case, value, names):
    """The parts of an answer asked to return ``len(names)`` things: any sequence of that
    length, or an array whose first axis has that length."""
    if len(names) == 1:
        return [value]
    if isinstance(value, (list, tuple)) and len(value) == len(names):
        return list(value)
    if isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == len(names):
        return list(value)
    _fail(exercise, case, f"return {len(names)} things, ({', '.join(names)})")


def draw(exercise, rng):
    """The cases of ``exercise`` from ``rng``, then the first again with other values: a
    function that hands back one buffer it reuses shows its first result changed."""
    cases, more = exercise.cases(rng), exercise.cases(rng)
    again = [c for c in more if c.function == cases[0].function][0]
    return cases + [dataclasses.replace(again, label=f"{cases[0].label.split(' (')[0]}, again with other values")]


def verify(exercise, cases, replies):
    """Raise ExerciseFailed (or NotImplementedError for a stub) unless ``replies`` (one per
    case of :func:`draw`) are right; the pass message otherwise."""
    number = exercise.number
    for case, reply in zip(cases, replies):
        if reply.not_attempted:
            raise NotImplementedError(f"exercise {number}: {reply.error}")
        if reply.error is not None:
            _fail(number, case.label, reply.error)
        parameters = exercise.functions[case.function]
        for j, (before, after) in enumerate(zip(case.args, reply.after)):
            if isinstance(before, np.ndarray) and not np.array_equal(before, after, equal_nan=True):
                _fail(number, case.label, f"your {case.function}() wrote into its input "
                                          f"{parameters[j]}: leave the inputs as they were given")
    for i, (case, reply) in enumerate(zip(cases, replies)):
        try:
            _check_value(number, case, reply.value)
        except ExerciseFailed:
            if i == 0 and replies[-1].error is None and _right(number, cases[-1], replies[-1].value):
                _fail(number, case.label, f"its result changed when {case.function}() was called "
                                          f"again: return a new array each call, not one you reuse")
            raise
    return f"exercise {number} passed ({len(cases) - 1} cases)"


def _check_value(number, case, value):
    expected = case.expected if len(case.names) > 1 else (case.expected,)
    for name, mine, right in zip(case.names, _parts(number, case.label, value, case.names), expected):
        _compare(number, case.label, name, mine, right, case.tol)


def _right(number, case, value):
    try:
        _check_value(number, case, value)
        return True
    except ExerciseFailed:
        return False


def requests(cases):
    """The calls a check makes, in order."""
    return [(c.function, c.args) for c in cases]


# -- running in this process (the notebooks' check cells) -------------------------------------

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
    imported: the functions' code is swapped, not their names), then restore them. This is
    feedback in a notebook, not a defence: grading runs submissions where there is no library."""
    functions = _library_functions()
    saved = [f.__code__ for f in functions]
    try:
        for f in functions:
            f.__code__ = _refusing(f.__name__)
        yield
    finally:
        for f, code in zip(functions, saved):
            f.__code__ = code


def _copied(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def run_here(exercise, functions, seed=None):
    """Check ``functions`` ({name: function}) in this process on cases from ``seed`` (fresh
    entropy when None)."""
    cases = draw(exercise, np.random.default_rng(seed))
    with library_off():
        replies = worker.call_all(functions, [(name, _copied(args)) for name, args in requests(cases)])
    return verify(exercise, cases, replies)


# -- case helpers --------------------------------------------------------------------------------

def _distinct(rng, shape, scale=0.01):
    """float64 values all different from each other (no ties in a max)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) - n / 2.0).reshape(shape) * scale


def _describe(**shapes):
    return ", ".join(f"{k} {tuple(v.shape) if hasattr(v, 'shape') else v}" for k, v in shapes.items())


# -- lesson 2: convolution -------------------------------------------------------------------

CONV_SHAPES = [((2, 3, 5, 7), 4, 3), ((1, 2, 6, 4), 3, 5), ((3, 2, 4, 5), 2, 1), ((1, 1, 7, 3), 2, 7)]


def _conv_cases(rng):
    for i, (x_shape, f, k) in enumerate(CONV_SHAPES):
        x = rng.standard_normal(x_shape)
        w = rng.standard_normal((f, x_shape[1], k, k))
        yield i, x, w, rng.standard_normal(f)


def _conv_forward_cases(rng):
    return [Case(f"case {i + 1} ({_describe(x=x, w=w)})", "conv_forward", (x, w, b),
                 F.conv2d_forward(x, w, b)[0]) for i, x, w, b in _conv_cases(rng)]


def _conv_dw_cases(rng):
    cases = []
    for i, x, w, b in _conv_cases(rng):
        out, cache = F.conv2d_forward(x, w, b)
        dout = rng.standard_normal(out.shape)
        p = (w.shape[2] - 1) // 2
        xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        cases.append(Case(f"case {i + 1} ({_describe(x=x, w=w)})", "conv_dw", (xpad, dout, w.shape[2]),
                          F.conv2d_backward(dout, cache)[1], ("dw",)))
    return cases


def _conv_dx_cases(rng):
    cases = []
    for i, x, w, b in _conv_cases(rng):
        out, cache = F.conv2d_forward(x, w, b)
        dout = rng.standard_normal(out.shape)
        cases.append(Case(f"case {i + 1} ({_describe(dout=dout, w=w)})", "conv_dx", (dout, w),
                          F.conv2d_backward(dout, cache)[0], ("dx",)))
    return cases


# -- lesson 3: batch norm ----------------------------------------------------------------------

BN_SHAPES = [(3, 2, 4, 3), (2, 3, 5, 1), (1, 4, 3, 6)]


def _bn_cases(rng):
    for i, shape in enumerate(BN_SHAPES):
        C = shape[1]
        x = rng.standard_normal(shape) * rng.uniform(0.5, 3, (1, C, 1, 1)) + rng.uniform(-2, 2, (1, C, 1, 1))
        gamma, beta = rng.uniform(0.5, 2, C) * rng.choice([-1, 1], C), rng.standard_normal(C)
        out, cache = F.batchnorm2d_forward(x, gamma, beta, np.zeros(C), np.ones(C), True)
        dout = rng.standard_normal(out.shape)
        xhat = (x - cache.mean[None, :, None, None]) * cache.inv_std[None, :, None, None]
        yield i, gamma, cache, dout, xhat


def _bn_dx_cases(rng):
    return [Case(f"case {i + 1} (x {xhat.shape})", "bn_dx", (dout, xhat, gamma, cache.inv_std),
                 F.batchnorm2d_backward(dout, cache)[0], ("dx",))
            for i, gamma, cache, dout, xhat in _bn_cases(rng)]


def _bn_dparams_cases(rng):
    return [Case(f"case {i + 1} (x {xhat.shape})", "bn_dparams", (dout, xhat),
                 tuple(F.batchnorm2d_backward(dout, cache)[1:]), ("dgamma", "dbeta"))
            for i, gamma, cache, dout, xhat in _bn_cases(rng)]


# -- lesson 4: pooling and unpooling -----------------------------------------------------------

POOL_SHAPES = [(2, 3, 5, 7), (1, 2, 6, 4), (1, 1, 3, 3), (2, 1, 4, 6)]


def _pooled(rng):
    for i, shape in enumerate(POOL_SHAPES):
        x = _distinct(rng, shape)
        out, indices = F.maxpool2x2_forward(x)
        yield i, shape, x, out, indices


def _maxpool_forward_cases(rng):
    cases = [Case(f"case {i + 1} (x {shape})", "maxpool_forward", (x,), F.maxpool2x2_forward(x),
                  ("out", "indices")) for i, shape, x, _, _ in _pooled(rng)]
    tie = np.zeros((1, 1, 2, 4))
    tie[0, 0] = [[1, 5, 2, 2], [5, 4, 2, 1]]  # two 5s, and 2s in the second window
    negative = -np.abs(_distinct(rng, (1, 2, 3, 5))) - 1  # all negative: padding must not win
    cases.append(Case(f"case {len(cases) + 1} (x {tie.shape}, with ties)", "maxpool_forward", (tie,),
                      F.maxpool2x2_forward(tie), ("out", "indices")))
    cases.append(Case(f"case {len(cases) + 1} (x {negative.shape}, all negative)", "maxpool_forward",
                      (negative,), F.maxpool2x2_forward(negative), ("out", "indices")))
    return cases


def _maxpool_dx_cases(rng):
    return [Case(f"case {i + 1} (x {shape})", "maxpool_dx", (dout, indices, shape),
                 F.maxpool2x2_backward(dout, indices, shape), ("dx",))
            for (i, shape, _, out, indices), dout in
            ((p, rng.standard_normal(p[3].shape)) for p in _pooled(rng))]


def _unpool_forward_cases(rng):
    return [Case(f"case {i + 1} (values {out.shape} -> {shape[2:]})", "unpool_forward",
                 (values, indices, shape[2:]), F.unpool2x2_forward(values, indices, shape[2:]))
            for (i, shape, _, out, indices), values in
            ((p, rng.standard_normal(p[3].shape)) for p in _pooled(rng))]


def _unpool_dvalues_cases(rng):
    return [Case(f"case {i + 1} (dout {shape})", "unpool_dvalues", (dout, indices),
                 F.unpool2x2_backward(dout, indices), ("dvalues",))
            for (i, shape, _, _, indices), dout in
            ((p, rng.standard_normal(p[1])) for p in _pooled(rng))]


# -- lesson 5: loss and class balance ----------------------------------------------------------

VOID_IN_CASES = 9


def _ce_grad_cases(rng):
    cases = []
    specs = (((2, 3, 4), 4, 1.0, True), ((1, 5, 2), 3, 1000.0, True), ((3, 2, 3), 5, 30.0, True),
             ((2, 4, 3), 3, 3.0, False))  # the last without any void pixel
    for i, (shape, K, scale, void) in enumerate(specs):
        logits = rng.standard_normal((shape[0], K) + shape[1:]) * scale
        labels = rng.integers(0, K, shape)
        if void:
            labels.flat[rng.choice(labels.size, labels.size // 3, replace=False)] = VOID_IN_CASES
        weights = np.exp(rng.uniform(np.log(0.1), np.log(10), K))  # 0.1 .. 10
        label = (f"case {i + 1} (logits {logits.shape}, |logits| up to {np.abs(logits).max():.0f}"
                 f"{', no void pixel' if not void else ''})")
        cases.append(Case(label, "ce_grad", (logits, labels, weights, VOID_IN_CASES),
                          F.softmax_cross_entropy(logits, labels, weights, VOID_IN_CASES)[1], ("dlogits",)))
    return cases


def _median_frequency_cases(rng):
    cases = []
    # (images, size, classes): the last class never occurs, so 3, 5, 4 and 6 classes occur
    for i, (n, size, K) in enumerate(((4, (6, 5), 4), (5, (3, 8), 6), (4, (5, 6), 5), (6, (4, 4), 7))):
        labels = rng.integers(0, K - 1, (n,) + size)
        labels[0] = 0  # an image of one class: frequencies differ from global ones
        labels[1, :2] = 11  # void
        labels[2, 0, 0] = K - 2  # a class in one pixel of one image
        label = f"case {i + 1} (labels {labels.shape}, {K} classes, {K - 1} of them present)"
        cases.append(Case(label, "median_frequency", (labels, K, 11),
                          transforms.median_frequency_weights(labels, K, 11, dtype=np.float64), ("weights",)))
    # A drawn case's two middle frequencies can tie, and then a median that takes the upper of
    # the two passes; here 4 classes occur with frequencies 0.4, 0.3, 0.2 and 0.1, never tied.
    labels = np.repeat(np.array([0, 1, 2, 3]), [8, 6, 4, 2]).reshape(1, 4, 5)
    cases.append(Case("case 5 (labels (1, 4, 5), 5 classes, 4 of them present in fixed shares)", "median_frequency",
                      (labels, 5, 11), transforms.median_frequency_weights(labels, 5, 11, dtype=np.float64),
                      ("weights",)))
    return cases


# -- lesson 8: metrics -------------------------------------------------------------------------

def _metric_pairs(rng):
    labels = rng.integers(0, 4, (2, 5, 6))
    labels[0, 0] = 11  # void row
    labels[labels == 3] = 2  # class 3 absent from the truth...
    predictions = rng.integers(0, 5, (2, 5, 6))  # ... but predicted; class 4 only predicted too
    both_absent = rng.integers(0, 3, (1, 4, 7))  # of 5 classes, 3 and 4 absent from both
    return [(predictions, labels, 5), (rng.integers(0, 3, (1, 4, 7)), rng.integers(0, 3, (1, 4, 7)), 3),
            (rng.integers(0, 3, (1, 4, 7)), both_absent, 5)]


def _confusion_cases(rng):
    return [Case(f"case {i + 1} (labels {t.shape}, {K} classes)", "confusion", (p, t, K, 11),
                 metrics.confusion_matrix(p, t, K, 11), ("conf",))
            for i, (p, t, K) in enumerate(_metric_pairs(rng))]


def _scores_cases(rng):
    confs = [metrics.confusion_matrix(p, t, K, 11) for p, t, K in _metric_pairs(rng)]
    confs.append(np.array([[5, 1, 0], [0, 0, 0], [2, 0, 7]]))  # class 1 predicted, never true
    absent = np.zeros((4, 4), np.int64)  # class 2 absent from truth and prediction
    absent[[0, 0, 1, 1, 3, 3], [0, 1, 1, 3, 3, 0]] = rng.integers(1, 9, 6)
    confs.append(absent)
    cases = []
    for i, conf in enumerate(confs):
        s = metrics.scores(conf)
        cases.append(Case(f"case {i + 1} (conf {conf.shape}, rows {conf.sum(axis=1).tolist()})",
                          "scores_from", (conf,), (s["G"], s["C"], s["mIoU"]), ("G", "C", "mIoU")))
    return cases


def _bf_cases(rng):
    label = np.zeros((120, 160), int)  # diagonal 200 px: a tolerance of 1.5 px
    label[:, 100:] = 1
    label[30:70, 20:60] = 2
    label[:5] = 11  # void
    shifted = np.zeros_like(label)
    shifted[:, 102:] = 1  # 2 px off: outside the tolerance
    shifted[30:70, 21:61] = 2  # 1 px off: inside
    diagonal = np.zeros_like(label)
    diagonal[:, 101:] = 1  # 1 px off: inside
    diagonal[31:71, 21:61] = 2  # sqrt(2) = 1.41 px off along the diagonal: inside 1.5, outside 1 or 1.2
    smaller = label.copy()
    smaller[smaller == 11] = 0
    smaller[label == 2] = 0
    smaller[40:60, 30:50] = 2  # a smaller square: edges of unequal length
    partial = label.copy()
    partial[partial == 11] = 0
    partial[90:, 110:130] = 3  # a class only predicted
    tall = np.zeros((160, 90), int)  # portrait: the tolerance is not the width's or height's
    tall[:, 45:] = 1
    tall_shifted = np.zeros_like(tall)
    tall_shifted[:, 46:] = 1
    flat = np.zeros((60, 80), int)  # one class everywhere, no void: no boundary at all
    r = int(rng.integers(0, 3))  # which class fills the flat case
    cases = [(label.copy(), label, "a perfect prediction"), (shifted, label, "shifted boundaries"),
             (diagonal, label, "boundaries 1 and 1.41 px away"), (smaller, label, "a smaller square"),
             (partial, label, "an extra class"), (np.zeros((120, 160), int), label, "one class everywhere"),
             (tall_shifted, tall, "a portrait image, 1 px off"), (flat + r, flat + r, "a map of one class")]
    return [Case(f"case {i + 1} ({what}, {t.shape[0]}x{t.shape[1]})", "bf_score", (p, t, 4, 11),
                 metrics.boundary_f1(p, t, 4, 11), ("BF",))
            for i, (p, t, what) in enumerate(cases)]


# -- lesson 10: decoders -----------------------------------------------------------------------

def _tconv_cases(rng):
    cases = []
    for i, (x_shape, f, size) in enumerate([((2, 3, 4, 5), 2, (8, 10)), ((1, 2, 3, 3), 3, (5, 6)),
                                            ((1, 1, 5, 2), 2, (9, 3))]):
        x, w = rng.standard_normal(x_shape), rng.standard_normal((x_shape[1], f, 4, 4))
        out, cache = F.conv_transpose2d_forward(x, w, size)
        dout = rng.standard_normal(out.shape)
        cases.append(Case(f"case {i + 1} ({_describe(x=x, w=w)}, out {out.shape[2:]})",
                          "conv_transpose_backward", (dout, x, w),
                          tuple(F.conv_transpose2d_backward(dout, cache)), ("dx", "dw")))
    return cases


# -- lesson 11: Bayesian SegNet ----------------------------------------------------------------

class _Given:
    """A generator that hands out fixed uniform draws, so the library draws the mask the
    student's function is given."""

    def __init__(self, draws):
        self.draws = draws

    def random(self, shape, dtype):
        return self.draws.astype(dtype)


def _dropout_cases(rng):
    cases = []
    for i, (shape, p) in enumerate([((2, 3, 4, 5), 0.3), ((1, 2, 3, 7), 0.5), ((3, 1, 2, 2), 0.8)]):
        x, u, dout = rng.standard_normal(shape), rng.random(shape), rng.standard_normal(shape)
        x[rng.random(shape) < 0.3] = 0.0  # zeros, as after a ReLU: the mask is not out != 0
        out, cache = F.dropout_forward(x, p, True, _Given(u))
        label = f"case {i + 1} (x {shape} with zeros, p = {p})"
        cases.append(Case(label, "dropout_forward", (x, p, u), (out, cache.keep), ("out", "keep")))
        cases.append(Case(label, "dropout_backward", (dout, cache.keep, p), F.dropout_backward(dout, cache),
                          ("dx",)))
    return cases


# -- lesson 13: fast convolution ---------------------------------------------------------------

def _winograd_1d(d, g):
    """F(2, 3) by the library's matrices: (U, V, y) for tiles d (T, 4) and a filter g (3,)."""
    U, V = conv_winograd._G @ g, d @ conv_winograd._BT.T
    return U, V, (U * V) @ conv_winograd._AT.T


def _winograd_1d_cases(rng):
    cases = []
    for i, tiles in enumerate((5, 1, 8)):
        d, g = rng.standard_normal((tiles, 4)), rng.standard_normal(3)
        d[0, 1] = 0.0  # a zero, as after a ReLU
        cases.append(Case(f"case {i + 1} ({_describe(d=d, g=g)})", "winograd_f23", (d, g),
                          _winograd_1d(d, g), ("U", "V", "y")))
    return cases


def _winograd_2d_cases(rng):
    cases = []
    BT, G, AT = conv_winograd._BT, conv_winograd._G, conv_winograd._AT
    for i, tiles in enumerate((3, 1, 6)):
        d, g = rng.standard_normal((tiles, 4, 4)), rng.standard_normal((3, 3))
        U, V = G @ g @ G.T, BT @ d @ BT.T
        cases.append(Case(f"case {i + 1} ({_describe(d=d, g=g)})", "winograd_f22_33", (d, g),
                          (U, V, AT @ (U * V) @ AT.T), ("U", "V", "Y")))
    return cases


EXERCISES = {e.number: e for e in [
    Exercise("2.1", {"conv_forward": ("x", "w", "b")}, _conv_forward_cases),
    Exercise("2.2", {"conv_dw": ("xpad", "dout", "k")}, _conv_dw_cases),
    Exercise("2.3", {"conv_dx": ("dout", "w")}, _conv_dx_cases),
    Exercise("3.1", {"bn_dx": ("dout", "xhat", "gamma", "inv_std")}, _bn_dx_cases),
    Exercise("3.2", {"bn_dparams": ("dout", "xhat")}, _bn_dparams_cases),
    Exercise("4.1", {"maxpool_forward": ("x",)}, _maxpool_forward_cases),
    Exercise("4.2", {"maxpool_dx": ("dout", "indices", "input_shape")}, _maxpool_dx_cases),
    Exercise("4.3", {"unpool_forward": ("values", "indices", "size")}, _unpool_forward_cases),
    Exercise("4.4", {"unpool_dvalues": ("dout", "indices")}, _unpool_dvalues_cases),
    Exercise("5.1", {"ce_grad": ("logits", "labels", "weights", "ignore")}, _ce_grad_cases),
    Exercise("5.2", {"median_frequency": ("labels", "n_classes", "ignore")}, _median_frequency_cases),
    Exercise("8.1", {"confusion": ("predictions", "labels", "n_classes", "ignore")}, _confusion_cases),
    Exercise("8.2", {"scores_from": ("conf",)}, _scores_cases),
    Exercise("8.3", {"bf_score": ("prediction", "label", "n_classes", "ignore")}, _bf_cases),
    Exercise("10.1", {"conv_transpose_backward": ("dout", "x", "w")}, _tconv_cases),
    Exercise("11.1", {"dropout_forward": ("x", "p", "u"), "dropout_backward": ("dout", "keep", "p")},
             _dropout_cases),
    Exercise("13.1", {"winograd_f23": ("d", "g")}, _winograd_1d_cases),
    Exercise("13.2", {"winograd_f22_33": ("d", "g")}, _winograd_2d_cases),
]}


def _checker(number, doc):
    exercise = EXERCISES[number]

    def check(*functions):
        return run_here(exercise, dict(zip(exercise.functions, functions)))
    check.__doc__ = doc
    return check


conv_forward = _checker("2.1", """Exercise 2.1: ``fn(x, w, b) -> out``, x (N, C, H, W), w (F, C, k, k),
    b (F,), out (N, F, H, W): stride 1, zero padding (k - 1) / 2, as ``F.conv2d_forward``.""")
conv_dw = _checker("2.2", """Exercise 2.2: ``fn(xpad, dout, k) -> dw`` (F, C, k, k), xpad the input
    padded by (k - 1) / 2 on each side, dout (N, F, H, W).""")
conv_dx = _checker("2.3", "Exercise 2.3: ``fn(dout, w) -> dx`` (N, C, H, W), dout (N, F, H, W), w (F, C, k, k).")
bn_dx = _checker("3.1", """Exercise 3.1: ``fn(dout, xhat, gamma, inv_std) -> dx``, training mode (the
    batch's own mean and variance), all (N, C, H, W) but gamma and inv_std (C,).""")
bn_dparams = _checker("3.2", "Exercise 3.2: ``fn(dout, xhat) -> (dgamma, dbeta)``, each (C,).")
maxpool_forward = _checker("4.1", """Exercise 4.1: ``fn(x) -> (out, indices)``, 2x2 windows, stride 2,
    ceil mode; indices the position 0..3 of each maximum in its window (row-major), ties to the first.""")
maxpool_dx = _checker("4.2", "Exercise 4.2: ``fn(dout, indices, input_shape) -> dx`` (input_shape).")
unpool_forward = _checker("4.3", "Exercise 4.3: ``fn(values, indices, size) -> out`` (N, C, H, W), size = (H, W).")
unpool_dvalues = _checker("4.4", """Exercise 4.4: ``fn(dout, indices) -> dvalues`` (shaped like indices),
    dout (N, C, H, W).""")
ce_grad = _checker("5.1", """Exercise 5.1: ``fn(logits, labels, weights, ignore) -> dlogits`` of the
    weighted mean cross-entropy over valid pixels (label != ignore), as ``F.softmax_cross_entropy``.""")
median_frequency = _checker("5.2", """Exercise 5.2: ``fn(labels, n_classes, ignore) -> weights``
    (n_classes,), median-frequency balancing; a class that never occurs weighs 0.""")
confusion = _checker("8.1", """Exercise 8.1: ``fn(predictions, labels, n_classes, ignore) -> conf``
    (n_classes, n_classes), conf[t, p] = pixels of true class t predicted as p, void left out.""")
scores = _checker("8.2", """Exercise 8.2: ``fn(conf) -> (G, C, mIoU)``; classes absent from the truth
    are left out of C's and mIoU's means.""")
boundary_f1 = _checker("8.3", """Exercise 8.3: ``fn(prediction, label, n_classes, ignore) -> BF`` of one
    image (H, W) with ``metrics.boundary`` and ``metrics.dilate`` given; tolerance 0.75% of the diagonal.""")
conv_transpose_backward = _checker("10.1", """Exercise 10.1: ``fn(dout, x, w) -> (dx, dw)`` of the
    stride-2, padding-1 transposed convolution ``F.conv_transpose2d_forward(x, w, output_shape)``.""")
dropout = _checker("11.1", """Exercise 11.1: ``forward(x, p, u) -> (out, keep)`` with u the uniform
    draws (an element is kept where u >= p) and ``backward(dout, keep, p) -> dx``: inverted dropout.""")

winograd_f23 = _checker("13.1", """Exercise 13.1: ``fn(d, g) -> (U, V, y)``, Winograd's F(2, 3) on tiles
    d (T, 4) and a filter g (3,): U (4,) the filter's transform, V (T, 4) the tiles', y (T, 2) the
    correlation, with the four products of the lesson (the 1/2 in the filter's transform).""")
winograd_f22_33 = _checker("13.2", """Exercise 13.2: ``fn(d, g) -> (U, V, Y)``, F(2x2, 3x3) on tiles
    d (T, 4, 4) and a filter g (3, 3): U (4, 4), V (T, 4, 4), Y (T, 2, 2), F(2, 3) along both axes.""")


# -- lesson 12: the capstone -------------------------------------------------------------------

CAPSTONE_LAYERS = {"conv_forward": ("x", "w", "b"), "conv_dw": ("xpad", "dout", "k"), "conv_dx": ("dout", "w"),
                   "bn_dx": ("dout", "xhat", "gamma", "inv_std"), "bn_dparams": ("dout", "xhat"),
                   "maxpool_forward": ("x",), "maxpool_dx": ("dout", "indices", "input_shape"),
                   "unpool_forward": ("values", "indices", "size"), "unpool_dvalues": ("dout", "indices"),
                   "ce_grad": ("logits", "labels", "weights", "ignore")}


def whole_model(implementations, seed=None):
    """Exercise 12.1: SegNet-Basic (tiny, float64, training mode) run on ``implementations``
    (``{name: function}`` for ``functional.use``) gives the library's logits and loss, and the
    library's gradient for every parameter (the library's own backward pass, which the tests
    check numerically; compared exactly here, so kinks of ReLU and max pooling cannot make a
    right answer fail)."""
    from ..models import SegNetBasic

    rng = np.random.default_rng(seed)
    cases = [((2, 3, 9, 10), 3), ((2, 3, 12, 7), 5)]
    for i, (shape, k) in enumerate(cases):
        case = f"case {i + 1} (SegNet-Basic of width 3 with {k}x{k} kernels, x {shape})"
        model = SegNetBasic(n_classes=3, width=3, kernel=k, seed=int(rng.integers(1 << 31))).astype(np.float64)
        model.train()
        x = rng.standard_normal(shape)
        labels = rng.integers(0, 3, (shape[0],) + shape[2:])
        labels[0, 0, :2] = 7  # void
        weights = np.exp(rng.uniform(np.log(0.1), np.log(10), 3))
        expected = model.forward(x)
        expected_loss, dlogits = F.softmax_cross_entropy(expected, labels, weights, 7)
        model.backward(dlogits)
        expected_grads = {name: p.grad.copy() for name, p in model.named_parameters()}
        with F.use(**implementations):
            try:
                logits = model.forward(x)
                loss, dlogits = F.softmax_cross_entropy(logits, labels, weights, 7)
                model.backward(dlogits)
            except NotImplementedError:
                raise
            except LayerError as e:
                raise ExerciseFailed(f"exercise 12.1, {case}: {e}") from None
            except Exception as e:
                raise ExerciseFailed(f"exercise 12.1, {case}: your layers raised "
                                     f"{type(e).__name__}: {e}") from None
        _compare("12.1", case, "logits", logits, expected, 1e-9)
        _compare("12.1", case, "loss", float(loss), float(expected_loss), 1e-9)
        for name, p in model.named_parameters():
            _compare("12.1", case, f"the gradient of {name}", p.grad, expected_grads[name], 1e-8)
    return f"exercise 12.1 passed ({len(cases)} cases)"
