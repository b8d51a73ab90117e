"""Writing files so that a crash, a full disk or Ctrl-C never leaves a half-written one.

Everything tinysegnet writes (checkpoints, pictures, score files, notebooks, the synthetic
set) is written under a temporary name in the target's own folder and then renamed over the
target, which is atomic on one filesystem: readers see the old file or the new one, never
part of one. On failure the temporary is removed.
"""

import contextlib
import json
import math
import os
import shutil
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` to write to; renamed to ``path`` when the body
    succeeds, removed when it raises. The temporary keeps ``path``'s extension, for writers
    that choose the format from it (PIL, matplotlib, numpy)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would outlive the rename
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_folder(path):
    """Yield a temporary folder beside ``path`` to fill; renamed to ``path`` when the body
    succeeds, removed when it raises (a half-written folder never appears)."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def strict_json(value, **options):
    """``json.dumps`` that strict parsers accept: NaN and infinities (an undefined score, such
    as the IoU of a class absent from a split) become null."""
    return json.dumps(_finite_or_none(value), allow_nan=False, **options)


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # a NumPy scalar
        return _finite_or_none(value.item())
    return value


def write_text(path, text):
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
