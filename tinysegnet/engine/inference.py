"""Running a trained model: predictions, scores, batch-norm statistics, loading a run."""

import numpy as np
from PIL import Image

from .. import checkpoint
from ..backend import to_device, to_numpy
from ..data import camvid, transforms
from ..data.camvid import CLASSES, VOID
from ..data.synthetic import load_synthetic_split
from ..functional import resize_scores
from ..metrics import SegmentationScore
from ..models import from_config
from ..nn import BatchNorm2d
from .config import read_meta


def standardize(images, config):
    """uint8 images (N, H, W, 3) -> standardised float32 (N, 3, H, W) with the run's statistics."""
    return transforms.standardize(images, np.asarray(config.mean, np.float32),
                                  np.asarray(config.std, np.float32))


def predict_split(model, split, config, batch_size=8, device="cpu", full_res_split=None):
    """Class ids (N, H, W) uint8 for every image of ``split``, in eval mode.

    With ``full_res_split`` (the same images at their own size) the class scores are
    resized bilinearly to that size before the argmax.
    """
    model.eval()
    out = []
    for index in transforms.batches(len(split), batch_size):
        logits = model.forward(to_device(standardize(split.images[index], config), device))
        if full_res_split is not None:
            logits = resize_scores(logits, full_res_split.size)
        out.append(to_numpy(logits.argmax(axis=1)).astype(np.uint8))
    return np.concatenate(out)


def evaluate_split(model, split, config, batch_size=8, device="cpu", boundary_f1=False,
                   full_res_split=None, n_classes=len(CLASSES)):
    """(scores, predictions): the scores dict of ``tinysegnet.metrics`` (G, C, mIoU, per-class
    accuracy and IoU, BF when asked) over one confusion matrix for the whole split."""
    predictions = predict_split(model, split, config, batch_size, device, full_res_split)
    labels = (full_res_split if full_res_split is not None else split).labels
    score = SegmentationScore(n_classes, VOID, boundary_f1)
    score.update(predictions, labels)
    return score.result(), predictions


def predict(model, image, config, device="cpu"):
    """Class ids (H, W) uint8 for one RGB uint8 image (H, W, 3) of any size: resized to the
    run's size for the network, the class scores resized back to the image's."""
    small = np.asarray(Image.fromarray(image).resize(tuple(config.size)[::-1], Image.BILINEAR))
    model.eval()
    logits = model.forward(to_device(standardize(small[None], config), device))
    logits = resize_scores(logits, image.shape[:2])
    return to_numpy(logits.argmax(axis=1)[0]).astype(np.uint8)


def recompute_bn_statistics(model, split, config, batch_size=8, device="cpu"):
    """Replace every batch norm's running statistics by their average over ``split``.

    SegNet-Tutorial's ``Scripts/compute_bn_statistics.py``: after training, run the training
    set through the network with batch statistics and keep their mean (momentum 1/(t+1) at
    batch t is a running average). The running variance is the average of unbiased batch
    variances.
    """
    norms = [m for m in model.modules() if isinstance(m, BatchNorm2d)]
    saved = [bn.momentum for bn in norms]
    model.train()
    try:
        for t, index in enumerate(transforms.batches(len(split), batch_size)):
            for bn in norms:
                bn.momentum = 1.0 / (t + 1)
            model.forward(to_device(standardize(split.images[index], config), device))
    finally:
        for bn, momentum in zip(norms, saved):
            bn.momentum = momentum
        model.eval()


def load_run(path, device="cpu"):
    """(model in eval mode on ``device``, RunConfig, progress) from a checkpoint."""
    state, _, meta = checkpoint.load(path)
    config, model_config, progress = read_meta(meta, path)
    model = from_config(model_config)
    model.load_state_dict(state)
    return model.to(device).eval(), config, progress


def load_eval_data(config, split_name, data_dir=None, full_size=None):
    """(the split at the run's size, the same images at their own size, or at ``full_size``
    where they differ): CamVid from ``data_dir`` or the run's folder, else the run's
    synthetic set (made at the run's size)."""
    root = data_dir or config.data_dir
    if root is None:
        split = load_synthetic_split(split_name, tuple(config.size), config.seed)
        return split, split
    full = camvid.load_camvid_split(root, split_name, full_size)
    return camvid.resize_split(full, tuple(config.size)), full
