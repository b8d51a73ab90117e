"""The grading worker: the one process a submission's code ever runs in.

``python -I worker.py`` is started by :mod:`tinysegnet.course.sandbox` in the submission's own
empty folder. It imports NumPy and a fixed set of standard-library modules, then locks
itself in before any of the student's code runs:

- Linux's Landlock: no file outside the submission's folder can be read or written (so
  not the course's solutions, tinysegnet's source, another submission or the grades), no
  program can be executed, no TCP connection made, no signal sent outside the sandbox;
- when started as root, the unprivileged user ``nobody``;
- resource limits: address space, CPU seconds, file size, no new processes or threads.

It then runs the notebook's code cells and answers calls: the grader sends a function name
and arrays, the worker calls the student's function and sends back what it returned and
the arguments as they are after the call (a function that writes into its inputs is seen).
Nothing the worker says is a verdict: the grader compares the returned arrays in its own
process. Messages are JSON headers and ``.npz`` blobs read with ``allow_pickle=False``.

This file imports nothing from tinysegnet: the library does not exist in here.
"""

import ctypes
import importlib.abc
import io
import json
import os
import resource
import struct
import sys
import traceback
import types

# imported before the lock: what a student may use besides NumPy itself
PRELOADED = ("math", "cmath", "itertools", "functools", "collections", "operator", "statistics",
             "random", "re", "copy", "dataclasses", "typing", "heapq", "bisect", "numbers",
             "fractions", "decimal", "string", "textwrap", "time", "warnings", "contextlib",
             "numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.lib.stride_tricks",
             "zipfile", "linecache", "tokenize")
REFUSED = ("tinysegnet", "torch", "scipy", "cupy", "jax", "tensorflow", "sklearn", "skimage",
           "cv2", "numba", "matplotlib", "pandas", "IPython", "nbclient", "nbformat")
REFUSED_MESSAGE = ("{name} is not available while grading: exercises are written with NumPy "
                   "and Python's standard library")


# -- messages ------------------------------------------------------------------------------

def frame(header, arrays=None):
    """One message as bytes: a JSON header and (possibly no) named arrays as an .npz blob."""
    blob = b""
    if arrays:
        import numpy as np
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        blob = buffer.getvalue()
    head = json.dumps(header).encode()
    return struct.pack("<IQ", len(head), len(blob)) + head + blob


def send(stream, header, arrays=None):
    stream.write(frame(header, arrays))
    stream.flush()


def receive(read_exactly, limit):
    """(header, {name: array}) of one message; ``read_exactly(n)`` returns n bytes or raises."""
    import numpy as np
    head_size, blob_size = struct.unpack("<IQ", read_exactly(12))
    if head_size > limit or blob_size > limit:
        raise ValueError(f"a message of {head_size + blob_size} bytes is over the limit of {limit}")
    header = json.loads(read_exactly(head_size))
    arrays = {}
    if blob_size:
        with np.load(io.BytesIO(read_exactly(blob_size)), allow_pickle=False) as blob:
            arrays = {name: blob[name] for name in blob.files}
    return header, arrays


def _bytes_reader(data):
    """``read_exactly`` over bytes in memory."""
    view, at = memoryview(data), [0]

    def read_exactly(n):
        chunk = bytes(view[at[0]:at[0] + n])
        at[0] += n
        return chunk
    return read_exactly


def pack_args(args):
    """Arguments as JSON descriptions and arrays: arrays travel in the blob, plain values
    (numbers, shapes) in the header."""
    import numpy as np
    described, arrays = [], {}
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            arrays[f"a{i}"] = a
            described.append({"array": f"a{i}"})
        else:
            described.append({"value": list(a) if isinstance(a, tuple) else a,
                              "tuple": isinstance(a, tuple)})
    return described, arrays


def unpack_args(described, arrays, prefix=""):
    return [arrays[prefix + d["array"]] if "array" in d else
            (tuple(d["value"]) if d["tuple"] else d["value"]) for d in described]


def pack_setup(cells, given, memory_bytes, cpu_seconds):
    """The first message: the code cells to run, the given helpers' source, the limits."""
    return frame({"cells": cells, "given": given, "memory_bytes": int(memory_bytes),
                  "cpu_seconds": int(cpu_seconds)})


def call_message(requests):
    """(header, arrays) asking for ``requests`` [(function name, args)]."""
    described, arrays = [], {}
    for i, (name, args) in enumerate(requests):
        d, a = pack_args(args)
        described.append({"function": name, "args": d})
        arrays.update({f"r{i}_{k}": v for k, v in a.items()})
    return {"op": "call", "requests": described}, arrays


