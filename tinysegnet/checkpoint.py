"""Checkpoints as plain ``.npz`` files: arrays and one JSON document, no pickles.

Loading uses ``allow_pickle=False``, so a checkpoint from a stranger cannot run code.
Writing goes to a temporary file in the same folder that is then renamed over the
target, so an interrupted save never leaves a half-written checkpoint behind.

Layout: ``model/<name>`` for weights and batch-norm statistics, ``optim/<name>`` for
the optimiser's velocities, and ``meta``: a JSON string holding the model's config,
the epoch, the random generator's state and whatever else the trainer records.
"""

import contextlib
import json
import os
import zipfile

import numpy as np

from .backend import to_numpy
from .errors import DataError
from .files import atomic_path, strict_json


class NonFiniteError(DataError):
    """An array holding inf or NaN: never saved, never loaded."""


def _require_finite(arrays, path, verb):
    for name, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise NonFiniteError(f"{path}: {name} holds non-finite values (inf or NaN); {verb}")


def save(path, model_state, meta, optim_state=None):
    """Write a checkpoint atomically. Refuses (NonFiniteError, nothing written) when any array
    holds inf or NaN: a checkpoint is only ever a state worth returning to. ``meta`` is written
    as strict JSON (a NaN score becomes null)."""
    arrays = {f"model/{k}": to_numpy(v) for k, v in model_state.items()}
    arrays.update({f"optim/{k}": to_numpy(v) for k, v in (optim_state or {}).items()})
    _require_finite(arrays, path, "not saved")
    arrays["meta"] = np.array(strict_json(meta))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


@contextlib.contextmanager
def _archive(path):
    """The checkpoint's open .npz archive, its metadata checked present; anything else is a
    one-line DataError naming the file."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: checkpoint not found")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single NumPy array, not an .npz archive")
        with data:
            if "meta" not in data.files:
                raise ValueError("no metadata")
            yield data
    except ValueError as e:
        reason = ("it holds Python objects, which are never loaded" if "pickle" in str(e)
                  else " ".join(str(e).split()))
        raise DataError(f"{path}: not a tinysegnet checkpoint ({reason})") from None
    except (EOFError, KeyError, OSError, zipfile.BadZipFile) as e:
        reason = "empty file" if os.path.getsize(path) == 0 else f"{type(e).__name__}: {e}"
        raise DataError(f"{path}: not a tinysegnet checkpoint ({' '.join(reason.split())})") from None


def load_meta(path):
    """The metadata of a checkpoint, without reading its arrays (an .npz member is read only
    when asked for): for the epoch number and the run's settings."""
    with _archive(path) as data:
        return json.loads(str(data["meta"]))


def load(path):
    """(model_state, optim_state, meta) from a checkpoint written by :func:`save`.

    Anything else (missing, empty, truncated, another NumPy file, Python objects, no
    metadata, non-finite arrays) is a one-line error naming the file.
    """
    with _archive(path) as data:
        meta = json.loads(str(data["meta"]))
        model = {k[6:]: data[k] for k in data.files if k.startswith("model/")}
        optim = {k[6:]: data[k] for k in data.files if k.startswith("optim/")}
    _require_finite({f"model/{k}": v for k, v in model.items()}, path,
                    "refusing to load it (the run diverged before this was saved)")
    _require_finite({f"optim/{k}": v for k, v in optim.items()}, path, "refusing to load it")
    return model, optim, meta
