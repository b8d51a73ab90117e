"""A split held in memory: images and labels as small integer arrays."""

from dataclasses import dataclass

import numpy as np


@dataclass
class Split:
    """images (N, H, W, 3) uint8, labels (N, H, W) uint8 with VOID for unlabelled, names (N,)."""

    images: np.ndarray
    labels: np.ndarray
    names: list

    def __len__(self):
        return len(self.images)

    @property
    def size(self):
        return self.images.shape[1:3]
