"""A per-pixel classifier: 1x1 convolutions only, so each pixel is classified from its own
colour. The baseline that shows the synthetic set needs context (shape, neighbours)."""

import numpy as np

from .. import nn
from .base import EncoderDecoder


class PixelClassifier(EncoderDecoder):
    """1x1 conv (in -> hidden) -> BN -> ReLU -> 1x1 conv (hidden -> hidden) -> BN -> ReLU -> 1x1 classifier.

    A small multi-layer perceptron applied to every pixel independently.
    """

    def __init__(self, n_classes=11, in_channels=3, hidden=64, seed=0):
        super().__init__()
        self.config = dict(name="pixel", n_classes=n_classes, in_channels=in_channels,
                           hidden=hidden, seed=seed)
        rng = np.random.default_rng(seed)
        self.encoder = nn.Sequential(nn.Conv2d(in_channels, hidden, 1, bias=False, rng=rng, input_grad=False),
                                     nn.BatchNorm2d(hidden), nn.ReLU())
        self.decoder = nn.Sequential(nn.Conv2d(hidden, hidden, 1, bias=False, rng=rng),
                                     nn.BatchNorm2d(hidden), nn.ReLU())
        self.classifier = nn.Conv2d(hidden, n_classes, 1, bias=True, rng=rng)
