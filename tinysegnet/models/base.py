"""What every segmentation model here shares: a config and ``predict``; and the common shape,
encoder -> decoder -> classifier."""

from .. import nn

BN_SHIFT_INIT = 0.001  # the original Caffe models' batch-norm shift filler


class SegmentationModel(nn.Module):
    """x (N, in_channels, H, W) -> logits (N, n_classes, H, W). A subclass sets ``config``
    (what :func:`tinysegnet.models.build` needs to make the same model again, e.g. from a
    checkpoint; ``n_classes`` among it) and defines ``forward`` and ``backward``."""

    config = {}

    def predict(self, x):
        """Class ids (N, H, W): the argmax of the logits."""
        return self.forward(x).argmax(axis=1)


class EncoderDecoder(SegmentationModel):
    """``logits = classifier(decoder(encoder(x)))``; backward runs the three in reverse.
    Subclasses build the three parts (``encoder``, ``decoder``, ``classifier``)."""

    def forward(self, x):
        return self.classifier.forward(self.decoder.forward(self.encoder.forward(x)))

    def backward(self, dlogits):
        """Fills every parameter's gradient. Returns None: the first layer skips the
        image's gradient, which training never uses."""
        return self.encoder.backward(self.decoder.backward(self.classifier.backward(dlogits)))
