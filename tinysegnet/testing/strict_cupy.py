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

* **Memory.** ``cuda.Device().mem_info`` reports ``DEVICE_MEMORY`` (16 GiB free of 80 unless
  a test sets less) and the default pool keeps no free blocks.

* **Graphs.** ``cuda.Stream(...).begin_capture()`` records instead of computing, as a
  capturing CUDA stream does: each launch is kept as the same operation on the same memory,
  and ``end_capture()``'s graph replays exactly those on ``launch()`` (one launch), whatever
  the Python that recorded them does afterwards. While a stream captures, a host
  synchronisation, a host-to-device copy, a random draw, an operation issued outside the
  capturing stream, and memory taken from the default pool (not from a private
  ``cuda.MemoryPool`` through ``cuda.using_allocator``, so that no other array is ever handed
  memory the graph writes) raise. Nothing a capture records writes into existing memory
  before the graph is launched; the values of arrays made while capturing are not to be
  relied on (on a GPU they are uninitialised until then).

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
_capture = None  # (the capturing stream, its recorded operations) while a stream captures
_streams = []  # the streams entered with ``with stream:``, innermost last
_allocator = None  # what cuda.using_allocator set: None is the default memory pool


def _capturing(where):
    """True while a stream captures; raises if ``where`` is not issued to that stream."""
    if _capture is None:
        return False
    if not _streams or _streams[-1] is not _capture[0]:
        raise RuntimeError(f"strict CuPy stand-in: {where} issued to another stream while a stream "
                           f"captures (CUDA invalidates the capture)")
    return True


def _refuse_in_capture(what):
    if _capture is not None:
        raise RuntimeError(f"strict CuPy stand-in: {what} during stream capture (CUDA refuses it: "
                           f"cudaErrorStreamCaptureUnsupported)")


def _allocate(where):
    """New memory: refused from the default pool while a stream captures."""
    if _capturing(where) and not isinstance(getattr(_allocator, "__self__", None), _MemoryPool):
        raise RuntimeError(f"strict CuPy stand-in: {where} takes memory from the default pool during "
                           f"stream capture; capture under cuda.using_allocator(cuda.MemoryPool().malloc), "
                           f"or later arrays are handed memory the graph writes")


def _launch(where, values, result):
    """Count one launch that made ``result`` (a new device array, or a tuple of them). While a
    stream captures, the graph keeps ``values``, a function that computes them again from the
    same memory, to copy into the result's memory on each launch."""
    counts.ops += 1
    if _capturing(where):
        _allocate(where)
        _capture[1].append(lambda: _refill(result, values()))


def _mutate(where, operation):
    """Count one launch that writes into existing memory, and do it; while a stream captures,
    the graph keeps it instead, and the memory changes when the graph is launched."""
    counts.ops += 1
    if _capturing(where):
        _capture[1].append(operation)
        return None
    return operation()


def _refill(result, values):
    if isinstance(result, tuple):
        for r, v in zip(result, values):
            _refill(r, v)
    else:
        np.copyto(result._a, values._a if isinstance(values, ndarray) else values)


def _not_fusable(what):
    if _fusing is not None:
        raise NotImplementedError(f"strict CuPy stand-in: {what} inside cupy.fuse (kernel "
                                  f"{_fusing!r}): only elementwise operations fuse into one kernel")


