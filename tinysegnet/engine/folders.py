"""What a run folder holds, and the checks that keep a run from losing another's work: a new
run never lands on an old one, a resume never overwrites a later epoch, and a run killed
between its end-of-epoch writes is found unfinished (and finished by ``training.finish``)."""

import os
import shutil

from .. import checkpoint
from ..errors import Misuse
from .config import read_meta


def saved_progress(path):
    """The progress dict (epoch, best, history, ...) of checkpoint ``path``, read from its
    metadata alone (the weights are not loaded)."""
    return read_meta(checkpoint.load_meta(path), path)[2]


class RunFolderError(Misuse, ValueError):
    """A run folder that would lose work if written to (one line)."""


# what a run writes, in its folder (and, with train --tensorboard, a folder of event files)
RUN_FILES = ("last.npz", "best.npz", "metrics.jsonl", "metrics.csv", "curves.png", "predictions.png")
TENSORBOARD = "tensorboard"


def check_new_run_folder(out_dir, overwrite=False):
    """Before a new run writes to ``out_dir``: refuse a folder that holds a run, unless
    ``overwrite``, in which case that run's files are removed (so two histories never mix)."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise RunFolderError(f"{out_dir} is a file, not a folder")
    folders = [f for f in RUN_FILES if os.path.isdir(os.path.join(out_dir, f))]
    if folders:
        raise RunFolderError(f"{os.path.join(out_dir, folders[0])} is a folder where a run writes "
                             f"a file: move it, or choose another folder")
    held = [f for f in RUN_FILES if os.path.exists(os.path.join(out_dir, f))]
    if held and not overwrite:
        raise RunFolderError(f"{out_dir} already holds a run ({', '.join(held)}): choose another "
                             f"folder, continue it with --resume {os.path.join(out_dir, 'last.npz')}, "
                             f"or replace it with --overwrite")
    for f in held:
        os.remove(os.path.join(out_dir, f))
    events = os.path.join(out_dir, TENSORBOARD)
    if os.path.isdir(events) and os.listdir(events):
        if not overwrite:  # another run's TensorBoard history: never mixed with this one's
            raise RunFolderError(f"{events} holds another run's TensorBoard events: choose another folder, "
                                 f"or replace them with --overwrite")
        shutil.rmtree(events)


def check_resume_folder(path, out_dir, overwrite=False):
    """Before resuming checkpoint ``path`` into ``out_dir``: never overwrite a later epoch
    (resuming best.npz where last.npz is further on), nor another run's folder.
    Returns the checkpoint's (RunConfig, epoch), read once here."""
    config, _, progress = read_meta(checkpoint.load_meta(path), path)
    epoch = progress["epoch"]
    last = os.path.join(out_dir, "last.npz")
    same_folder = os.path.samefile(os.path.dirname(os.path.abspath(path)), out_dir) if os.path.isdir(out_dir) else False
    if same_folder and os.path.exists(last) and not os.path.samefile(last, path):
        later = saved_progress(last)["epoch"]
        if later > epoch and not overwrite:
            raise RunFolderError(f"{path} is epoch {epoch} but {last} holds epoch {later}: resume "
                                 f"from {last}, or branch from epoch {epoch} with --out NEW_FOLDER")
    elif not same_folder:
        check_new_run_folder(out_dir, overwrite)
    return config, epoch


def unfinished(out_dir, epoch, recompute_bn=False):
    """What a run whose last.npz holds ``epoch`` is missing of that epoch's end (a process
    killed after last.npz was written): the files, and the batch-norm recomputation when
    asked for and not done in every checkpoint. Empty when the run is whole."""
    missing = [name for name, header in (("metrics.jsonl", 0), ("metrics.csv", 1))
               if _lines(os.path.join(out_dir, name)) != epoch + header]
    missing += [name for name in ("curves.png", "predictions.png")
                if not os.path.isfile(os.path.join(out_dir, name))]
    if recompute_bn:
        saved = [n for n in ("last.npz", "best.npz") if os.path.exists(os.path.join(out_dir, n))]
        if any(not saved_progress(os.path.join(out_dir, n)).get("bn_recomputed") for n in saved):
            missing.append("batch-norm recomputation")
    return missing


def _lines(path):
    """The number of non-blank lines of a text file, None when there is none."""
    try:
        with open(path) as f:
            return sum(1 for line in f if line.strip())
    except (FileNotFoundError, IsADirectoryError):
        return None
