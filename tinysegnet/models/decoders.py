"""The decoder variants of the paper's Table 1: SegNet-Basic's encoder, other decoders.

Encoder (shared): 4 x [7x7 conv 64 (no bias) -> BN -> ReLU -> 2x2 max-pool keeping indices].
Each decoder stage (deepest first) restores the size of one encoder stage's pool input. The
variants are made of three kinds of stage:

:class:`UnpoolStage`    index unpooling, then a k x k conv (or a depthwise one) and BN;
                        optionally plus the encoder's 64 maps of that size
:class:`BilinearStage`  fixed bilinear x2, then a k x k conv and BN
:class:`FCNStage`       a transposed conv (bilinear init) x2, plus the encoder map of that
                        size (1x1-reduced to the decoder's channels, or all 64), then BN

==========================================  =============================================
``bilinear``                                BilinearStage
``segnet-basic-encoder-addition``           UnpoolStage, adding the encoder's maps
``segnet-basic-single-channel-decoder``     UnpoolStage with a depthwise conv
``fcn-basic``                               FCNStage in n_classes channels, reduced skips
``fcn-basic-no-addition``                   the same without skips
``fcn-basic-no-dim-reduction``              FCNStage in 64 channels, raw skips
``fcn-basic-no-addition-no-dim-reduction``  neither
==========================================  =============================================

(SegNet-Basic itself, index unpooling + 7x7 conv + BN, is ``segnet_basic.SegNetBasic``.)
An FCN decoder that works in n_classes channels first reduces the deepest encoder output
with a 1x1 conv. Every variant ends with a 1x1 classifier to n_classes.

Every decoder stage ends in batch norm, the FCN ones included: without it the sum of 64
unnormalised encoder maps in ``fcn-basic-no-dim-reduction`` grows stage by stage and the
shared learning rate 0.1 diverges in the first epoch (measured), so the comparison would be
of learning rates rather than of decoders.
"""

import numpy as np

from .. import functional as F
from .. import nn
from ..functional.pooling import pooled_size
from .base import BN_SHIFT_INIT, SegmentationModel
from .segnet_basic import DEPTH, unpooling_indices

VARIANTS = ("bilinear", "segnet-basic-encoder-addition", "segnet-basic-single-channel-decoder",
            "fcn-basic", "fcn-basic-no-addition", "fcn-basic-no-dim-reduction",
            "fcn-basic-no-addition-no-dim-reduction")


class Stage(nn.Module):
    """A decoder stage, which (unlike a layer's ``forward(x)``) takes two inputs:
    ``decode(x, skip)`` with the encoder map of the size it restores (used only by stages
    that add it), ``decode_backward(d) -> (dx, dskip or None)``, and ``kept(h, w)``: what it
    keeps from the encoder for an h x w encoder map, as (pooling indices, float values)."""

    adds = False

    def kept(self, h, w):
        return 0, 0


class UnpoolStage(Stage):
    """unpool (the paired pool's indices) -> k x k conv (depthwise if asked) -> BN [+ skip]."""

    def __init__(self, pool, width, kernel, rng, depthwise=False, add_encoder=False):
        super().__init__()
        self.up = nn.Unpool2x2(pool)
        conv = (nn.DepthwiseConv2d(width, kernel, rng=rng) if depthwise
                else nn.Conv2d(width, width, kernel, bias=False, rng=rng))
        self.body = nn.Sequential(conv, nn.BatchNorm2d(width, beta_init=BN_SHIFT_INIT))
        self.adds, self.width = add_encoder, width

    def decode(self, x, skip):
        x = self.body.forward(self.up.forward(x))
        return F.add_forward(x, skip)[0] if self.adds else x

    def decode_backward(self, d):
        dskip = F.add_backward(d)[1] if self.adds else None
        return self.up.backward(self.body.backward(d)), dskip

    def kept(self, h, w):
        ph, pw = pooled_size(h, w)
        return self.width * ph * pw, (self.width * h * w if self.adds else 0)


class BilinearStage(Stage):
    """fixed bilinear x2 -> k x k conv -> BN: nothing kept from the encoder but its size."""

    def __init__(self, pool, width, kernel, rng):
        super().__init__()
        self.up = nn.BilinearUpsample(pool)
        self.body = nn.Sequential(nn.Conv2d(width, width, kernel, bias=False, rng=rng),
                                  nn.BatchNorm2d(width, beta_init=BN_SHIFT_INIT))

    def decode(self, x, skip):
        return self.body.forward(self.up.forward(x))

    def decode_backward(self, d):
        return self.up.backward(self.body.backward(d)), None


