"""SegNet: VGG16's 13 convolutional layers as the encoder and their mirror image as the decoder.

Encoder blocks (3x3 conv with bias -> batch norm -> ReLU, then a 2x2 max-pool keeping indices)::

    64, 64 | 128, 128 | 256, 256, 256 | 512, 512, 512 | 512, 512, 512

Its 13 convolutions hold VGG16's 14,714,688 parameters (the paper's 14.7M). The decoder
mirrors each block: unpool with that block's indices, then the block's convolutions in
reverse order of width (3x3, batch norm, ReLU), the last one of each block narrowing to
the width the encoder block started from. As in the original Caffe model the decoder's
13th convolution is the 3x3 classifier (64 -> n_classes, no batch norm or ReLU).
"""

import numpy as np

from .. import nn
from .base import BN_SHIFT_INIT, EncoderDecoder

VGG16_BLOCKS = ((1, 1), (2, 2), (4, 4, 4), (8, 8, 8), (8, 8, 8))  # widths in units of base_width


def _conv_bn_relu(cin, cout, rng, input_grad=True):
    return [nn.Conv2d(cin, cout, 3, bias=True, rng=rng, input_grad=input_grad),
            nn.BatchNorm2d(cout, beta_init=BN_SHIFT_INIT),
            nn.ReLU()]


class SegNet(EncoderDecoder):
    name = "segnet"
    dropout = 0.0  # drop probability after the DROPOUT_BLOCKS deepest encoder and decoder blocks
    dropout_blocks = 3

    def __init__(self, n_classes=11, in_channels=3, base_width=64, seed=0):
        super().__init__()
        self.config = dict(name=self.name, n_classes=n_classes, in_channels=in_channels,
                           base_width=base_width, seed=seed)
        rng = np.random.default_rng(seed)
        n = len(VGG16_BLOCKS)
        deep = range(n - self.dropout_blocks, n) if self.dropout else ()
        encoder, pools, block_inputs = [], [], []
        channels = in_channels
        for index, block in enumerate(VGG16_BLOCKS):
            block_inputs.append(channels)
            for multiple in block:
                encoder += _conv_bn_relu(channels, multiple * base_width, rng,
                                         input_grad=bool(encoder))  # the image needs no gradient
                channels = multiple * base_width
            pool = nn.MaxPool2x2()
            encoder.append(pool)
            encoder += [nn.Dropout(self.dropout)] if index in deep else []
            pools.append(pool)
        decoder = []
        for index, block, pool, block_input in reversed(list(zip(range(n), VGG16_BLOCKS, pools,
                                                                  block_inputs))):
            decoder.append(nn.Unpool2x2(pool))
            widths = [m * base_width for m in block]
            outputs = widths[1:][::-1] + [block_input]  # mirror: narrow back to the block's input
            if block_input == in_channels:  # the first block's last layer is the classifier
                outputs = outputs[:-1]
            for cout in outputs:
                decoder += _conv_bn_relu(channels, cout, rng)
                channels = cout
            decoder += [nn.Dropout(self.dropout)] if index in deep else []
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)
        self.classifier = nn.Conv2d(channels, n_classes, 3, bias=True, rng=rng)


class BayesianSegNet(SegNet):
    """Bayesian SegNet (SegNet-Tutorial's ``bayesian_segnet_train.prototxt``): SegNet with
    dropout p = 0.5 after pool3, pool4 and pool5 and after the decoders' conv5_1_D, conv4_1_D
    and conv3_1_D (the last convolution of the three deepest decoder blocks)."""

    name = "bayesian-segnet"
    dropout = 0.5
