"""Checkpoints as plain ``.npz`` files: arrays and one JSON document, no pickles.

Loading uses ``allow_pickle=False``, so a checkpoint from a stranger cannot run code.
Writing goes to a temporary file in the same folder that is then renamed over the
target, so an interrupted save never leaves a half-written checkpoint behind.

Layout: ``model/<name>`` for weights and batch-norm statistics, ``optim/<name>`` for
the optimiser's velocities, and ``meta``: a JSON string holding the model's config,
the epoch, the random generator's state and whatever else the trainer records.
"""

import json
import os
import zipfile

import numpy as np

from .backend import to_numpy
from .files import atomic_path


def save(path, model_state, meta, optim_state=None):
    """Write a checkpoint atomically."""
    arrays = {f"model/{k}": to_numpy(v) for k, v in model_state.items()}
    arrays.update({f"optim/{k}": to_numpy(v) for k, v in (optim_state or {}).items()})
    arrays["meta"] = np.array(json.dumps(meta))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load(path):
    """(model_state, optim_state, meta) from a checkpoint written by :func:`save`."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            model = {k[6:]: data[k] for k in data.files if k.startswith("model/")}
            optim = {k[6:]: data[k] for k in data.files if k.startswith("optim/")}
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a tinysegnet checkpoint ({e})") from None
    return model, optim, meta
