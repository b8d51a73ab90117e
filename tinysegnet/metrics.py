"""Segmentation scores: global accuracy G, class accuracy C, mIoU, and boundary F1 (BF).

G, C and mIoU come from one confusion matrix accumulated over a whole split
(void pixels ignored), as in the SegNet paper::

    conf[t, p] = number of pixels of true class t predicted as p
    G    = trace(conf) / sum(conf)
    C    = mean over classes t of conf[t, t] / sum_p conf[t, p]
    IoU  = conf[t, t] / (sum_p conf[t, p] + sum_s conf[s, t] - conf[t, t])
    mIoU = mean over classes of IoU

Classes absent from the ground truth of the split (and never predicted) are left out of
the means rather than counted as 0 or 1.

BF (Csurka et al., 2013; SegNet's Table 2) scores boundaries per image: for each class, the
boundary pixels of the two binary masks are matched within a tolerance of 0.75% of the
image diagonal; precision, recall and their F1 follow, image BF = mean F1 over the classes,
split BF = mean over images. The SegNet paper averages over the classes present in the
ground truth; this library's figures average over the classes present in the ground truth
*or* the prediction (a class predicted where there is none scores 0), which is stricter.
``boundary_f1(..., classes="truth")`` gives the paper's definition. Boundaries are matched
by dilation (a pixel matches when one of the other mask's lies within the tolerance), where
the authors' code matches them one to one.
"""

import numpy as np

from .backend import to_numpy

BF_TOLERANCE = 0.0075  # fraction of the image diagonal


def confusion_matrix(predictions, labels, n_classes, ignore_index=None):
    """(n_classes, n_classes) int64 counts, rows true class, columns predicted class."""
    predictions, labels = to_numpy(predictions).ravel(), to_numpy(labels).ravel()
    if predictions.shape != labels.shape:
        raise ValueError(f"confusion_matrix: {predictions.size} predictions for {labels.size} labels")
    keep = (labels >= 0) & (labels < n_classes)
    if ignore_index is not None:
        keep &= labels != ignore_index
    index = labels[keep].astype(np.int64) * n_classes + predictions[keep].astype(np.int64)
    return np.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def scores(conf):
    """dict with G, C, mIoU (fractions in [0, 1]) and per-class accuracy and IoU (NaN if absent)."""
    conf = np.asarray(conf, dtype=np.float64)
    true_total, predicted_total, hits = conf.sum(axis=1), conf.sum(axis=0), np.diag(conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(true_total > 0, hits / true_total, np.nan)
        union = true_total + predicted_total - hits
        iou = np.where(true_total > 0, hits / union, np.nan)
    return {
        "G": float(hits.sum() / max(conf.sum(), 1)),
        "C": float(np.nanmean(accuracy)) if np.isfinite(accuracy).any() else 0.0,
        "mIoU": float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0,
        "class_accuracy": accuracy.tolist(),
        "class_iou": iou.tolist(),
    }


def boundary(mask):
    """Pixels of a boolean mask (H, W) that have a 4-neighbour outside it (image edges do not count)."""
    padded = np.pad(mask, 1, mode="edge")
    inside_all = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return mask & ~inside_all


def _disk_offsets(radius):
    r = int(np.floor(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = dy * dy + dx * dx <= radius * radius
    return list(zip(dy[keep].tolist(), dx[keep].tolist()))


def dilate(mask, radius):
    """Pixels within Euclidean distance ``radius`` of a True pixel of ``mask``.

    This is the thresholded distance transform (distance <= radius), done as the union
    of the mask shifted by every offset in a disk.
    """
    h, w = mask.shape
    out = np.zeros_like(mask)
    for dy, dx in _disk_offsets(radius):
        out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] |= \
            mask[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def boundary_f1(prediction, label, n_classes, ignore_index=None, tolerance=BF_TOLERANCE,
                classes="either"):
    """BF of one image: the mean over classes of the boundary F1.

    Which classes the mean runs over has two definitions: ``classes="either"`` (the default,
    as this library has always reported BF) takes every class present in the label or the
    prediction, so a class predicted where the truth has none scores 0; ``classes="truth"``
    takes the classes present in the ground truth only, as the SegNet paper states.
    A class whose mask has no boundary pixel in the truth or the prediction scores 0. Void
    pixels (``ignore_index`` in the label) are left out of both masks. Returns NaN when the
    image has no valid pixel (or, with ``"truth"``, no class in it).
    """
    if classes not in ("either", "truth"):
        raise ValueError(f"boundary_f1: classes must be 'either' or 'truth', got {classes!r}")
    prediction, label = to_numpy(prediction), to_numpy(label)
    valid = label != ignore_index if ignore_index is not None else np.ones(label.shape, bool)
    if not valid.any():
        return float("nan")
    radius = tolerance * np.hypot(*label.shape)
    f1s = []
    for c in range(n_classes):
        true_mask, pred_mask = (label == c) & valid, (prediction == c) & valid
        if not true_mask.any() and (classes == "truth" or not pred_mask.any()):
            continue
        true_edge, pred_edge = boundary(true_mask), boundary(pred_mask)
        if not true_edge.any() or not pred_edge.any():
            f1s.append(0.0)
            continue
        precision = (pred_edge & dilate(true_edge, radius)).sum() / pred_edge.sum()
        recall = (true_edge & dilate(pred_edge, radius)).sum() / true_edge.sum()
        f1s.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(f1s)) if f1s else float("nan")


class SegmentationScore:
    """Accumulates a confusion matrix (and optionally per-image BF) over a split."""

    def __init__(self, n_classes, ignore_index=None, boundary_f1=False):
        self.n_classes, self.ignore_index, self.with_bf = n_classes, ignore_index, boundary_f1
        self.conf = np.zeros((n_classes, n_classes), np.int64)
        self.bf = []

    def update(self, predictions, labels):
        """predictions, labels: (N, H, W) class ids (NumPy or CuPy)."""
        predictions, labels = to_numpy(predictions), to_numpy(labels)
        self.conf += confusion_matrix(predictions, labels, self.n_classes, self.ignore_index)
        if self.with_bf:
            for p, t in zip(predictions, labels):
                value = boundary_f1(p, t, self.n_classes, self.ignore_index)
                if not np.isnan(value):
                    self.bf.append(value)

    def result(self):
        """:func:`scores` of the matrix, with the matrix itself (``confusion``: counts, rows the
        true class, columns the predicted one) and BF when asked."""
        out = scores(self.conf)
        out["confusion"] = self.conf.tolist()
        if self.with_bf:
            out["BF"] = float(np.mean(self.bf)) if self.bf else 0.0
        return out
