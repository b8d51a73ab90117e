"""The training loop: one epoch, a whole run, resuming one.

No printing and no argparse here: progress goes to callbacks, so the ``train`` command gives
them a progress bar and lines of text, a lesson a plot, an experiment nothing at all.

A run folder holds ``last.npz`` (the last finished epoch, resumable), ``best.npz`` (the
best validation mIoU), ``metrics.jsonl`` (one line per epoch), ``curves.png`` and
``predictions.png``.
"""

import dataclasses
import datetime
import os
import signal
import time

import numpy as np

from .. import checkpoint, nn, threads, viz
from .. import functional as F
from ..backend import resolve_device, to_device, xp_of
from ..data import folder, synthetic, transforms
from ..data.classes import CAMVID, config_classes, read_classes
from ..errors import DataError, UserError
from ..files import strict_json, write_text
from ..models import build, from_config
from ..optim import SGD
from .config import checkpoint_meta, read_meta
from .folders import saved_progress
from .graphed import GraphedStep
from .step import train_step
from ..data.transforms import network_input
from .inference import recompute_bn_statistics, validate


class Diverged(UserError, RuntimeError):
    """The loss, or a weight, statistic or velocity, became non-finite. ``last_good`` is the
    checkpoint of the last finished epoch, or None when no epoch finished."""

    def __init__(self, message, last_good):
        super().__init__(message)
        self.last_good = last_good


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during training. Nothing is saved mid-epoch: ``checkpoint`` is the
    last.npz of the last finished epoch (None when none finished), so a resume repeats
    ``epoch`` exactly as an uninterrupted run would have run it."""

    def __init__(self, checkpoint_path, epoch):
        super().__init__(f"interrupted in epoch {epoch}")
        self.checkpoint, self.epoch = checkpoint_path, epoch


@dataclasses.dataclass
class Run:
    """A run in memory: what :func:`start` or :func:`restore` returns and :func:`fit` trains."""
    config: object
    model: object
    optimizer: object
    rng: object
    progress: dict
    train_split: object
    val_split: object
    out_dir: str
    device: str

    @property
    def classes(self):
        """The data's :class:`~tinysegnet.data.classes.Classes`."""
        return config_classes(self.config)

    @property
    def class_weights(self):
        w = self.config.class_weights
        return None if w is None else to_device(np.asarray(w, np.float32), self.device)


def load_data(config):
    """(train, val) splits at the config's size: the data set in ``data_dir`` (with the
    config's classes), else the synthetic set."""
    size = tuple(config.size)
    if config.data_dir is None:
        return (synthetic.load_synthetic_split("train", size, config.seed),
                synthetic.load_synthetic_split("val", size, config.seed))
    classes = config_classes(config)
    return (folder.load_split(config.data_dir, "train", size, classes),
            folder.load_split(config.data_dir, "val", size, classes))


def start(config, out_dir):
    """A new run: loads the data, fills the config's data statistics (input mean and std,
    median-frequency class weights) from the training split, builds model and optimiser."""
    device = resolve_device(config.device)
    classes = read_classes(config.data_dir) if config.data_dir else CAMVID
    config = dataclasses.replace(config, classes=classes.to_json())
    model = build(config.model, n_classes=len(classes), seed=config.seed)
    if config.encoder_weights:  # the paper's initialisation: before the data, so a wrong file costs nothing
        from ..interop.vgg16 import load_vgg16_encoder
        load_vgg16_encoder(model, config.encoder_weights)
    train_split, val_split = load_data(config)
    if not (train_split.labels != classes.ignore).any():
        raise DataError("the training split has no labelled pixels (every pixel is void): "
                         "nothing to learn from")
    mean, std = transforms.channel_stats(train_split.images)
    weights = (transforms.median_frequency_weights(train_split.labels, len(classes), classes.ignore)
               if config.class_weighting == "median" else None)
    config = dataclasses.replace(config, mean=mean.tolist(), std=std.tolist(),
                                 class_weights=None if weights is None else weights.tolist())
    model.to(device)
    optimizer = SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                    weight_decay=config.weight_decay)
    progress = dict(epoch=0, best_miou=-1.0, best_epoch=None, history=[])
    return Run(config, model, optimizer, np.random.default_rng(config.seed), progress,
               train_split, val_split, out_dir, device)


