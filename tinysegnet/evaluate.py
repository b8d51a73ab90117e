"""Score a checkpoint on a split: ``python -m tinysegnet.evaluate CKPT [--data-dir DIR --split val]``.

Prints G, C, mIoU, BF and a per-class table of accuracy and IoU; ``--json FILE`` saves them.
By default predictions are scored at the size the model was trained at (labels resized
nearest-neighbour); ``--full-res`` resizes the class scores bilinearly to each label's own
size instead, which is what the paper's figures mean. ``--samples N`` scores a Bayesian
model's Monte Carlo dropout estimate (the argmax of the mean of N sampled softmaxes) instead
of its single pass with dropout off ("weight averaging").
"""

import os

import numpy as np

from . import cli, engine
from .backend import resolve_device
from .cli import non_negative_int, positive_int
from .data.camvid import CLASSES
from .data.classes import config_classes
from .files import strict_json, write_text
from .viz import confusion_picture


def format_scores(result, class_names=CLASSES):
    lines = [f"G {100 * result['G']:.1f}  C {100 * result['C']:.1f}  "
             f"mIoU {100 * result['mIoU']:.1f}" + (f"  BF {100 * result['BF']:.1f}" if "BF" in result else ""),
             f"{'class':<12} {'accuracy':>8} {'IoU':>6}"]
    for name, acc, iou in zip(class_names, result["class_accuracy"], result["class_iou"]):
        fmt = lambda v: "   -" if v is None or np.isnan(v) else f"{100 * v:.1f}"
        lines.append(f"{name:<12} {fmt(acc):>8} {fmt(iou):>6}")
    return "\n".join(lines)


def main(argv=None):
    p = cli.ArgumentParser(prog="python -m tinysegnet.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", nargs="?", help="a run's checkpoint (or --pretrained)")
    p.add_argument("--pretrained", choices=sorted(engine.pretrained.SHIPPED),
                   help="score a model shipped with tinysegnet (give --data-dir: the data it was trained on "
                        "is not on your machine's path)")
    p.add_argument("--data-dir", type=cli.folder_name,
                   help="CamVid folder (default: the data the model was trained on)")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--full-res", action="store_true", help="score at the labels' own size")
    p.add_argument("--recompute-bn", action="store_true",
                   help="first recompute batch-norm statistics over the training split")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--size", type=positive_int, nargs=2, metavar=("H", "W"),
                   help="with --full-res: the size to score at when the split's images differ in size")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    cli.add_precision(p)
    p.add_argument("--json", help="also write the scores to this JSON file, with what was scored "
                                  "(checkpoint, split, size, classes, samples) and the confusion matrix")
    p.add_argument("--confusion", metavar="FILE.png",
                   help="also draw the confusion matrix (rows normalised, class names) to this PNG")
    p.add_argument("--overwrite", action="store_true", help="replace the --json or --confusion file if it exists")
    p.add_argument("--samples", type=positive_int,
                   help="Monte Carlo dropout passes per image (Bayesian models)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="with --samples: the seed of the dropout masks (default 0)")
    args = p.parse_args(argv)
    if bool(args.checkpoint) == bool(args.pretrained):
        p.error("give a checkpoint or --pretrained NAME (one of them)")
    if args.pretrained and not args.data_dir:
        p.error("--pretrained needs --data-dir: the folder of the data set to score it on")
    if args.size and not args.full_res:
        p.error("--size is the scoring size of --full-res: give both, or neither")
    cli.run_main("evaluate", lambda: _evaluate(args))


def _evaluate(args):
    cli.apply_precision(args)  # before the device is probed: CuPy reads it at its first product
    if args.pretrained:
        args.checkpoint = engine.pretrained.pretrained_path(args.pretrained)
    run_folder = os.path.dirname(os.path.abspath(args.checkpoint))  # before the scoring, not after it
    cli.check_outputs([args.json, args.confusion],
                      [args.checkpoint] + [os.path.join(run_folder, f) for f in engine.folders.RUN_FILES],
                      args.overwrite)
    device = resolve_device(args.device)
    model, config, progress = engine.load_run(args.checkpoint, device)
    classes = config_classes(config)
    if args.samples:
        cli.require_dropout(model, config.model, args.checkpoint)
    if args.recompute_bn:
        train_split, _ = engine.load_eval_data(config, "train", args.data_dir, full_res=False)
        with cli.ProgressBar(len(train_split), "batch-norm statistics") as bar:
            engine.recompute_bn_statistics(model, train_split, config.mean, config.std, args.batch_size,
                                           config.seed, on_batch=bar.to, norm=config.input_norm)
    split, full = engine.load_eval_data(config, args.split, args.data_dir,
                                        tuple(args.size) if args.size else None, args.full_res)
    scored = full if args.full_res else split
    with cli.ProgressBar(len(split), f"{args.split} split") as bar:
        result, _ = engine.evaluate_split(model, split, config.mean, config.std, args.batch_size, boundary_f1=True,
                                          full_res=full if args.full_res else None,
                                          samples=args.samples or 0, seed=args.seed, void=classes.ignore,
                                          on_batch=bar.to, norm=config.input_norm)
    where = f"{args.split} split, {'full resolution' if args.full_res else 'at %dx%d' % tuple(config.size)}"
    if args.samples:
        where += f", Monte Carlo dropout with {args.samples} samples"
    if model.device == "gpu":
        where += f", on the {cli.device_said(model.device)}"
    title = f"{os.path.basename(args.checkpoint)} ({config.model}, epoch {progress['epoch']}) on the {where}"
    print(title)
    print(format_scores(result, classes.names))
    if args.confusion:
        confusion_picture(result["confusion"], args.confusion, classes.names, f"{title}: rows normalised")
    if args.json:
        scored_size = sorted({tuple(int(v) for v in scored.size)})
        what = dict(checkpoint=os.path.abspath(args.checkpoint), model=config.model, epoch=progress["epoch"],
                    split=args.split, data=args.data_dir or config.data_dir or "synthetic", images=len(split),
                    size=list(scored_size[0]), full_res=args.full_res, trained_at=list(config.size),
                    samples=args.samples or 0, seed=args.seed if args.samples else None,
                    recompute_bn=args.recompute_bn, classes=list(classes.names), void=classes.void)
        write_text(args.json, strict_json(dict(what, **result), indent=2) + "\n")


if __name__ == "__main__":
    main()