def parse_replies(header, arrays, requests):
    """[Reply] from the worker's answer to ``requests``: checked against what was asked, so a
    reply the student's code forged cannot claim more or other calls."""
    entries = header["replies"]
    if len(entries) != len(requests):
        raise ValueError("a reply for another number of calls")
    replies = []
    for i, (entry, (_, args)) in enumerate(zip(entries, requests)):
        after = [arrays[f"after{i}_{j}"] if f"after{i}_{j}" in arrays else None for j in range(len(args))]
        if entry["error"] is not None:
            replies.append(Reply(None, after, str(entry["error"])[:500], bool(entry["not_attempted"])))
            continue
        values = [arrays[f"v{i}_{j}"] for j in range(int(entry["n"]))]
        replies.append(Reply(values if entry["sequence"] else values[0], after))
    return replies


# -- calling the student's functions ---------------------------------------------------------

class Reply:
    """What one call gave: ``value`` (an array, or a list of arrays when the function
    returned a sequence), ``after`` (the array arguments as they are after every call of
    the batch), or ``error`` (one line)."""

    def __init__(self, value=None, after=None, error=None, not_attempted=False):
        self.value, self.after, self.error, self.not_attempted = value, after, error, not_attempted


def _as_numbers(value):
    import numpy as np
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"returned {type(value).__name__} of {array.dtype}, not numbers")
    return array


def call_all(functions, requests):
    """[Reply] for ``requests`` [(function name, args)], made in order in this process.

    Every result is kept as returned until the last call has run, then converted: a
    function that hands back one buffer it reuses shows its first result changed."""
    import numpy as np
    raw = []
    for name, args in requests:
        fn = functions.get(name)
        if not callable(fn):
            raw.append((None, args, f"your notebook does not define a function {name}()", False))
            continue
        try:
            raw.append((fn(*args), args, None, False))
        except NotImplementedError:
            raw.append((None, args, "not attempted (the exercise still raises NotImplementedError)", True))
        except Exception as e:  # the student's error, reported as the exercise's failure
            raw.append((None, args, f"your function raised {type(e).__name__}: {e}".splitlines()[0], False))
    replies = []
    for value, args, error, stub in raw:
        after = [a.copy() if isinstance(a, np.ndarray) else None for a in args]
        if error is None:
            try:
                value = ([_as_numbers(v) for v in value] if isinstance(value, (tuple, list))
                         else _as_numbers(value))
            except (TypeError, ValueError) as e:
                value, error = None, str(e)
        replies.append(Reply(value, after, error, stub))
    return replies


# -- the lock --------------------------------------------------------------------------------

_FS = {name: 1 << bit for bit, name in enumerate(
    ("execute", "write_file", "read_file", "read_dir", "remove_dir", "remove_file", "make_char",
     "make_dir", "make_reg", "make_sock", "make_fifo", "make_block", "make_sym", "refer",
     "truncate", "ioctl_dev"))}
_FS_BY_ABI = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}  # how many of the rights above each ABI knows
_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446
_PR_SET_NO_NEW_PRIVS = 38


def landlock_abi():
    """The kernel's Landlock ABI version, 0 where there is none (not Linux, too old, off)."""
    if not sys.platform.startswith("linux"):
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    version = libc.syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


def lock_in(folder, readable):
    """Restrict this process (and any it could start) to reading ``readable`` paths and
    reading and writing inside ``folder``; nothing may be executed, no TCP used, no signal
    sent out of the sandbox. Raises OSError where the kernel refuses."""
    abi = landlock_abi()
    if abi < 1:
        raise OSError("Landlock is not available in this kernel")
    libc = ctypes.CDLL(None, use_errno=True)
    names = list(_FS)[:_FS_BY_ABI.get(abi, 16)]
    handled = sum(_FS[n] for n in names)
    net = 0b11 if abi >= 4 else 0  # bind and connect TCP
    scoped = 0b11 if abi >= 6 else 0  # abstract unix sockets, signals
    attr = struct.pack("<QQQ", handled, net, scoped)
    size = 24 if abi >= 6 else (16 if abi >= 4 else 8)
    buffer = ctypes.create_string_buffer(attr[:size], size)
    ruleset = libc.syscall(_SYS_CREATE, buffer, ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    file_rights = {"read_file", "write_file", "truncate", "execute", "ioctl_dev"}

    def allow(path, rights):
        if not os.path.isdir(path):
            rights = [r for r in rights if r in file_rights]
        mask = sum(_FS[r] for r in rights if r in names)
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            rule = ctypes.create_string_buffer(struct.pack("<Qi", mask, fd), 12)
            if libc.syscall(_SYS_ADD_RULE, ruleset, ctypes.c_uint32(1), rule, ctypes.c_uint32(0)) < 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
        finally:
            os.close(fd)

    try:
        for path in readable:
            allow(path, ["read_file", "read_dir"])
        allow(folder, [n for n in names if n != "execute"])
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT, ruleset, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)