def restore(path, out_dir=None, **changes):
    """The run saved in checkpoint ``path``, to continue. ``changes`` replace config fields
    (epochs to reach; lr, momentum, weight_decay, device); ``out_dir`` defaults to the
    checkpoint's folder."""
    state, optim_state, meta = checkpoint.load(path)
    config, model_config, progress = read_meta(meta, path)
    config = dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
    config.validate()
    device = resolve_device(config.device)
    model = from_config(model_config)
    model.load_state_dict(state)
    model.to(device)
    optimizer = SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                    weight_decay=config.weight_decay)
    optimizer.load_state_dict(optim_state)
    rng = np.random.default_rng()
    rng.bit_generator.state = progress["rng"]
    train_split, val_split = load_data(config)
    return Run(config, model, optimizer, rng, dict(progress), train_split, val_split,
               out_dir or os.path.dirname(os.path.abspath(path)), device)


def train_epoch(run, on_batch=None, step=None):
    """One pass over the training split in shuffled batches; returns the mean loss.

    Per batch: flip (if configured), standardise, then ``step(x, y) -> loss`` on the device:
    forward, weighted cross-entropy over the valid pixels, backward, SGD step (by default
    :func:`train_step`; a :class:`GraphedStep` replays it from CUDA graphs).
    ``on_batch(images_done, mean_loss)`` reports progress. Raises FloatingPointError on a
    non-finite loss.
    """
    model, config = run.model.train(), run.config
    weights, classes = run.class_weights, run.classes  # once, not per batch
    if step is None:
        def step(x, y):
            return train_step(model, run.optimizer, x, y, weights, classes.ignore)
    # Dropout's masks: a generator per epoch, seeded by the run's seed and the epoch, so a
    # resumed run draws exactly the masks the uninterrupted one would have.
    epoch = run.progress["epoch"] + 1
    nn.seed_dropout(model, int(np.random.SeedSequence([config.seed, epoch]).generate_state(1)[0]))
    total, count = 0.0, 0
    for number, index in enumerate(transforms.batches(len(run.train_split), config.batch_size, run.rng)):
        images, labels = run.train_split.images[index], run.train_split.labels[index]
        if config.flip:
            images, labels = transforms.random_flip(images, labels, run.rng)
        F.check_labels(labels, len(classes), classes.ignore)  # on the host: free, unlike on a GPU
        x = to_device(network_input(images, config.mean, config.std, config.input_norm), run.device)
        y = to_device(labels, run.device)  # uint8: an eighth of int64's transfer
        try:
            loss = step(x, y)
        except FloatingPointError as e:
            raise FloatingPointError(f"{e} at step {number + 1}") from None
        total, count = total + loss * len(index), count + len(index)
        if on_batch:
            on_batch(count, total / count)
    return total / count


def save(run, name):
    """Write ``run.out_dir/name`` (atomic): weights, optimiser state, metadata with the random
    generator's state (the next epoch's shuffle and flips start from it)."""
    progress = dict(run.progress, rng=run.rng.bit_generator.state)
    meta = checkpoint_meta(run.config, run.model.config, progress)
    path = os.path.join(run.out_dir, name)
    checkpoint.save(path, run.model.state_dict(), meta, run.optimizer.state_dict())
    return path


def _write_curves(run):
    viz.training_curves(run.progress["history"], os.path.join(run.out_dir, "curves.png"),
                        run.progress["best_epoch"])


def _write_predictions(run, predictions):
    """predictions.png: four val images, their labels and the predictions of the best epoch
    (the model best.npz holds), so the picture shows what a user of the run gets."""
    split, progress = run.val_split, run.progress
    shown = np.linspace(0, len(split) - 1, min(4, len(split))).astype(int)
    viz.prediction_grid(split.images[shown], split.labels[shown], predictions[shown],
                        os.path.join(run.out_dir, "predictions.png"),
                        f"validation, best epoch {progress['best_epoch']} (val mIoU "
                        f"{100 * progress['best_miou']:.1f}), the model in best.npz",
                        run.classes.names, run.classes.palette)


