"""A strict stand-in for CuPy: the GPU code path, tested on a machine without a GPU.

CI has no GPU, yet every model must run on CuPy. This module plays CuPy's part with
NumPy underneath and CuPy's rules on top, so that a mistake that would only show on a
GPU shows here:

* **Only CuPy's names.** ``xp.X`` exists only if the pinned CuPy exports ``X``
  (``cupy_names.json``, taken from the wheel); a NumPy-only function is an
  AttributeError, as on a GPU. A CuPy name this stand-in does not model is a
  NotImplementedError, never a silent NumPy call.
* **No mixing.** A NumPy array as an operand, an index or a function argument is a
  TypeError, and so is implicit conversion (``np.asarray(device_array)``). Only
  ``asarray``/``array`` take host data (a transfer), only ``.get()``/``asnumpy`` give it
  back. Stricter than CuPy in one way: NumPy functions and ufuncs applied to a device
  array raise instead of dispatching, since tinysegnet always calls its ``xp``'s own.
* **Counted.** ``counts.ops`` counts array operations, each one kernel launch or more on
  a GPU: every operator, function or method whose result is new data, every in-place
  update and every assignment into an array; views (reshape of a contiguous array,
  transpose, basic slicing, ``as_strided``) are free, as on a GPU, and so are ``empty`` and
  ``empty_like``, which take memory from CuPy's pool without a kernel. ``counts.syncs``
  counts host synchronisations: ``int()``, ``float()``, ``bool()``, ``.item()``,
  ``.get()``, ``asnumpy``, ``repr`` and ``cuda.Device().synchronize()``.
  ``counts.transfers`` counts host-to-device copies.

* **Fused kernels.** ``fuse`` plays ``cupy.fuse``: the function runs on the stand-in's
  arrays and counts one launch, and anything inside it that CuPy could not fuse into one
  elementwise kernel (a method such as ``reshape`` or ``sum``, a non-elementwise function,
  an in-place update, a host synchronisation) raises.

Use it through :func:`tinysegnet.backend.using_gpu_module`, which routes the "gpu"
device here::

    with backend.using_gpu_module(strict_cupy), strict_cupy.counting() as c:
        train_step(...)
    c.ops, c.syncs
"""

import contextlib
import dataclasses
import operator
import sys
import types

import numpy as np

from . import cupy_names

_NAMES = cupy_names.load()
VERSION = _NAMES["version"]


@dataclasses.dataclass
class Counts:
    ops: int = 0
    syncs: int = 0
    transfers: int = 0


counts = Counts()


@contextlib.contextmanager
def counting():
    """Counts for the body only: ``with counting() as c: ...`` then ``c.ops, c.syncs``."""
    start = dataclasses.replace(counts)
    result = Counts()
    try:
        yield result
    finally:
        result.ops = counts.ops - start.ops
        result.syncs = counts.syncs - start.syncs
        result.transfers = counts.transfers - start.transfers


_fusing = None  # the name of the fused kernel being traced, or None


def _not_fusable(what):
    if _fusing is not None:
        raise NotImplementedError(f"strict CuPy stand-in: {what} inside cupy.fuse (kernel "
                                  f"{_fusing!r}): only elementwise operations fuse into one kernel")


def fuse(*args, kernel_name=None):
    """``cupy.fuse``: ``@fuse()`` or ``@fuse(kernel_name=...)``; the fused function counts one launch."""
    def decorate(fn):
        name = kernel_name or fn.__name__

        def fused(*arrays):
            global _fusing
            if _fusing is not None:
                raise NotImplementedError(f"strict CuPy stand-in: cupy.fuse kernel {name!r} called "
                                          f"inside kernel {_fusing!r}")
            for a in arrays:
                if isinstance(a, np.ndarray):
                    _refuse_host(a, f"cupy.fuse kernel {name!r}")
            before, _fusing = counts.ops, name
            try:
                result = fn(*arrays)
            finally:
                _fusing = None
            counts.ops = before + 1
            return result
        fused.__name__ = name
        return fused
    if len(args) == 1 and callable(args[0]):
        return decorate(args[0])
    return decorate


def _refuse_host(value, where):
    raise TypeError(f"strict CuPy stand-in: {where} got a NumPy {type(value).__name__} "
                    f"(shape {getattr(value, 'shape', '')}); CuPy refuses host arrays here: "
                    f"move it with xp.asarray first")