def fuse(*args, kernel_name=None):
    """``cupy.fuse``: ``@fuse()`` or ``@fuse(kernel_name=...)``; the fused function counts one launch."""
    def decorate(fn):
        name = kernel_name or fn.__name__

        def fused(*arrays):
            global _fusing, _capture
            if _fusing is not None:
                raise NotImplementedError(f"strict CuPy stand-in: cupy.fuse kernel {name!r} called "
                                          f"inside kernel {_fusing!r}")
            for a in arrays:
                if isinstance(a, np.ndarray):
                    _refuse_host(a, f"cupy.fuse kernel {name!r}")
            # The kernel's body is one launch, and one operation of a graph being recorded.
            before, _fusing, recorded, _capture = counts.ops, name, _capture, None
            try:
                result = fn(*arrays)
            finally:
                _fusing, _capture = None, recorded
            counts.ops = before
            _launch(f"cupy.fuse kernel {name!r}", lambda: fused(*arrays), result)
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
        _refuse_in_capture("a host synchronisation")
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
        key = _unwrap(key, "indexing")
        result = self._a[key]
        if not _new_data(result, [self._a]):
            return _wrap(result)
        result = _wrap(result)
        _launch("indexing", lambda: self._a[key], result)
        return result

    def __setitem__(self, key, value):
        _not_fusable("an assignment into an array")
        key, value = _unwrap(key, "indexing"), _operand(value, "assignment")
        _mutate("an assignment into an array", lambda: self._a.__setitem__(key, value))

    def fill(self, value):
        _not_fusable("ndarray.fill")
        value = _operand(value, "fill")
        _mutate("ndarray.fill", lambda: self._a.fill(value))


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
        op, b = _operator(name), _operand(other, f"'{name}'")
        result = _wrap(op(self._a, b))
        _launch(f"'{name}'", lambda: op(self._a, b), result)
        return result
    return method


def _reflected(name):
    def method(self, other):
        if _foreign(other):
            return NotImplemented
        op, a = _operator(name), _operand(other, f"'{name}'")
        result = _wrap(op(a, self._a))
        _launch(f"'{name}'", lambda: op(a, self._a), result)
        return result
    return method


def _foreign(value):
    """An operand that is neither an array nor a number: Python asks its own methods next."""
    return not isinstance(value, (ndarray, np.ndarray, bool, int, float, complex, np.generic))


def _inplace(name):
    def method(self, other):
        _not_fusable(f"an in-place '{name}'")
        op, b = getattr(operator, name), _operand(other, f"'{name}'")
        _mutate(f"an in-place '{name}'", lambda: op(self._a, b))
        return self
    return method


def _unary(name):
    def method(self):
        op = getattr(operator, name)
        result = _wrap(op(self._a))
        _launch(f"'{name}'", lambda: op(self._a), result)
        return result
    return method


def _method(name):
    def method(self, *args, **kwargs):
        where = f"ndarray.{name}"
        _not_fusable(where)
        args, kwargs = _unwrap(args, where), _unwrap(kwargs, where)
        call = lambda: getattr(self._a, name)(*args, **kwargs)  # noqa: E731
        if "out" in kwargs:
            _mutate(where, call)
            return _wrap(kwargs["out"])
        result = call()
        if _new_data(result, [self._a]):
            result = _wrap(result)
            _launch(where, call, result)
            return result
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
        if "out" in kwargs and kwargs["out"] is None:  # out=None: a new array, as without it
            del kwargs["out"]
        elementwise = isinstance(numpy_function, np.ufunc) and numpy_function.signature is None
        if not elementwise or "out" in kwargs:  # matmul is a ufunc too, of whole matrices
            _not_fusable(where)
        if accepts_host:  # asarray / array: a host array is a transfer to the device
            if any(isinstance(a, np.ndarray) for a in _flatten(args)):
                _refuse_in_capture("a host-to-device copy")
                counts.transfers += 1
            inputs = []
            args = tuple(a._a if isinstance(a, ndarray) else a for a in args)
        else:
            args, kwargs = _unwrap(args, where), _unwrap(kwargs, where)
            inputs = list(_flatten(list(args) + list(kwargs.values())))
        call = lambda: numpy_function(*args, **kwargs)  # noqa: E731
        if "out" in kwargs or name in _WRITES_INTO_FIRST:
            _mutate(where, call)
            return _wrap(kwargs.get("out"))
        result = call()
        if accepts_host and isinstance(result, np.ndarray) and not result.flags.owndata:
            result = result.copy()  # a device array never shares memory with the host
        if isinstance(result, (np.ndarray, np.generic)) and _new_data(result, inputs):
            result = _wrap(result)  # a NumPy scalar (a ufunc of 0-d arrays) is a new 0-d array
            if name in _ALLOCATIONS:
                _allocate(where)
            else:
                _launch(where, call, result)
            return result
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


