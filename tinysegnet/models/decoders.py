"""The decoder variants of the paper's Table 1, all on SegNet-Basic's encoder.

Encoder (shared): 4 x [7x7 conv 64 (no bias) -> BN -> ReLU -> 2x2 max-pool keeping indices].
Each decoder stage i (deepest first) restores the size of encoder stage i's pool input:

``bilinear``                  fixed bilinear x2, then 7x7 conv + BN
``segnet-basic-encoder-addition``  unpool, 7x7 conv + BN, plus the encoder's 64 maps
``segnet-basic-single-channel-decoder``  unpool, then a *depthwise* 7x7 conv + BN
``fcn-basic``                 1x1 conv reduces encoder maps to K = n_classes channels; a
                              transposed conv (bilinear init) upsamples x2, the reduced
                              encoder map of that size is added, then BN
``fcn-basic-no-addition``     the same without the additions
``fcn-basic-no-dim-reduction``  the same with all 64 encoder maps (no 1x1 reduction)
``fcn-basic-no-addition-no-dim-reduction``  neither

(SegNet-Basic itself, index unpooling + 7x7 conv + BN, is ``segnet_basic.SegNetBasic``.)
Every variant ends with a 1x1 classifier to n_classes.

Every decoder stage ends in batch norm, the FCN ones included: without it the sum of 64
unnormalised encoder maps in ``fcn-basic-no-dim-reduction`` grows stage by stage and the
shared learning rate 0.1 diverges in the first epoch (measured), so the comparison would be
of learning rates rather than of decoders.
"""

import numpy as np

from .. import functional as F
from .. import nn
from .base import EncoderDecoder
from .segnet_basic import BN_SHIFT_INIT, DEPTH

VARIANTS = ("bilinear", "segnet-basic-encoder-addition", "segnet-basic-single-channel-decoder",
            "fcn-basic", "fcn-basic-no-addition", "fcn-basic-no-dim-reduction",
            "fcn-basic-no-addition-no-dim-reduction")


class DecoderVariant(EncoderDecoder):
    """SegNet-Basic's encoder with one of the decoders in :data:`VARIANTS`."""

    def __init__(self, variant, n_classes=11, in_channels=3, width=64, kernel=7, seed=0):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown decoder variant {variant!r}: choose one of {', '.join(VARIANTS)}")
        self.config = dict(name=variant, n_classes=n_classes, in_channels=in_channels, width=width,
                           kernel=kernel, seed=seed)
        self.variant = variant
        self.fcn = variant.startswith("fcn")
        self.adds = variant in ("segnet-basic-encoder-addition", "fcn-basic", "fcn-basic-no-dim-reduction")
        rng = np.random.default_rng(seed)
        self.stages, self.pools = [], []
        channels = in_channels
        for i in range(DEPTH):
            self.stages.append(nn.Sequential(
                nn.Conv2d(channels, width, kernel, bias=False, rng=rng, input_grad=i > 0),
                nn.BatchNorm2d(width, beta_init=BN_SHIFT_INIT), nn.ReLU()))
            self.pools.append(nn.MaxPool2x2())
            channels = width
        reduce = self.fcn and "no-dim-reduction" not in variant
        k = n_classes if reduce else width  # channels the FCN decoder works in
        self.ups, self.convs, self.skips, self.norms = [], [], [], []
        for pool in reversed(self.pools):
            if self.fcn:
                self.ups.append(nn.ConvTranspose2d(k, pool))
                self.norms.append(nn.BatchNorm2d(k, beta_init=BN_SHIFT_INIT))
            elif variant == "bilinear":
                self.ups.append(nn.BilinearUpsample(pool))
            else:
                self.ups.append(nn.Unpool2x2(pool))
            if variant == "segnet-basic-single-channel-decoder":
                self.convs.append(nn.Sequential(nn.DepthwiseConv2d(width, kernel, rng=rng),
                                                nn.BatchNorm2d(width, beta_init=BN_SHIFT_INIT)))
            elif not self.fcn:
                self.convs.append(nn.Sequential(nn.Conv2d(width, width, kernel, bias=False, rng=rng),
                                                nn.BatchNorm2d(width, beta_init=BN_SHIFT_INIT)))
            if reduce and self.adds:
                self.skips.append(nn.Conv2d(width, k, 1, bias=True, rng=rng))
        # FCN: the deepest encoder output is reduced to k channels before the first upsampling.
        self.top = nn.Conv2d(width, k, 1, bias=True, rng=rng) if reduce else None
        self.classifier = nn.Conv2d(k if self.fcn else width, n_classes, 1, bias=True, rng=rng)

    def forward(self, x):
        features = []
        for stage, pool in zip(self.stages, self.pools):
            x = stage.forward(x)
            features.append(x)  # the encoder map at the resolution a decoder stage restores
            x = pool.forward(x)
        if self.top is not None:
            x = self.top.forward(x)
        for i, up in enumerate(self.ups):
            x = up.forward(x)
            if self.convs:
                x = self.convs[i].forward(x)
            if self.adds:
                skip = features[DEPTH - 1 - i]
                x, _ = F.add_forward(x, self.skips[i].forward(skip) if self.skips else skip)
            if self.norms:
                x = self.norms[i].forward(x)
        return self.classifier.forward(x)

    def backward(self, dlogits):
        d = self.classifier.backward(dlogits)
        skip_grads = [None] * DEPTH
        for i in reversed(range(DEPTH)):
            if self.norms:
                d = self.norms[i].backward(d)
            if self.adds:
                d, dskip = F.add_backward(d)
                skip_grads[DEPTH - 1 - i] = self.skips[i].backward(dskip) if self.skips else dskip
            if self.convs:
                d = self.convs[i].backward(d)
            d = self.ups[i].backward(d)
        if self.top is not None:
            d = self.top.backward(d)
        for i in reversed(range(DEPTH)):
            d = self.pools[i].backward(d)
            if skip_grads[i] is not None:
                d = d + skip_grads[i]
            d = self.stages[i].backward(d)
        return d

    def kept_from_encoder(self, h, w):
        """What the decoder keeps from the encoder for one h x w image, as counts of values:
        ``(pooling indices, float feature-map values)``."""
        indices = floats = 0
        width = self.config["width"]
        for _ in range(DEPTH):
            if self.adds:  # the encoder map at this resolution, reduced or not
                floats += (self.skips[0].weight.data.shape[0] if self.skips else width) * h * w
            h, w = -(-h // 2), -(-w // 2)
            if isinstance(self.ups[0], nn.Unpool2x2):
                indices += width * h * w
        return indices, floats