CSV_FIELDS = ("epoch", "loss", "val_loss", "G", "C", "mIoU", "lr", "seconds", "val_seconds",
              "total_seconds", "finished")


def _write_metrics(run):
    """metrics.jsonl (one strict-JSON line per epoch) and metrics.csv (the same, a column per
    number and per class's IoU), of the run's own history, rewritten whole (atomically) each
    epoch, so a resumed run can never hold two histories."""
    history = run.progress["history"]
    write_text(os.path.join(run.out_dir, "metrics.jsonl"), "".join(strict_json(r) + "\n" for r in history))
    names = list(history[0]["class_iou"]) if history else []
    rows = [",".join(CSV_FIELDS + tuple(f"IoU {n}" for n in names))]
    for record in history:
        values = [record.get(f) for f in CSV_FIELDS] + [record["class_iou"].get(n) for n in names]
        rows.append(",".join("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))
                             for v in values))
    write_text(os.path.join(run.out_dir, "metrics.csv"), "\n".join(rows) + "\n")


def _check_finite(run, epoch):
    """Diverged when a weight, statistic or velocity went non-finite (a finite loss can hide
    a batch-norm variance that overflowed)."""
    state = dict(run.model.state_dict(), **run.optimizer.state_dict())
    for name, value in state.items():
        if value.dtype.kind == "f" and not bool(xp_of(value).isfinite(value).all()):
            raise Diverged(f"{name} holds non-finite values after epoch {epoch}", _last_good(run))


def _saved_epoch(run):
    """(last.npz, the epoch a resume starts with), or (None, 1) when none is saved here."""
    path = os.path.join(run.out_dir, "last.npz")
    if not os.path.exists(path):
        return None, 1
    return path, saved_progress(path)["epoch"] + 1


def _last_good(run):
    return os.path.join(run.out_dir, "last.npz") if run.progress["epoch"] else None


