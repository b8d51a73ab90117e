"""Turning a Split into training batches: standardisation, flips, class weights."""

import numpy as np

from .lcn import local_contrast_normalize


def channel_stats(images):
    """Per-channel mean and standard deviation of uint8 images (N, H, W, 3), as float32 (3,)."""
    pixels = images.reshape(-1, images.shape[-1]).astype(np.float64)
    return pixels.mean(axis=0).astype(np.float32), pixels.std(axis=0).astype(np.float32)


def standardize(images, mean, std):
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), each channel shifted by ``mean`` (3,) and
    scaled by ``std`` (3,): arrays or lists, such as a run config's."""
    x = (images.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


INPUT_NORMS = ("standardize", "lcn")


def network_input(images, mean, std, norm="standardize"):
    """uint8 images (N, H, W, 3) -> the network's float32 input (N, 3, H, W): standardised with
    ``mean``/``std`` (a run's data statistics), or with ``norm="lcn"`` locally contrast-normalised
    (``lcn.py``; the statistics are then unused)."""
    if norm == "lcn":
        return local_contrast_normalize(images)
    if norm != "standardize":
        raise ValueError(f"network_input: norm must be one of {INPUT_NORMS}, got {norm!r}")
    return standardize(images, mean, std)


def random_flip(images, labels, rng):
    """Mirror each (image, label) pair left-right with probability 1/2. Returns copies."""
    flip = rng.random(len(images)) < 0.5
    images, labels = images.copy(), labels.copy()
    images[flip] = images[flip, :, ::-1]
    labels[flip] = labels[flip, :, ::-1]
    return images, labels


def class_frequencies(labels, n_classes, ignore_index):
    """freq(c) = pixels of class c / pixels of the images in which c occurs (0 if it never does).

    Pixels with the ignore label count towards no class (nor towards image sizes).
    """
    labels = labels.reshape(len(labels), -1)
    counts = np.stack([np.bincount(row, minlength=max(n_classes, ignore_index + 1))[:n_classes]
                       for row in labels])  # (N images, n_classes)
    valid_pixels = (labels != ignore_index).sum(axis=1)  # per image
    present = counts > 0
    pixels_of_images_with_c = (present * valid_pixels[:, None]).sum(axis=0)
    return np.where(pixels_of_images_with_c > 0,
                    counts.sum(axis=0) / np.maximum(pixels_of_images_with_c, 1), 0.0)


def median_frequency_weights(labels, n_classes, ignore_index, dtype=np.float32):
    """w(c) = median(freq) / freq(c) (Eigen and Fergus; SegNet's class balancing), float32
    unless ``dtype`` says otherwise.

    The median is over the classes that occur (for an even count, the mean of the two middle
    frequencies); a class that never occurs gets weight 0.
    """
    freq = class_frequencies(labels, n_classes, ignore_index)
    seen = freq > 0
    if not seen.any():
        raise ValueError("median_frequency_weights: no labelled pixels")
    median = np.median(freq[seen])
    return np.where(seen, median / np.where(seen, freq, 1), 0.0).astype(dtype)


def batches(n, batch_size, rng=None):
    """Index arrays covering range(n) in batches; shuffled when an rng is given."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]
