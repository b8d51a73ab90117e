"""Local contrast normalisation: the convolution version against the plain loops."""

import numpy as np

from tinysegnet.data.lcn import gaussian_window, local_contrast_normalize, local_contrast_normalize_loops
from tinysegnet.data.transforms import network_input


def test_matches_the_loops_borders_included():
    images = np.random.default_rng(0).integers(0, 256, (2, 11, 14, 3)).astype(np.uint8)
    images[1, :, :7] = 90  # a flat half: the floor, not the (zero) local deviation, divides
    ours = local_contrast_normalize(images)
    for image, out in zip(images, ours):
        np.testing.assert_allclose(out, local_contrast_normalize_loops(image), rtol=1e-4, atol=1e-5)


def test_removes_illumination():
    """A darker copy of an image (all values scaled) normalises to the same input: the paper's
    reason for LCN, robustness to lighting."""
    image = np.random.default_rng(1).integers(40, 256, (1, 20, 24, 3)).astype(np.uint8)
    dim = (image.astype(np.float32) * 0.5).astype(np.uint8)
    a, b = local_contrast_normalize(image), local_contrast_normalize(dim)
    assert float(np.abs(a - b).max()) < 0.05 * float(np.abs(a).max())
    assert abs(float(a.mean())) < 0.1 and 0.5 < float(a.std()) < 1.5


def test_the_window_and_the_choice():
    g = gaussian_window()
    assert g.shape == (9, 9) and abs(float(g.sum()) - 1) < 1e-6 and g[4, 4] == g.max()
    images = np.full((1, 4, 5, 3), 7, np.uint8)
    assert np.isfinite(network_input(images, [0, 0, 0], [1, 1, 1], "lcn")).all()  # uniform: finite
    np.testing.assert_array_equal(network_input(images, [7, 7, 7], [2, 2, 2]), np.zeros((1, 3, 4, 5)))
