"""SegNet-Basic, the smaller network of the SegNet paper (its section 3.1 / 4.1).

Encoder: 4 x [k x k conv (no bias) -> batch norm -> ReLU -> 2x2 max-pool keeping indices]
Decoder: 4 x [unpool with the mirrored encoder's indices -> k x k conv (no bias) -> batch norm]
         (no ReLU in the decoder, as in the paper)
Classifier: 1 x 1 conv with bias to n_classes.

With width 64 and k = 7 that is 1,416,075 parameters (the paper's "about 1.4M").
Caffe's original feeds a local-contrast-normalised image; we standardise inputs instead.
"""

import numpy as np

from .. import nn
from ..functional.pooling import pooled_size
from .base import BN_SHIFT_INIT, EncoderDecoder

DEPTH = 4


def unpooling_indices(h, w, width=64):
    """How many pooling indices SegNet-Basic (``width`` channels) keeps for one h x w image:
    one per pooled value of its DEPTH ceil-mode poolings."""
    indices = 0
    for _ in range(DEPTH):
        h, w = pooled_size(h, w)
        indices += width * h * w
    return indices


class SegNetBasic(EncoderDecoder):
    name = "segnet-basic"
    dropout = 0.0  # drop probability after the DROPOUT_DEPTH deepest encoders and decoders
    dropout_depth = 2

    def __init__(self, n_classes=11, in_channels=3, width=64, kernel=7, seed=0):
        super().__init__()
        self.config = dict(name=self.name, n_classes=n_classes, in_channels=in_channels,
                           width=width, kernel=kernel, seed=seed)
        rng = np.random.default_rng(seed)
        deep = range(DEPTH - self.dropout_depth, DEPTH) if self.dropout else ()
        encoder, pools = [], []
        channels = in_channels
        for stage in range(DEPTH):
            pool = nn.MaxPool2x2()
            encoder += [nn.Conv2d(channels, width, kernel, bias=False, rng=rng,
                                  input_grad=bool(encoder)),  # the image needs no gradient
                        nn.BatchNorm2d(width, beta_init=BN_SHIFT_INIT), nn.ReLU(), pool]
            encoder += [nn.Dropout(self.dropout)] if stage in deep else []
            pools.append(pool)
            channels = width
        decoder = []
        for stage, pool in reversed(list(enumerate(pools))):
            decoder += [nn.Unpool2x2(pool), nn.Conv2d(width, width, kernel, bias=False, rng=rng),
                        nn.BatchNorm2d(width, beta_init=BN_SHIFT_INIT)]
            decoder += [nn.Dropout(self.dropout)] if stage in deep else []
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)
        self.classifier = nn.Conv2d(width, n_classes, 1, bias=True, rng=rng)

    def kept_from_encoder(self, h, w):
        """What the decoder keeps from the encoder for one h x w image, as counts of values:
        ``(pooling indices, float feature-map values)`` = (one per pooled value, 0)."""
        return unpooling_indices(h, w, self.config["width"]), 0


class BayesianSegNetBasic(SegNetBasic):
    """Bayesian SegNet-Basic (Kendall, Badrinarayanan and Cipolla, 2015; SegNet-Tutorial's
    ``bayesian_segnet_basic_train.prototxt``): SegNet-Basic with dropout p = 0.5 after the 3rd
    and 4th encoders' pooling and after the 4th and 3rd decoders, the two deepest on each side.
    The same weights as SegNet-Basic; dropout adds none."""

    name = "bayesian-segnet-basic"
    dropout = 0.5