def _unwrap(value, where):
    """Device arrays to their NumPy storage, through lists, tuples and dicts; host arrays refused."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        _refuse_host(value, where)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, where) for k, v in value.items()}
    return value


def _wrap(value):
    """NumPy results to device arrays (0-d for scalars, as CuPy's reductions return)."""
    if isinstance(value, np.ndarray):
        return ndarray(value)
    if isinstance(value, np.generic):
        return ndarray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


def _new_data(result, inputs):
    """True when ``result`` is not a view of one of the input arrays."""
    if not isinstance(result, np.ndarray):
        return True
    return not any(isinstance(a, np.ndarray) and np.may_share_memory(result, a) for a in inputs)


def _flatten(values):
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from _flatten(v)
        elif isinstance(v, dict):
            yield from _flatten(list(v.values()))
        else:
            yield v


class ndarray:
    """A device array: NumPy storage behind CuPy's interface and rules."""

    __array_ufunc__ = None  # NumPy ufuncs and operators with a NumPy left operand refuse us
    __slots__ = ("_a",)

    def __init__(self, storage):
        self._a = storage

    # -- what CuPy refuses ---------------------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly. (strict CuPy stand-in)")

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"strict CuPy stand-in: numpy.{func.__name__} called on a device array; "
                        f"call the array module's own function (xp.{func.__name__})")

    # -- plain attributes ----------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    ndim = property(lambda self: self._a.ndim)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    real = property(lambda self: ndarray(self._a.real))  # a view of a complex array, as in CuPy

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # -- host synchronisations -----------------------------------------------------------
    def _sync(self):
        _not_fusable("a host synchronisation")
        counts.syncs += 1
        return self._a

    def get(self):
        return self._sync().copy()

    def item(self):
        return self._sync().item()

    def tolist(self):
        return self._sync().tolist()

    def __int__(self):
        return int(self._sync())

    def __float__(self):
        return float(self._sync())

    def __complex__(self):
        return complex(self._sync())

    def __bool__(self):
        return bool(self._sync())

    def __repr__(self):
        return f"array({self._sync()!r}) (strict CuPy stand-in)"

    __str__ = __repr__

    def __format__(self, spec):
        return format(self._sync().item() if self.ndim == 0 else self._sync(), spec)

    # -- indexing ------------------------------------------------------------------------
    def __getitem__(self, key):
        _not_fusable("indexing")
        result = self._a[_unwrap(key, "indexing")]
        if _new_data(result, [self._a]):
            counts.ops += 1
        return _wrap(result)

    def __setitem__(self, key, value):
        _not_fusable("an assignment into an array")
        counts.ops += 1
        self._a[_unwrap(key, "indexing")] = _operand(value, "assignment")

    def fill(self, value):
        _not_fusable("ndarray.fill")
        counts.ops += 1
        self._a.fill(_operand(value, "fill"))