def fit(run, on_epoch=None, on_batch=None, recompute_bn=False, on_val_batch=None, blas_threads=None,
        cuda_graph=False):
    """Train ``run`` until ``run.config.epochs``; returns the history (one dict per epoch).

    After every epoch: validate, save best.npz (on a new best val mIoU) and then last.npz,
    rewrite metrics.jsonl and metrics.csv, redraw the pictures, then
    ``on_epoch(run, record, is_best)``. ``on_batch(images_done, mean_loss)`` reports training's
    progress, ``on_val_batch(images_done)`` validation's.
    ``recompute_bn``: at the end, batch-norm statistics over the training split
    (SegNet-Tutorial's procedure) replace the running averages in last.npz and best.npz.
    ``blas_threads``: None (the BLAS's own, every core), a count, or "auto" (before each
    epoch, the cores other processes leave free, ``train``'s default; :mod:`tinysegnet.threads`
    says why; no count changes a weight). CPU runs only.
    ``cuda_graph``: replay each training step from a CUDA graph (:class:`GraphedStep`: the
    same arithmetic in a few launches instead of hundreds). GPU runs of models without
    dropout only.

    Raises :class:`Diverged` on a non-finite loss or weight (nothing saved; the last good
    checkpoint untouched) and :class:`Interrupted` on Ctrl-C or SIGTERM. Nothing is saved
    mid-epoch, and the end-of-epoch writes are ordered so that an interrupt at any moment
    leaves last.npz at a finished epoch that a resume continues bit for bit.
    """
    os.makedirs(run.out_dir, exist_ok=True)
    progress = run.progress
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # nohup'd runs stopped
    epoch = progress["epoch"]
    step = GraphedStep(run.model, run.optimizer, run.class_weights, run.classes.ignore) if cuda_graph else None
    try:
        with threads.blas_threads(blas_threads if run.device == "cpu" else None) as adjust_threads:
            for epoch in range(progress["epoch"] + 1, run.config.epochs + 1):
                adjust_threads()
                began = time.perf_counter()
                try:
                    # Overflow is detected and reported below; NumPy's warnings would only repeat it.
                    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                        loss, seconds = _timed(lambda: train_epoch(run, on_batch, step))
                except FloatingPointError as e:
                    raise Diverged(f"{e} in epoch {epoch}", _last_good(run)) from None
                record, best = end_epoch(run, epoch, loss, seconds, began, on_val_batch)
                if on_epoch:
                    on_epoch(run, record, best)
    except KeyboardInterrupt:
        raise Interrupted(*_saved_epoch(run)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if recompute_bn:
        _recompute_bn_in_checkpoints(run)
    return progress["history"]


def end_epoch(run, epoch, loss, seconds, began, on_val_batch=None):
    """What follows an epoch of training (the model and optimiser in ``run`` as it left them):
    check every array finite, validate, save best.npz (on a new best val mIoU) and then
    last.npz, rewrite the metrics and the pictures. Returns (the epoch's record, is_best).
    ``began``: ``time.perf_counter()`` when the epoch started; ``seconds``: its training time.
    :func:`fit` calls it after each :func:`train_epoch`, and so does a run continued elsewhere
    (``interop.distributed``), so both write a run folder the same way."""
    progress = run.progress
    _check_finite(run, epoch)
    (scores, predictions), val_seconds = _timed(lambda: _validate(run, on_val_batch))
    record = dict(epoch=epoch, loss=loss, val_loss=scores["loss"], G=scores["G"], C=scores["C"],
                  mIoU=scores["mIoU"], lr=run.config.lr, class_iou=dict(zip(run.classes.names, scores["class_iou"])),
                  seconds=seconds, val_seconds=val_seconds)
    progress["epoch"] = epoch
    progress["history"].append(record)
    progress.pop("bn_recomputed", None)  # a new epoch's statistics are running averages again
    best = scores["mIoU"] > progress["best_miou"]
    # best.npz before last.npz: interrupted between the two, the resume repeats this epoch and
    # writes the same best.npz again.
    if best:
        progress["best_miou"], progress["best_epoch"] = scores["mIoU"], epoch
        save(run, "best.npz")
    # The epoch as the user waits for it: training, validation, best.npz (the record travels in
    # last.npz, so that save and the pictures after it, about a second, are not in it).
    record.update(total_seconds=time.perf_counter() - began,
                  finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    save(run, "last.npz")
    _write_metrics(run)
    _write_curves(run)
    if best or not os.path.exists(os.path.join(run.out_dir, "predictions.png")):
        _write_predictions(run, predictions if best else _best_predictions(run))
    return record, best


def _recompute_bn_in_checkpoints(run):
    """Batch-norm statistics over the training split into last.npz, then best.npz; each
    checkpoint rewritten says so (``progress.bn_recomputed``), so a run of this interrupted
    anywhere is finished by running it again, and none is recomputed twice."""
    if not run.progress.get("bn_recomputed"):
        _recompute_bn(run)
        run.progress["bn_recomputed"] = True
        save(run, "last.npz")
    best = os.path.join(run.out_dir, "best.npz")
    if os.path.exists(best) and not saved_progress(best).get("bn_recomputed"):
        best_run = restore(best, run.out_dir, device=run.device)
        _recompute_bn(best_run)
        best_run.progress["bn_recomputed"] = True
        save(best_run, "best.npz")


def _validate(run, on_batch=None):
    config = run.config
    return validate(run.model, run.val_split, config.mean, config.std, config.batch_size, run.class_weights,
                    run.classes.ignore, on_batch, config.input_norm)


def _best_predictions(run):
    """The val predictions of the model in best.npz (the run's own model when it is the best)."""
    if run.progress["best_epoch"] == run.progress["epoch"]:
        return _validate(run)[1]
    return _validate(restore(os.path.join(run.out_dir, "best.npz"), run.out_dir, device=run.device))[1]


def _recompute_bn(run):
    config = run.config
    recompute_bn_statistics(run.model, run.train_split, config.mean, config.std, config.batch_size, config.seed,
                            norm=config.input_norm)


def finish(run, recompute_bn=False):
    """Write what :func:`unfinished` found missing of the run's last saved epoch: the history,
    the pictures (from a fresh validation pass) and, if asked, the batch-norm recomputation."""
    _write_metrics(run)
    _write_curves(run)
    _write_predictions(run, _best_predictions(run))
    if recompute_bn:
        _recompute_bn_in_checkpoints(run)


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start
