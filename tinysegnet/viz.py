"""Pictures: colour-coded label maps with their legend, overlays, prediction grids, training
curves, uncertainty panels and confusion matrices.

Every picture that shows labels carries a key: the class names in their colours and void's
black explained. Small maps are enlarged by whole factors without smoothing (a 64 x 48
prediction is judged at 384 x 288, each label pixel a block of 6 x 6).
"""

import numpy as np
# Figure objects, not pyplot: saving needs no display and leaves the caller's backend alone
# (pyplot's global backend switch would turn off inline plots in the lesson notebooks).
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw, ImageFont

from .data.camvid import CLASSES, PALETTE
from .files import atomic_path

COLORS = PALETTE[:len(CLASSES)]  # CamVid's class colours, the default everywhere here
VOID_COLOR = (0, 0, 0)
VOID_NOTE = "void (unlabelled, not scored)"
SMALLEST_SIDE = 360  # pictures of label maps are enlarged until their height reaches this


def colorize(labels, palette=COLORS):
    """Class ids (..., H, W) -> RGB uint8 (..., H, W, 3); ids past the palette's classes (void)
    black. ``palette`` (K, 3) uint8: the classes' colours (CamVid's by default)."""
    palette = np.concatenate([np.asarray(palette, np.uint8)[:, :3], [VOID_COLOR]]).astype(np.uint8)
    return palette[np.clip(np.asarray(labels), 0, len(palette) - 1)]


def overlay(image, labels, alpha=0.5, palette=COLORS):
    """The image with its label colours blended on top."""
    return (image * (1 - alpha) + colorize(labels, palette) * alpha).astype(np.uint8)


