import numpy as np

from tinysegnet.models import PixelClassifier


def test_each_pixel_is_classified_from_its_own_colour_alone(rng):
    model = PixelClassifier(hidden=8).eval()
    x = rng.standard_normal((1, 3, 6, 7)).astype(np.float32)
    before = model(x)
    x[0, :, 2, 3] += 5.0
    changed = np.abs(model(x) - before).max(axis=1)[0] > 0
    assert changed[2, 3] and changed.sum() == 1
    assert before.shape == (1, 11, 6, 7)