class FCNStage(Stage):
    """transposed conv x2 -> [+ encoder map, 1x1-reduced to ``channels`` if ``reduce_from``] -> BN.

    ``channels``: the decoder's width (n_classes, or the encoder's 64 without reduction);
    ``add_encoder``: whether the encoder map is added; ``reduce_from``: the encoder's width,
    reduced by a 1x1 conv with bias (None: the map is added as it is).
    """

    def __init__(self, pool, channels, rng, add_encoder, reduce_from=None):
        super().__init__()
        self.up = nn.ConvTranspose2d(channels, pool)
        self.adds, self.channels = add_encoder, channels
        self.reduce = (nn.Conv2d(reduce_from, channels, 1, bias=True, rng=rng)
                       if add_encoder and reduce_from else None)
        self.norm = nn.BatchNorm2d(channels, beta_init=BN_SHIFT_INIT)

    def decode(self, x, skip):
        x = self.up.forward(x)
        if self.adds:
            x = F.add_forward(x, self.reduce.forward(skip) if self.reduce else skip)[0]
        return self.norm.forward(x)

    def decode_backward(self, d):
        d = self.norm.backward(d)
        dskip = None
        if self.adds:
            d, dskip = F.add_backward(d)
            if self.reduce:
                dskip = self.reduce.backward(dskip)
        return self.up.backward(d), dskip

    def kept(self, h, w):
        return 0, (self.channels * h * w if self.adds else 0)


class DecoderVariant(SegmentationModel):
    """SegNet-Basic's encoder with one of the decoders in :data:`VARIANTS`: the decoder stages
    take the encoder's maps, so the passes are written out here rather than as
    encoder -> decoder -> classifier."""

    def __init__(self, variant, n_classes=11, in_channels=3, width=64, kernel=7, seed=0):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown decoder variant {variant!r}: choose one of {', '.join(VARIANTS)}")
        self.config = dict(name=variant, n_classes=n_classes, in_channels=in_channels, width=width,
                           kernel=kernel, seed=seed)
        rng = np.random.default_rng(seed)
        self.stages, self.pools = [], []
        channels = in_channels
        for i in range(DEPTH):
            self.stages.append(nn.Sequential(
                nn.Conv2d(channels, width, kernel, bias=False, rng=rng, input_grad=i > 0),
                nn.BatchNorm2d(width, beta_init=BN_SHIFT_INIT), nn.ReLU()))
            self.pools.append(nn.MaxPool2x2())
            channels = width
        fcn = variant.startswith("fcn")
        reduce = fcn and "no-dim-reduction" not in variant
        decoder_width = n_classes if reduce else width
        adds = variant in ("segnet-basic-encoder-addition", "fcn-basic", "fcn-basic-no-dim-reduction")
        self.ups = []  # the decoder stages, deepest first
        for pool in reversed(self.pools):
            if fcn:
                stage = FCNStage(pool, decoder_width, rng, adds, width if reduce else None)
            elif variant == "bilinear":
                stage = BilinearStage(pool, width, kernel, rng)
            else:
                stage = UnpoolStage(pool, width, kernel, rng, depthwise="single-channel" in variant,
                                    add_encoder=adds)
            self.ups.append(stage)
        # FCN in n_classes channels: the deepest encoder output is reduced before upsampling.
        self.top = nn.Conv2d(width, decoder_width, 1, bias=True, rng=rng) if reduce else None
        self.classifier = nn.Conv2d(decoder_width, n_classes, 1, bias=True, rng=rng)

    def forward(self, x):
        features = []
        for stage, pool in zip(self.stages, self.pools):
            x = stage.forward(x)
            features.append(x)  # the encoder map at the resolution a decoder stage restores
            x = pool.forward(x)
        if self.top is not None:
            x = self.top.forward(x)
        for stage, skip in zip(self.ups, reversed(features)):
            x = stage.decode(x, skip)
        return self.classifier.forward(x)

    def backward(self, dlogits):
        d = self.classifier.backward(dlogits)
        skip_grads = []
        for stage in reversed(self.ups):
            d, dskip = stage.decode_backward(d)
            skip_grads.append(dskip)  # shallowest first, as the encoder stages go
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
        ``(pooling indices, float feature-map values)``, summed over its stages."""
        indices = floats = 0
        for stage in reversed(self.ups):  # shallowest first: stage i restores an h x w map
            i, f = stage.kept(h, w)
            indices, floats = indices + i, floats + f
            h, w = pooled_size(h, w)
        return indices, floats


def storage_multiplier(model, size):
    """Table 1's storage multiplier: bits kept from the encoder (indices at 2, float maps at 32)
    over SegNet-Basic's."""
    indices, floats = model.kept_from_encoder(*size)
    reference = unpooling_indices(*size)
    return (2 * indices + 32 * floats) / (2 * reference)