def enlarge(picture, smallest=SMALLEST_SIDE):
    """(H, W, ...) enlarged by the whole factor that brings H to at least ``smallest`` (1 when
    it is there already), by repeating pixels: labels stay labels, nothing is blurred."""
    factor = max(1, -(-smallest // picture.shape[0]))
    return picture.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else picture


def _font(size):
    return ImageFont.load_default(size)


def legend_band(width, names=CLASSES, palette=COLORS, void=True):
    """An RGB uint8 band (h, width, 3), white, listing each class as a colour swatch and its
    name, wrapped onto as many lines as ``width`` needs; ``void`` adds black = void."""
    entries = [(tuple(int(v) for v in palette[i][:3]), name) for i, name in enumerate(names)]
    if void:
        entries.append((VOID_COLOR, VOID_NOTE))
    size = max(11, min(16, width // 40))
    font, swatch, gap = _font(size), size, size // 2
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines, line, x = [], [], gap
    for color, name in entries:
        w = swatch + gap // 2 + int(draw.textlength(name, font=font)) + 2 * gap
        if line and x + w > width:
            lines.append(line)
            line, x = [], gap
        line.append((x, color, name))
        x += w
    lines.append(line)
    row = size + gap
    band = Image.new("RGB", (width, gap + row * len(lines)), "white")
    draw = ImageDraw.Draw(band)
    for r, entries_of_line in enumerate(lines):
        y = gap + r * row
        for x, color, name in entries_of_line:
            draw.rectangle([x, y, x + swatch - 1, y + swatch - 1], fill=color, outline=(90, 90, 90))
            draw.text((x + swatch + gap // 2, y + swatch // 2), name, fill="black", font=font, anchor="lm")
    return np.asarray(band)


def with_legend(picture, names=CLASSES, palette=COLORS, void=True):
    """The RGB picture (H, W, 3), enlarged when small (:func:`enlarge`), above its legend."""
    picture = enlarge(picture)
    return np.concatenate([picture, legend_band(picture.shape[1], names, palette, void)])


def _legend(fig, names, palette, void=True):
    """The class legend along the figure's bottom; returns the height it takes (inches)."""
    columns = max(4, -(-len(names) // 8))
    fig.legend(handles=_legend_handles(names, palette, void), loc="lower center", ncol=columns, fontsize=8,
               frameon=False)
    return 0.3 + 0.19 * -(-(len(names) + void) // columns)


def _legend_handles(names, palette, void=True):
    handles = [Patch(facecolor=np.asarray(palette[i][:3]) / 255, edgecolor="0.4", label=name)
               for i, name in enumerate(names)]
    if void:
        handles.append(Patch(facecolor=VOID_COLOR, edgecolor="0.4", label=VOID_NOTE))
    return handles


def _save(fig, path, **options):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, **options)


def prediction_grid(images, labels, predictions, path, title=None, names=CLASSES, palette=COLORS):
    """Rows of image | ground truth | prediction, with the class legend, saved to ``path``.
    Each panel is drawn 3 inches wide whatever the images' size (pixels repeated, never
    smoothed)."""
    n = len(images)
    h, w = images.shape[1:3]
    panel_h = 3.0 * h / w
    fig = Figure(figsize=(9.6, panel_h * n + 0.6))
    axes = fig.subplots(n, 3, squeeze=False)
    for row, (image, label, pred) in enumerate(zip(images, labels, predictions)):
        for ax, picture, name in zip(axes[row], (image, colorize(label, palette), colorize(pred, palette)),
                                     ("image", "ground truth", "prediction")):
            ax.imshow(picture, interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(name)
    legend = _legend(fig, names, palette)
    fig.set_figheight(panel_h * n + 0.6 + legend)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, legend / (panel_h * n + 0.6 + legend), 1, 1))
    _save(fig, path)


def training_curves(history, path, best_epoch=None):
    """Training (and validation) loss and validation G, C, mIoU per epoch, side by side, the
    best epoch marked; integer epochs on the axes."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [h["loss"] for h in history], marker="o", label="training")
    if all(h.get("val_loss") is not None for h in history):
        left.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation")
        left.legend()
    left.set_ylabel("loss")
    for key in ("G", "C", "mIoU"):
        right.plot(epochs, [100 * h[key] for h in history], marker="o", label=key)
    if best_epoch is not None:
        best = next(h for h in history if h["epoch"] == best_epoch)
        for ax in (left, right):
            ax.axvline(best_epoch, color="0.5", ls="--", lw=1)
        right.plot([best_epoch], [100 * best["mIoU"]], "k*", ms=12,
                   label=f"best mIoU {100 * best['mIoU']:.1f} (epoch {best_epoch})")
    right.set_ylabel("validation score (%)")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


UNCERTAINTY_LABEL = "uncertainty: variance of the sampled class probabilities, mean over classes"


def uncertainty_bound(n_classes):
    """The largest value the uncertainty can take with ``n_classes`` classes: the mean over
    classes of the variances of probabilities summing to 1 is at most (1/K)(1 - 1/K)."""
    return (1 - 1 / n_classes) / n_classes


def uncertainty_panel(image, prediction, uncertainty, path, scale, title=None, names=CLASSES,
                      palette=COLORS):
    """Image | prediction | uncertainty side by side (as the Bayesian SegNet paper shows them),
    the uncertainty on the fixed colour scale 0..``scale`` (the same for every image, so maps
    compare), its colour bar labelled, the class legend below."""
    h, w = image.shape[:2]
    panel_h = 3.2 * h / w
    fig = Figure(figsize=(10.8, panel_h + 0.6))
    axes = fig.subplots(1, 3)
    axes[0].imshow(image)
    axes[1].imshow(colorize(prediction, palette), interpolation="nearest")
    shown = axes[2].imshow(uncertainty, cmap="inferno", vmin=0, vmax=scale)
    for ax, name in zip(axes, ("image", "prediction", "uncertainty")):
        ax.set_title(name)
        ax.set_axis_off()
    bar = fig.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.02)
    bar.set_label("variance, mean over classes", fontsize=8)
    legend = _legend(fig, names, palette, void=False)  # a prediction is never void
    fig.set_figheight(panel_h + 0.6 + legend)
    fig.suptitle(title or UNCERTAINTY_LABEL, fontsize=10)
    fig.tight_layout(rect=(0, legend / (panel_h + 0.6 + legend), 1, 1))
    _save(fig, path)


def confusion_picture(confusion, path, names=CLASSES, title=None):
    """The confusion matrix (K, K) of counts (rows the true class), each row divided by its
    total (so the diagonal is the class accuracy), in per cent, with the class names."""
    conf = np.asarray(confusion, np.float64)
    totals = conf.sum(axis=1, keepdims=True)
    rows = np.divide(conf, totals, out=np.zeros_like(conf), where=totals > 0)
    k = len(names)
    fig = Figure(figsize=(1.0 + 0.62 * k, 0.6 + 0.55 * k))
    ax = fig.subplots()
    shown = ax.imshow(100 * rows, cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if totals[i, 0] > 0:
                    ax.text(j, i, f"{100 * rows[i, j]:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if rows[i, j] > 0.5 else "black")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02).set_label("% of the true class's pixels")
    ax.set_title(title or "confusion matrix, rows normalised", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
