"""Segment images: ``python -m tinysegnet.predict CKPT IMAGE_OR_DIR... --out DIR``
(or ``--pretrained camvid IMAGE_OR_DIR...``: the SegNet-Basic shipped with the package).

For each image writes ``<name>_labels.png`` (class ids coloured with CamVid's palette) and
``<name>_overlay.png`` (the labels blended over the image), each above the class legend and
enlarged when small; ``--format index`` writes ``<name>_ids.png`` instead (8-bit class ids at
the image's own size, for other tools), ``both`` all three. With ``--samples N`` (a Bayesian
model: Monte Carlo dropout) the labels are the argmax of the mean of N sampled softmaxes, and
``<name>_uncertainty.png`` shows image, prediction and uncertainty (their variance averaged
over the classes) side by side, on one colour scale for every image.
"""

import os
import sys

from PIL import Image
from tqdm import tqdm

from . import cli, engine
from .backend import resolve_device
from .cli import Misuse, float_in, non_negative_int, positive_int
from .data.camvid import DataError, read_image
from .data.classes import config_classes
from .files import atomic_path
from .viz import colorize, overlay, uncertainty_bound, uncertainty_panel, with_legend

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def find_images(paths):
    """Image files named directly, or found (non-recursively) in named folders, sorted."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            found += sorted(os.path.join(path, f) for f in os.listdir(path)
                            if f.lower().endswith(IMAGE_SUFFIXES))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise DataError(f"{path}: no such file or folder")
    if not found:
        raise DataError(f"no images found in {', '.join(paths)} (predict reads "
                        f"{', '.join(IMAGE_SUFFIXES)}; convert others, e.g. GIF, TIFF or WebP, to PNG)")
    return found


def save_png(array, path):
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp)


def main(argv=None):
    p = cli.ArgumentParser(prog="python -m tinysegnet.predict", description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="+", metavar="[CKPT] IMAGE_OR_DIR",
                   help="a run's checkpoint, then images or folders of them (with --pretrained: images only)")
    p.add_argument("--pretrained", choices=sorted(engine.pretrained.SHIPPED),
                   help="use a model shipped with tinysegnet instead of a checkpoint (camvid: SegNet-Basic "
                        "trained on CamVid; python -m tinysegnet.pretrained lists them)")
    p.add_argument("--out", required=True, help="folder for the label maps and overlays")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    cli.add_precision(p)
    p.add_argument("--overwrite", action="store_true", help="replace label maps already in --out")
    p.add_argument("--samples", type=positive_int,
                   help="Monte Carlo dropout passes (Bayesian models); adds <name>_uncertainty.png")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="with --samples: the seed of the dropout masks (default 0)")
    p.add_argument("--uncertainty-scale", type=float_in(0, float("inf"), low_open=True), metavar="MAX",
                   help="with --samples: the uncertainty shown at the colour scale's top, the same for "
                        "every image (default: the largest it can be, (1/K)(1 - 1/K) for K classes)")
    p.add_argument("--format", choices=["color", "index", "both"], default="color",
                   help="color: <name>_labels.png and <name>_overlay.png, coloured with the class "
                        "legend; index: <name>_ids.png, 8-bit class ids at the image's size for "
                        "other tools; both (default color)")
    args = p.parse_args(argv)
    if args.pretrained:
        args.checkpoint, args.inputs = None, args.paths
    elif len(args.paths) < 2:
        p.error("give a checkpoint and at least one image or folder (or --pretrained camvid and images)")
    else:
        args.checkpoint, args.inputs = args.paths[0], args.paths[1:]
    if args.uncertainty_scale and not args.samples:
        p.error("--uncertainty-scale is the scale of --samples' uncertainty map: give --samples too")
    cli.run_main("predict", lambda: _predict(args))


def output_names(paths):
    """{input path: output stem}; Misuse when two inputs would write to one name."""
    stems = {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in stems:
            raise Misuse(f"{stems[stem]} and {path} would both be written as {stem}_labels.png: "
                         f"predict them into different --out folders")
        stems[stem] = path
    return {path: stem for stem, path in stems.items()}


def _outputs(args):
    """The kinds of file written per image, each a file name suffix."""
    kinds = {"color": ("labels", "overlay"), "index": ("ids",), "both": ("labels", "overlay", "ids")}[args.format]
    return kinds + (("uncertainty",) if args.samples else ())


def _predict(args):
    cli.apply_precision(args)  # before the device is probed: CuPy reads it at its first product
    if args.pretrained:
        args.checkpoint = engine.pretrained.pretrained_path(args.pretrained)
    cli.writable_folder(args.out)
    paths = find_images(args.inputs)
    names = output_names(paths)
    kinds = _outputs(args)
    targets = [os.path.join(args.out, f"{stem}_{kind}.png") for stem in names.values()
               for kind in kinds]
    existing = [t for t in targets if os.path.exists(t)]
    if existing and not args.overwrite:
        raise Misuse(f"{existing[0]} already exists{f' (and {len(existing) - 1} more)' if len(existing) > 1 else ''}: "
                     f"choose another --out or add --overwrite")
    os.makedirs(args.out, exist_ok=True)
    cli.check_outputs(targets, paths + [args.checkpoint], args.overwrite)
    device = resolve_device(args.device)
    model, config, _ = engine.load_run(args.checkpoint, device)
    if args.samples:
        cli.require_dropout(model, config.model, args.checkpoint)
    scale = args.uncertainty_scale or uncertainty_bound(model.config["n_classes"])
    classes = config_classes(config)
    class_names, palette = classes.names, classes.palette
    void = False  # a prediction is never void: the legend lists the classes alone
    bar = tqdm(total=len(names), unit="image", file=sys.stderr, disable=len(names) < 2)
    for path, stem in names.items():
        image = read_image(path, "RGB")
        out = os.path.join(args.out, stem)
        if args.samples:
            labels, uncertainty = engine.predict_monte_carlo(model, image, config.mean, config.std, config.size,
                                                             args.samples, args.seed, config.input_norm)
            uncertainty_panel(image, labels, uncertainty, f"{out}_uncertainty.png", scale,
                              f"{os.path.basename(path)}: uncertainty from {args.samples} Monte Carlo "
                              f"dropout samples (variance of the class probabilities, mean over classes)",
                              class_names, palette)
        else:
            labels = engine.predict(model, image, config.mean, config.std, config.size, config.input_norm)
        if "labels" in kinds:
            save_png(with_legend(colorize(labels, palette), class_names, palette, void), f"{out}_labels.png")
            save_png(with_legend(overlay(image, labels, palette=palette), class_names, palette, void),
                     f"{out}_overlay.png")
        if "ids" in kinds:
            save_png(labels, f"{out}_ids.png")  # 8-bit class ids at the image's size, CamVid's convention
        bar.update(1)
        bar.write(f"{path} -> {out}_{{{','.join(kinds)}}}.png", file=sys.stdout)
    bar.close()


if __name__ == "__main__":
    main()
