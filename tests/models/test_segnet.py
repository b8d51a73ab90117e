import numpy as np

from tinysegnet import nn
from tinysegnet.models import SegNet


def test_encoder_is_vgg16_size():
    model = SegNet()
    convs = [m for m in model.encoder.layers if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13
    assert sum(c.weight.data.size + c.bias.data.size for c in convs) == 14_714_688
    decoder_convs = [m for m in model.decoder.layers if isinstance(m, nn.Conv2d)]
    assert len(decoder_convs) + 1 == 13  # plus the 3x3 classifier, as in Caffe's SegNet
    assert model.classifier.weight.data.shape == (11, 64, 3, 3)


def test_shapes_mirror_and_odd_sizes(rng):
    model = SegNet(n_classes=4, base_width=2).eval()
    out = model(rng.standard_normal((2, 3, 45, 60)).astype(np.float32))
    assert out.shape == (2, 4, 45, 60)
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2x2)]
    assert [p.input_shape[2:] for p in pools] == [(45, 60), (23, 30), (12, 15), (6, 8), (3, 4)]


def test_trains_one_step(rng):
    from tinysegnet.functional import softmax_cross_entropy
    model = SegNet(n_classes=3, base_width=2)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 3, (2, 32, 32))
    _, d = softmax_cross_entropy(model(x), y)
    model.backward(d)
    assert all(p.grad is not None and p.grad.shape == p.data.shape for p in model.parameters())
