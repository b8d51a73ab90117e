"""Segment images: ``python -m tinysegnet.predict CKPT IMAGE_OR_DIR... --out DIR``.

For each image writes ``<name>_labels.png`` (class ids coloured with CamVid's palette)
and ``<name>_overlay.png`` (the labels blended over the image), at the image's own size.
"""

import os
import sys

from PIL import Image

from . import cli, engine
from .backend import resolve_device
from .cli import Misuse
from .data.camvid import DataError, read_image
from .files import atomic_path
from .viz import colorize, overlay

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
        raise DataError(f"no images found in {', '.join(paths)}")
    return found


def save_png(array, path):
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp)


def main(argv=None):
    p = cli.ArgumentParser(prog="python -m tinysegnet.predict", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    p.add_argument("--out", required=True, help="folder for the label maps and overlays")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--overwrite", action="store_true", help="replace label maps already in --out")
    args = p.parse_args(argv)
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


def _predict(args):
    cli.writable_folder(args.out)
    try:
        paths = find_images(args.inputs)
    except ValueError as e:
        sys.exit(f"predict: {e}")
    names = output_names(paths)
    targets = [os.path.join(args.out, f"{stem}_{kind}.png") for stem in names.values()
               for kind in ("labels", "overlay")]
    existing = [t for t in targets if os.path.exists(t)]
    if existing and not args.overwrite:
        raise Misuse(f"{existing[0]} already exists{f' (and {len(existing) - 1} more)' if len(existing) > 1 else ''}: "
                     f"choose another --out or add --overwrite")
    try:
        device = resolve_device(args.device)
        model, config, _ = engine.load_run(args.checkpoint, device)
        os.makedirs(args.out, exist_ok=True)
        for path, stem in names.items():
            image = read_image(path, "RGB")
            labels = engine.predict(model, image, config, device)
            save_png(colorize(labels), os.path.join(args.out, f"{stem}_labels.png"))
            save_png(overlay(image, labels), os.path.join(args.out, f"{stem}_overlay.png"))
            print(f"{path} -> {os.path.join(args.out, stem)}_{{labels,overlay}}.png")
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        sys.exit(f"predict: {e}")


if __name__ == "__main__":
    main()
