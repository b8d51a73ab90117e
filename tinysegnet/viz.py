"""Pictures: colour-coded label maps, overlays, prediction grids, training curves and
uncertainty maps."""

import numpy as np
# Figure objects, not pyplot: saving needs no display and leaves the caller's backend alone
# (pyplot's global backend switch would turn off inline plots in the lesson notebooks).
from matplotlib.figure import Figure

from .data.camvid import PALETTE
from .files import atomic_path


def colorize(labels):
    """Class ids (..., H, W) -> RGB uint8 (..., H, W, 3) in CamVid's palette (void black)."""
    return PALETTE[np.clip(np.asarray(labels), 0, len(PALETTE) - 1)]


def overlay(image, labels, alpha=0.5):
    """The image with its label colours blended on top."""
    return (image * (1 - alpha) + colorize(labels) * alpha).astype(np.uint8)


def prediction_grid(images, labels, predictions, path, title=None):
    """Rows of image | ground truth | prediction, saved to ``path``."""
    n = len(images)
    fig = Figure(figsize=(9, 2.4 * n))
    axes = fig.subplots(n, 3, squeeze=False)
    for row, (image, label, pred) in enumerate(zip(images, labels, predictions)):
        for ax, picture, name in zip(axes[row], (image, colorize(label), colorize(pred)),
                                     ("image", "ground truth", "prediction")):
            ax.imshow(picture)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)


def training_curves(history, path):
    """Training loss and validation mIoU per epoch, side by side."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [h["loss"] for h in history], marker="o")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss")
    for key in ("G", "C", "mIoU"):
        right.plot(epochs, [100 * h[key] for h in history], marker="o", label=key)
    right.set_xlabel("epoch")
    right.set_ylabel("validation score (%)")
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)


def uncertainty_map(uncertainty, path, title="uncertainty"):
    """An uncertainty map (H, W) drawn in a colour map with its colour bar (0 to the map's
    largest value), at about the map's own size, saved to ``path``."""
    h, w = uncertainty.shape
    dpi = 100
    fig = Figure(figsize=(max(w / dpi, 2.0) * 1.25, max(h / dpi, 1.5) + 0.4), dpi=dpi)
    ax = fig.subplots()
    shown = ax.imshow(uncertainty, cmap="inferno", vmin=0, vmax=max(float(uncertainty.max()), 1e-12))
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
