import numpy as np
import pytest
from PIL import Image

from tinysegnet.data import transforms
from tinysegnet.functional.upsampling import bilinear_matrix


def test_median_frequency_by_hand():
    # image 0: 3 pixels of class 0, 1 of class 1; image 1: 2 of class 0, 1 of class 2, 1 void (9).
    labels = np.array([[[0, 0], [0, 1]], [[0, 0], [2, 9]]])
    freq = transforms.class_frequencies(labels, 3, 9)
    np.testing.assert_allclose(freq, [5 / 7, 1 / 4, 1 / 3])
    w = transforms.median_frequency_weights(labels, 3, 9)
    np.testing.assert_allclose(w, [(1 / 3) / (5 / 7), (1 / 3) / (1 / 4), 1.0], rtol=1e-6)
    assert w.dtype == np.float32


def test_absent_class_gets_zero_weight():
    w = transforms.median_frequency_weights(np.array([[[0, 1]]]), 3, 9)
    assert w[2] == 0 and w[0] == w[1] == 1


def test_flip_moves_image_and_label_together():
    rng = np.random.default_rng(0)
    images = np.arange(2 * 2 * 3 * 3).reshape(2, 2, 3, 3).astype(np.uint8)
    labels = images[..., 0].copy()
    flipped_images, flipped_labels = transforms.random_flip(images, labels, rng)
    np.testing.assert_array_equal(flipped_images[..., 0], flipped_labels)
    changed = [not np.array_equal(a, b) for a, b in zip(images, flipped_images)]
    for i, c in enumerate(changed):
        np.testing.assert_array_equal(flipped_images[i], images[i, :, ::-1] if c else images[i])


def test_standardize_layout_and_stats():
    images = np.random.default_rng(0).integers(0, 255, (4, 5, 6, 3)).astype(np.uint8)
    mean, std = transforms.channel_stats(images)
    x = transforms.standardize(images, mean, std)
    assert x.shape == (4, 3, 5, 6) and x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1, atol=1e-4)


@pytest.mark.parametrize("n_in,n_out", [(4, 8), (23, 45), (10, 5)])
def test_bilinear_matrix_matches_pil_upsampling(n_in, n_out):
    m = bilinear_matrix(n_in, n_out)
    np.testing.assert_allclose(m.sum(axis=1), 1)
    if n_out > n_in:  # PIL's bilinear only interpolates (no area filter) when enlarging
        signal = np.random.default_rng(0).random(n_in).astype(np.float32)
        pil = np.asarray(Image.fromarray(signal[None]).resize((n_out, 1), Image.BILINEAR))[0]
        np.testing.assert_allclose(m @ signal, pil, atol=1e-5)


def test_batches_cover_everything_once():
    seen = np.concatenate(list(transforms.batches(10, 3, np.random.default_rng(0))))
    assert sorted(seen.tolist()) == list(range(10))
