"""Local contrast normalisation, the paper's input normalisation (``--input-norm lcn``).

The paper says only "local contrast normalisation". We take the form of Jarrett, Kavukcuoglu,
Ranzato and LeCun (2009, "What is the best multi-stage architecture for object recognition?"),
which Torch's ``SpatialContrastiveNormalization`` implements and SegNet's era used: per
channel, with G a 9 x 9 Gaussian window (sigma 2, weights summing to 1)::

    x    = image / 255                          (N, 3, H, W)
    mean = (G * x) / (G * 1)                    local mean; G * 1 corrects the zero-padded border
    c    = x - mean
    s    = sqrt((G * c^2) / (G * 1))            local standard deviation
    out  = c / max(s, mean over the image of s, 1e-4)

The floor (the image's average local deviation) keeps flat regions from being blown up into
noise; 1e-4 keeps a uniform image finite. Each channel is normalised on its own (the issue's
and the paper's wording), with our depthwise convolution.
"""

import numpy as np

from ..functional.depthwise import depthwise_conv2d_forward

WINDOW, SIGMA, EPS = 9, 2.0, 1e-4


def gaussian_window(size=WINDOW, sigma=SIGMA):
    """(size, size) float32 Gaussian weights summing to 1."""
    r = np.arange(size) - size // 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).astype(np.float32)


def local_contrast_normalize(images):
    """uint8 images (N, H, W, 3) -> float32 (N, 3, H, W), locally contrast-normalised."""
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255
    w = np.repeat(gaussian_window()[None], x.shape[1], axis=0)
    blur = lambda a: depthwise_conv2d_forward(a, w)[0]
    coverage = blur(np.ones((1,) + x.shape[1:], np.float32))
    centred = x - blur(x) / coverage
    deviation = np.sqrt(np.maximum(blur(centred * centred) / coverage, 0))
    floor = np.maximum(deviation.mean(axis=(2, 3), keepdims=True), EPS)
    return (centred / np.maximum(deviation, floor)).astype(np.float32)


def _window_average_loops(a, g):
    """(H, W): at each pixel, the g-weighted average of ``a`` over the window's pixels inside
    the image (the weights of those outside left out, as the coverage correction does)."""
    h, w = a.shape
    p = len(g) // 2
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            total = weight = 0.0
            for u in range(-p, p + 1):
                for v in range(-p, p + 1):
                    if 0 <= i + u < h and 0 <= j + v < w:
                        total += g[u + p, v + p] * a[i + u, j + v]
                        weight += g[u + p, v + p]
            out[i, j] = total / weight
    return out


def local_contrast_normalize_loops(image):
    """The same for one image (H, W, 3), pixel by pixel: the reference the tests hold the
    convolution version to."""
    x = image.astype(np.float64) / 255
    g = gaussian_window().astype(np.float64)
    out = np.zeros((x.shape[2],) + x.shape[:2])
    for c in range(x.shape[2]):
        centred = x[:, :, c] - _window_average_loops(x[:, :, c], g)
        deviation = np.sqrt(_window_average_loops(centred ** 2, g))
        out[c] = centred / np.maximum(deviation, max(deviation.mean(), EPS))
    return out
