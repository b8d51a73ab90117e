"""Segment images: ``python -m tinysegnet.predict CKPT IMAGE_OR_DIR... --out DIR``.

For each image writes ``<name>_labels.png`` (class ids coloured with CamVid's palette)
and ``<name>_overlay.png`` (the labels blended over the image), at the image's own size.
"""

import argparse
import os
import sys

from PIL import Image

from . import engine
from .backend import resolve_device
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
    p = argparse.ArgumentParser(prog="python -m tinysegnet.predict", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    p.add_argument("--out", required=True, help="folder for the label maps and overlays")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    args = p.parse_args(argv)
    try:
        device = resolve_device(args.device)
        model, config, _ = engine.load_run(args.checkpoint, device)
        paths = find_images(args.inputs)
        os.makedirs(args.out, exist_ok=True)
        for path in paths:
            image = read_image(path, "RGB")
            labels = engine.predict(model, image, config, device)
            stem = os.path.splitext(os.path.basename(path))[0]
            save_png(colorize(labels), os.path.join(args.out, f"{stem}_labels.png"))
            save_png(overlay(image, labels), os.path.join(args.out, f"{stem}_overlay.png"))
            print(f"{path} -> {os.path.join(args.out, stem)}_{{labels,overlay}}.png")
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        sys.exit(f"predict: {e}")


if __name__ == "__main__":
    main()