def _operand(value, where):
    """A device array's storage, or a Python/NumPy scalar; anything else is refused."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, (bool, int, float, complex, np.generic)):
        return value
    if isinstance(value, np.ndarray):
        _refuse_host(value, where)
    raise TypeError(f"strict CuPy stand-in: unsupported operand type {type(value).__name__} "
                    f"in {where}")


def _operator(name):
    """The operator module's function for a dunder's name: ``and`` and ``or`` are ``and_``, ``or_``."""
    return getattr(operator, name + "_" if name in ("and", "or") else name)


def _binary(name):
    def method(self, other):
        if _foreign(other):
            return NotImplemented  # let the other operand's reflected method answer
        result = _operator(name)(self._a, _operand(other, f"'{name}'"))
        counts.ops += 1
        return _wrap(result)
    return method


def _reflected(name):
    def method(self, other):
        if _foreign(other):
            return NotImplemented
        result = _operator(name)(_operand(other, f"'{name}'"), self._a)
        counts.ops += 1
        return _wrap(result)
    return method


def _foreign(value):
    """An operand that is neither an array nor a number: Python asks its own methods next."""
    return not isinstance(value, (ndarray, np.ndarray, bool, int, float, complex, np.generic))


def _inplace(name):
    def method(self, other):
        _not_fusable(f"an in-place '{name}'")
        getattr(operator, name)(self._a, _operand(other, f"'{name}'"))
        counts.ops += 1
        return self
    return method


def _unary(name):
    def method(self):
        counts.ops += 1
        return _wrap(getattr(operator, name)(self._a))
    return method


def _method(name):
    def method(self, *args, **kwargs):
        where = f"ndarray.{name}"
        _not_fusable(where)
        args, kwargs = _unwrap(args, where), _unwrap(kwargs, where)
        result = getattr(self._a, name)(*args, **kwargs)
        if _new_data(result, [self._a]) or "out" in kwargs:
            counts.ops += 1
        return _wrap(result)
    method.__name__ = name
    return method


_BINARY = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
           "xor", "lshift", "rshift", "lt", "le", "eq", "ne", "gt", "ge")
for _name in _BINARY:
    _dunder = f"__{_name}__"
    if _dunder in _NAMES["ndarray"]:
        setattr(ndarray, _dunder, _binary(_name))
    if f"__r{_name}__" in _NAMES["ndarray"]:
        setattr(ndarray, f"__r{_name}__", _reflected(_name))
    if f"__i{_name}__" in _NAMES["ndarray"]:
        setattr(ndarray, f"__i{_name}__", _inplace(f"i{_name}"))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__", _unary(_name))
for _name in ("all", "any", "argmax", "argmin", "astype", "clip", "conj", "copy", "cumsum", "flatten",
              "max", "mean", "min", "nonzero", "prod", "ravel", "repeat", "reshape", "round",
              "squeeze", "std", "sum", "swapaxes", "take", "transpose", "var", "view"):
    assert _name in _NAMES["ndarray"], _name
    setattr(ndarray, _name, _method(_name))


def _function(name, numpy_function, accepts_host=False):
    def function(*args, **kwargs):
        where = f"cupy.{name}"
        elementwise = isinstance(numpy_function, np.ufunc) and numpy_function.signature is None
        if not elementwise or "out" in kwargs:  # matmul is a ufunc too, of whole matrices
            _not_fusable(where)
        if accepts_host:  # asarray / array: a host array is a transfer to the device
            if any(isinstance(a, np.ndarray) for a in _flatten(args)):
                counts.transfers += 1
            inputs = []
        else:
            args, kwargs = _unwrap(args, where), _unwrap(kwargs, where)
            inputs = list(_flatten(list(args) + list(kwargs.values())))
        if accepts_host:
            args = tuple(a._a if isinstance(a, ndarray) else a for a in args)
        result = numpy_function(*args, **kwargs)
        if accepts_host and isinstance(result, np.ndarray) and not result.flags.owndata:
            result = result.copy()  # a device array never shares memory with the host
        if "out" in kwargs or (name not in _ALLOCATIONS and isinstance(result, np.ndarray)
                               and _new_data(result, inputs)):
            counts.ops += 1
        return _wrap(result)
    function.__name__ = name
    return function


def asnumpy(a, *args, **kwargs):
    if isinstance(a, ndarray):
        return a.get()
    return np.asarray(a)


def get_array_module(*arrays):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in arrays) else np


def _as_strided(x, shape=None, strides=None):
    if not isinstance(x, ndarray):
        raise TypeError(f"strict CuPy stand-in: as_strided needs a device array, got {type(x).__name__}")
    return ndarray(np.lib.stride_tricks.as_strided(x._a, shape, strides))


class _Device:
    def __init__(self, device=None):
        self.id = 0

    def synchronize(self):
        counts.syncs += 1


class _Generator:
    """``cupy.random.default_rng(seed)``'s generator, as far as tinysegnet uses it: ``random``."""

    def __init__(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64):
        counts.ops += 1
        return ndarray(np.asarray(self._rng.random(size, dtype=dtype)))


random = types.SimpleNamespace(default_rng=_Generator)
cuda = types.SimpleNamespace(Device=_Device, is_available=lambda: True,
                             runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=_as_strided))

_HOST_INPUT = {"asarray", "array", "asanyarray"}
_ALLOCATIONS = {"empty", "empty_like"}  # memory from the pool, no kernel
_SPECIAL = {"ndarray": ndarray, "asnumpy": asnumpy, "get_array_module": get_array_module,
            "cuda": cuda, "lib": lib, "random": random, "fuse": fuse}


def __getattr__(name):
    """CuPy's name ``name``: NumPy's type or constant, or NumPy's function under CuPy's rules."""
    if name.startswith("__") or name not in _NAMES["cupy"]:
        raise AttributeError(f"module 'cupy' has no attribute {name!r} (strict CuPy stand-in, "
                             f"CuPy {VERSION})")
    if name in _SPECIAL:
        return _SPECIAL[name]
    if not hasattr(np, name) or isinstance(getattr(np, name), types.ModuleType):
        raise NotImplementedError(f"strict CuPy stand-in: cupy.{name} is not modelled")
    target = getattr(np, name)
    if isinstance(target, type) or not callable(target):
        return target  # dtypes, scalar types, constants such as inf and newaxis
    value = _function(name, target, accepts_host=name in _HOST_INPUT)
    globals()[name] = value  # built once
    return value
