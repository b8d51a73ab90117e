"""What every command shares: argument types checked at parse time, output paths checked
before any work, and one line (never a traceback) for a user's mistake.

Exit codes: 2 for misuse (a bad flag or value, an output path that cannot be written, a
folder that holds a run), 1 for a failure found in the inputs (a corrupt checkpoint, a
missing image), 130 for Ctrl-C.
"""

import argparse
import math
import os
import sys

from tqdm import tqdm

from .allocator import reuse_freed_memory
from .errors import Misuse, UserError  # noqa: F401  (Misuse: the commands raise it from here)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a mistake reported in one line: the usage is one ``--help`` away. The
    description (a module docstring's first line) is shown as plain text, without reST's
    double backticks."""

    def __init__(self, *args, description=None, **kwargs):
        super().__init__(*args, description=description and description.replace("``", ""), **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


class ProgressBar:
    """A progress bar on stderr over ``total`` images for a command's long inference steps,
    ``to(done)`` moving it (the ``on_batch`` callbacks of the engine's inference functions)."""

    def __init__(self, total, what):
        self.tqdm = tqdm(total=total, desc=what, unit="img", file=sys.stderr, leave=False)

    def to(self, done):
        self.tqdm.update(done - self.tqdm.n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.tqdm.close()


def positive_int(text):
    """argparse type: an integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def thread_count(text):
    """argparse type: "auto" or an integer >= 1 (``train --threads``)."""
    return "auto" if text == "auto" else positive_int(text)


def non_negative_int(text):
    """argparse type: an integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def float_in(low, high, low_open=False, high_open=False):
    """argparse type: a finite float in [low, high] (open at either end if asked)."""
    def parse(text):
        value = _number(text, float)
        below = value <= low if low_open else value < low
        above = value >= high if high_open else value > high
        if not math.isfinite(value) or below or above:
            if math.isinf(high):
                expected = f"a finite number {'>' if low_open else '>='} {low:g}"
            else:
                expected = (f"a finite number in {'(' if low_open else '['}{low:g}, "
                            f"{high:g}{')' if high_open else ']'}")
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
        return value
    return parse


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a{'n integer' if kind is int else ' number'}: {text!r}") from None


def folder_name(text):
    """argparse type: a folder's name; an empty one is a mistake (``--data-dir ''`` would
    otherwise read as no folder at all, and train on the synthetic set)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a folder, or leave the flag out")
    return text


def writable_folder(path, create=True):
    """Raise Misuse unless ``path`` is (or, with ``create``, can become) a writable folder."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise Misuse(f"{path} is a file, not a folder")
    existing = path
    while not os.path.exists(existing):
        parent = os.path.dirname(os.path.abspath(existing))
        if parent == existing:
            break
        existing = parent
    if not create and existing != path:
        raise Misuse(f"{path}: no such folder")
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise Misuse(f"{path}: cannot write there ({existing} is not a writable folder)")


def writable_file(path):
    """Raise Misuse unless ``path`` can be written: its folder exists and is writable, and it
    is not a folder itself."""
    if os.path.isdir(path):
        raise Misuse(f"{path} is a folder, not a file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise Misuse(f"{path}: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise Misuse(f"{path}: cannot write in {folder}")


def _same(a, b):
    """Whether two paths name one file: by inode where both exist (links, hard links), else
    by the path with every link resolved."""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(outputs, inputs=(), overwrite=False, overwrite_flag="--overwrite"):
    """Raise Misuse (one line) unless every path of ``outputs`` may be written: not one of
    ``inputs`` (compared as files, through links), not another output of the same command,
    not a file that exists (unless ``overwrite``), and in a writable folder. Every command
    calls this before any work, so no output lands on an input or on another output."""
    outputs = [p for p in outputs if p]
    for i, path in enumerate(outputs):
        for source in inputs:
            if source and _same(path, source):
                raise Misuse(f"{path} is also an input ({source}): it would be overwritten; "
                             f"choose another name")
        for other in outputs[:i]:
            if _same(path, other):
                raise Misuse(f"{path} and {other} name the same file: two outputs cannot share it")
        writable_file(path)
        if os.path.lexists(path) and not overwrite:
            raise Misuse(f"{path} already exists: choose another name, or add {overwrite_flag} to replace it")


def add_precision(parser):
    parser.add_argument("--precision", choices=["fp32", "tf32"],
                        help="GPU: float32 products on TF32 tensor cores (the default, as PyTorch runs its "
                             "convolutions; 10-bit mantissas) or in full precision (CuPy's own default; "
                             "CUPY_TF32=0 in the environment chooses it too)")


def apply_precision(args):
    """--precision, before any product is computed (:func:`backend.set_gpu_precision`). Without
    the flag the environment's ``CUPY_TF32`` stands where it is set, else a GPU takes tf32, the
    precision PyTorch's convolutions ship with, so that a comparison with PyTorch is like for
    like (the tests set ``CUPY_TF32=0``: they check full float32). tf32 asked for on the CPU
    is one line: it has no TF32, every float32 product there is full precision."""
    from .backend import TF32_ENV, resolve_device, set_gpu_precision
    if args.precision is None:
        if TF32_ENV not in os.environ:
            set_gpu_precision("tf32")  # before the device probe's first product, which reads it
            if resolve_device(args.device) != "gpu":
                del os.environ[TF32_ENV]  # nothing set for a CPU run to pass on
        return
    set_gpu_precision(args.precision)
    if args.precision == "tf32" and resolve_device(args.device) != "gpu":
        raise Misuse("--precision tf32 is a GPU's (its TF32 tensor cores); this run is on the CPU, "
                     "which computes float32 in full: leave it out")


def device_said(device):
    """"cpu", or "gpu (tf32 products)" / "gpu (fp32 products)": a device as a command's report
    names it, a GPU with the precision of its products, which the results depend on."""
    from .backend import gpu_precision
    return f"gpu ({gpu_precision()} products)" if device == "gpu" else device


def require_dropout(model, name, path):
    """Misuse unless ``model`` (model ``name``, from checkpoint ``path``) has dropout layers
    for ``--samples`` to sample."""
    from .nn import dropout_layers
    if not dropout_layers(model):
        raise Misuse(f"--samples needs a model with dropout (bayesian-segnet-basic, "
                     f"bayesian-segnet); {path} holds {name}")


def run_main(prog, body):
    """Call ``body()``: a :class:`~tinysegnet.errors.UserError` becomes its one line and its
    exit code (2 for misuse, 1 for bad inputs or a machine that refused a write), Ctrl-C or
    SIGTERM one line and exit 130; anything else is a bug of ours and keeps its traceback.
    Large freed arrays are kept for reuse meanwhile (:mod:`tinysegnet.allocator` says why)."""
    import signal
    # SIGTERM (kill, a scheduler's stop) is Ctrl-C: one line and exit 130 wherever it lands
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with reuse_freed_memory():
            return body()
    except UserError as e:
        _fail(prog, e, e.exit_code)
    except KeyboardInterrupt:
        _fail(prog, "interrupted (Ctrl-C or SIGTERM); nothing half-written was left behind", 130)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fail(prog, message, code):
    text = " ".join(str(message).split())  # one line, whatever the message held
    print(f"{prog}: {text}", file=sys.stderr)
    sys.exit(code)