DEVICE_MEMORY = (16 << 30, 80 << 30)  # what cuda.Device().mem_info reports: (free, total) bytes


class _Device:
    def __init__(self, device=None):
        self.id = 0

    @property
    def mem_info(self):
        return DEVICE_MEMORY

    def synchronize(self):
        _refuse_in_capture("a device synchronisation")
        counts.syncs += 1


class _MemoryPool:
    """``cuda.MemoryPool()``: a pool of its own, for :func:`_using_allocator` (the stand-in's
    arrays are NumPy's; the pool only says where a capture's memory would come from)."""

    def malloc(self, size):
        raise NotImplementedError("strict CuPy stand-in: MemoryPool.malloc is not called directly")


@contextlib.contextmanager
def _using_allocator(allocator=None):
    """``cuda.using_allocator``: new arrays in the body take memory from ``allocator``."""
    global _allocator
    saved, _allocator = _allocator, allocator
    try:
        yield
    finally:
        _allocator = saved


class _DefaultPool:
    """``get_default_memory_pool()``, as far as tinysegnet asks it: the free blocks it keeps
    (none: the stand-in's arrays are NumPy's)."""

    def free_bytes(self):
        return 0


class _Stream:
    """``cuda.Stream``: ``with stream:`` makes it current; it can capture a :class:`_Graph`."""

    def __init__(self, null=False, non_blocking=False, ptds=False):
        self.null = null

    def __enter__(self):
        _streams.append(self)
        return self

    def __exit__(self, *exc):
        _streams.remove(self)
        return False

    def begin_capture(self, mode=None):
        global _capture
        if self.null:
            raise RuntimeError("cannot capture on the default (legacy) stream")
        if _capture is not None:
            raise RuntimeError("strict CuPy stand-in: a stream is capturing already")
        _capture = (self, [])
        # What is computed while capturing may be of memory no kernel has written yet.
        self._errors = np.seterr(all="ignore")

    def end_capture(self):
        global _capture
        if _capture is None or _capture[0] is not self:
            raise RuntimeError("strict CuPy stand-in: end_capture on a stream that is not capturing")
        graph, _capture = _Graph(_capture[1]), None
        np.seterr(**self._errors)
        return graph

    def is_capturing(self):
        return _capture is not None and _capture[0] is self

    def synchronize(self):
        _refuse_in_capture("a stream synchronisation")
        counts.syncs += 1


class _Graph:
    """What a capture recorded: ``launch()`` does those operations again, on the same memory,
    in one launch."""

    def __init__(self, operations):
        self._operations = operations

    def launch(self, stream=None):
        _refuse_in_capture("launching a graph")
        saved = dataclasses.replace(counts)
        for operation in self._operations:
            operation()
        counts.ops, counts.syncs, counts.transfers = saved.ops + 1, saved.syncs, saved.transfers


class _Generator:
    """``cupy.random.default_rng(seed)``'s generator, as far as tinysegnet uses it: ``random``."""

    def __init__(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64):
        _refuse_in_capture("a random draw (a graph would replay the same numbers)")
        counts.ops += 1
        return ndarray(np.asarray(self._rng.random(size, dtype=dtype)))


random = types.SimpleNamespace(default_rng=_Generator)
cuda = types.SimpleNamespace(Device=_Device, Stream=_Stream, MemoryPool=_MemoryPool,
                             using_allocator=_using_allocator, is_available=lambda: True,
                             runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=_as_strided))

_HOST_INPUT = {"asarray", "array", "asanyarray"}
_ALLOCATIONS = {"empty", "empty_like"}  # memory from the pool, no kernel
_WRITES_INTO_FIRST = {"copyto"}  # one kernel writing into its first argument
_SPECIAL = {"ndarray": ndarray, "asnumpy": asnumpy, "get_array_module": get_array_module,
            "cuda": cuda, "lib": lib, "random": random, "fuse": fuse,
            "get_default_memory_pool": _DefaultPool}


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