def _readable_library():
    """NumPy's folder and the standard library's entries (without its site-packages: there
    sit SciPy, PyTorch and tinysegnet's own installation)."""
    import numpy
    paths = [os.path.dirname(numpy.__file__)]
    libs = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
    if os.path.isdir(libs):
        paths.append(libs)
    stdlib = os.path.dirname(os.__file__)
    paths += [os.path.join(stdlib, entry) for entry in os.listdir(stdlib)
              if entry not in ("site-packages", "dist-packages")]
    return paths


def limit(memory_bytes, cpu_seconds):

    for which, value in ((resource.RLIMIT_AS, memory_bytes), (resource.RLIMIT_CPU, cpu_seconds),
                         (resource.RLIMIT_FSIZE, 64 << 20), (resource.RLIMIT_NPROC, 1),
                         (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(which, (value, value))


class _Refuse(importlib.abc.MetaPathFinder):
    """Imports of the library, SciPy, PyTorch and the like fail with one clear line (Landlock
    would refuse them anyway, less politely)."""

    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in REFUSED and name not in sys.modules:
            raise ImportError(REFUSED_MESSAGE.format(name=name))
        return None


class _Shell:
    """Stands in for IPython's ``get_ipython()`` in a graded notebook: magics do nothing."""

    def run_line_magic(self, *args, **kwargs):
        return None

    run_cell_magic = system = getoutput = run_line_magic


def _shims(given):
    """Modules holding only the helpers a statement hands out (``tinysegnet.metrics.boundary``):
    ``{module name: source}``, executed here."""
    for name, source in given.items():
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        module = sys.modules[name]
        exec(compile(source, f"<given {name}>", "exec"), module.__dict__)


def run_cells(cells, namespace):
    """Run each code cell in ``namespace``; a cell that raises is noted and the next runs."""
    errors = []
    for i, source in enumerate(cells):
        try:
            exec(compile(source, f"<cell {i + 1}>", "exec"), namespace)
        except Exception as e:  # the student's error: noted, and the next cell runs
            errors.append(f"cell {i + 1}: {type(e).__name__}: {e}".splitlines()[0][:300])
    return errors


def main():
    """Serve one submission: read the set-up on stdin's descriptor, lock in, run the cells,
    answer calls until told to stop. Replies go to the descriptor named on the command line,
    so the student's printing (to the log) cannot be mistaken for one."""
    import numpy as np
    for name in PRELOADED:
        importlib.import_module(name)
    reply_fd, request_fd = int(sys.argv[1]), int(sys.argv[2])
    replies = os.fdopen(reply_fd, "wb", buffering=0)
    requests = os.fdopen(request_fd, "rb", buffering=0)

    def read_exactly(n):
        data = b""
        while len(data) < n:
            chunk = requests.read(n - len(data))
            if not chunk:
                raise EOFError("the grader closed the connection")
            data += chunk
        return data

    setup, _ = receive(read_exactly, 1 << 30)
    receive(_bytes_reader(frame({}, {"warm": np.zeros(2)})), 1 << 20)  # .npz's imports, before the lock
    folder = os.getcwd()
    lock_in(folder, _readable_library())
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    limit(setup["memory_bytes"], setup["cpu_seconds"])
    sys.meta_path.insert(0, _Refuse())
    _shims(setup["given"])
    namespace = {"__name__": "__main__", "get_ipython": _Shell, "np": np}
    send(replies, {"ready": True, "cell_errors": run_cells(setup["cells"], namespace)})
    while True:
        header, arrays = receive(read_exactly, 1 << 30)
        if header.get("op") != "call":
            return
        requests_ = [(r["function"], unpack_args(r["args"], arrays, f"r{i}_"))
                     for i, r in enumerate(header["requests"])]
        out, described = {}, []
        for i, reply in enumerate(call_all(namespace, requests_)):
            entry = {"error": reply.error, "not_attempted": reply.not_attempted,
                     "sequence": isinstance(reply.value, list),
                     "n": len(reply.value) if isinstance(reply.value, list) else 1,
                     "after": [j for j, a in enumerate(reply.after) if a is not None]}
            values = reply.value if isinstance(reply.value, list) else [reply.value]
            if reply.error is None:
                out.update({f"v{i}_{j}": v for j, v in enumerate(values)})
            out.update({f"after{i}_{j}": reply.after[j] for j in entry["after"]})
            described.append(entry)
        send(replies, {"replies": described}, out)


if __name__ == "__main__":
    try:
        main()
    except EOFError:
        pass
    except Exception:
        traceback.print_exc()
        sys.exit(3)
