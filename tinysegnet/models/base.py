"""What every segmentation model here shares: encoder -> decoder -> classifier, and its config."""

from .. import nn

BN_SHIFT_INIT = 0.001  # the original Caffe models' batch-norm shift filler


class EncoderDecoder(nn.Module):
    """``logits = classifier(decoder(encoder(x)))``; backward runs the three in reverse.

    x (N, in_channels, H, W) -> logits (N, n_classes, H, W). Subclasses build the
    three parts and set ``config`` (what :func:`tinysegnet.models.build` needs to
    make the same model again, e.g. from a checkpoint).
    """

    config = {}

    def forward(self, x):
        return self.classifier.forward(self.decoder.forward(self.encoder.forward(x)))

    def backward(self, dlogits):
        """Fills every parameter's gradient. Returns None: the first layer skips the
        image's gradient, which training never uses."""
        return self.encoder.backward(self.decoder.backward(self.classifier.backward(dlogits)))

    def predict(self, x):
        """Class ids (N, H, W): the argmax of the logits."""
        return self.forward(x).argmax(axis=1)
