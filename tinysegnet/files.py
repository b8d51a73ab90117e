"""Writing files so that a crash, a full disk or Ctrl-C never leaves a half-written one.

Everything tinysegnet writes (checkpoints, pictures, score files, notebooks, the synthetic
set) is written under a temporary name in the target's own folder and then renamed over the
target, which is atomic on one filesystem: readers see the old file or the new one, never
part of one. On failure the temporary is removed.
"""

import contextlib
import errno
import fcntl
import json
import math
import os
import shutil
import tempfile

from .errors import Misuse, UserError

# what the machine, not our code, can make a write fail with
ENVIRONMENT_ERRORS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG,
                      errno.EIO}


class WriteFailed(UserError):
    """A file could not be written (disk full, read-only, permission): one line, exit 1; the
    earlier file is intact and the temporary is gone."""


class FolderBusy(Misuse):
    """Another process holds the folder (one line, exit 2)."""


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
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    except OSError as e:
        _raise_if_environment(e, path)
        raise
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would outlive the rename
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            _raise_if_environment(e, path)
        raise


def _raise_if_environment(error, path):
    if error.errno in ENVIRONMENT_ERRORS:
        raise WriteFailed(f"cannot write {path}: {os.strerror(error.errno)}; nothing of it was "
                          f"left behind and the earlier file, if any, is intact") from None


def remove_temporaries(folder):
    """Remove the ``.tmp-*`` files and folders a killed process left in ``folder`` (call it
    only while holding the folder). Returns their names."""
    found = sorted(n for n in os.listdir(folder) if n.startswith(".tmp-")) if os.path.isdir(folder) else []
    for name in found:
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return found


_HELD = {}  # folder -> open lock file: held until this process ends


def hold_folder(folder):
    """Make this process the one that writes ``folder`` (created if need be): an exclusive
    ``flock`` on ``folder/.lock``, held until the process ends (the kernel drops it then, so a
    killed process never leaves the folder blocked). Raises FolderBusy naming the holder."""
    folder = os.path.realpath(folder)
    if folder in _HELD:
        return
    os.makedirs(folder, exist_ok=True)
    handle = open(os.path.join(folder, ".lock"), "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise FolderBusy(f"{folder} is in use by process {holder}: wait for it to finish, or use "
                         f"another folder") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _HELD[folder] = handle


@contextlib.contextmanager
def atomic_folder(path):
    """Yield a temporary folder beside ``path`` to fill; renamed to ``path`` when the body
    succeeds, removed when it raises (a half-written folder never appears)."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    except OSError as e:
        _raise_if_environment(e, path)
        raise
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            _raise_if_environment(e, path)
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
