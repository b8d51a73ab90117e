import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet import nn
from tinysegnet.gradcheck import check_gradients
from tinysegnet.models import SegNetBasic, from_config


def test_parameter_count_is_the_papers():
    # 4 encoders + 4 decoders of 7x7x64 convs (first takes 3 channels), 8 BNs, 1x1 classifier.
    expected = 3 * 64 * 49 + 7 * 64 * 64 * 49 + 8 * 2 * 64 + 64 * 11 + 11
    assert SegNetBasic().num_parameters() == expected == 1_416_075


def test_camvid_size_goes_down_and_back_with_ceil_mode(rng):
    model = SegNetBasic(width=4, kernel=3).eval()
    out = model(rng.standard_normal((1, 3, 360, 480)).astype(np.float32))
    assert out.shape == (1, 11, 360, 480) and out.dtype == np.float32
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2x2)]
    assert [p.input_shape[2:] for p in pools] == [(360, 480), (180, 240), (90, 120), (45, 60)]
    assert pools[-1].indices.shape[2:] == (23, 30)


def test_whole_model_gradient_check_float64(rng):
    model = SegNetBasic(n_classes=3, width=3, kernel=3, seed=1).astype(np.float64)
    x = rng.standard_normal((2, 3, 9, 10))
    labels = rng.integers(0, 3, (2, 9, 10))
    labels[0, 0, 0] = 7  # an ignored pixel
    weights = np.array([0.5, 1.0, 2.0])

    def loss(**_):
        return F.softmax_cross_entropy(model.forward(x), labels, weights, 7)[0]

    _, dlogits = F.softmax_cross_entropy(model.forward(x), labels, weights, 7)
    model.backward(dlogits)
    named = dict(model.named_parameters())
    errors = check_gradients(loss, {k: p.data for k, p in named.items()},
                             {k: p.grad for k, p in named.items()})
    assert len(errors) == 8 + 8 + 8 + 2 and max(errors.values()) < 1e-6


def test_config_rebuilds_the_same_model():
    a = SegNetBasic(n_classes=5, width=8, kernel=3, seed=3)
    b = from_config(a.config)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


@pytest.mark.slow
def test_overfits_a_few_synthetic_images():
    from tinysegnet.data import transforms
    from tinysegnet.data.synthetic import render_scene
    from tinysegnet.optim import SGD
    rng = np.random.default_rng(0)
    images, labels = zip(*(render_scene(rng, (32, 48)) for _ in range(4)))
    images, labels = np.stack(images), np.stack(labels).astype(np.int64)
    x = transforms.standardize(images, *transforms.channel_stats(images))
    model = SegNetBasic(width=32, kernel=3)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(100):
        _, dlogits = F.softmax_cross_entropy(model.forward(x), labels, None, 11)
        model.backward(dlogits)
        opt.step()
    accuracy = (model.eval().predict(x) == labels).mean()
    assert accuracy > 0.95
