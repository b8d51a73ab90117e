"""Running a trained model: predictions, scores, batch-norm statistics, loading a run, and
Bayesian SegNet's Monte Carlo dropout (class probabilities and uncertainty from N samples)."""

import numpy as np
from PIL import Image

from .. import checkpoint, nn
from ..backend import to_device, to_numpy
from ..data import camvid, transforms
from ..data.camvid import CLASSES, VOID
from ..data.synthetic import load_synthetic_split
from ..functional import resize_scores, softmax
from ..metrics import SegmentationScore
from ..models import from_config
from .config import read_meta


def standardize(images, config):
    """uint8 images (N, H, W, 3) -> standardised float32 (N, 3, H, W) with the run's statistics."""
    return transforms.standardize(images, np.asarray(config.mean, np.float32),
                                  np.asarray(config.std, np.float32))


def monte_carlo_estimates(model, x, counts, seed=0):
    """Monte Carlo dropout (Bayesian SegNet): yields ``(n, mean, uncertainty)`` after the first
    n stochastic passes, for each n in ``counts`` (ascending), all from one stream of
    ``max(counts)`` passes, so the estimates for N = 1 ... 50 cost 50 passes, not 88.

    x (B, C, H, W) on the model's device. Each pass runs with dropout drawing masks and
    batch norm in inference mode. With p_s (B, K, H, W) the softmax of pass s::

        mean        = (1/n) sum_s p_s                                  (B, K, H, W)
        uncertainty = (1/K) sum_k [(1/n) sum_s p_s,k^2 - mean_k^2]     (B, H, W)

    the per-class variance over the samples, averaged over the classes (SegNet-Tutorial's
    ``test_bayesian_segnet.py``). Masks come from ``seed``: the same seed, the same result.
    """
    counts = sorted(counts)
    if not counts or counts[0] < 1:
        raise ValueError(f"monte_carlo_estimates: sample counts must be >= 1, got {counts}")
    model.eval()
    nn.set_sampling(model, True)
    nn.seed_dropout(model, seed)
    total = squares = None
    try:
        for n in range(1, counts[-1] + 1):
            p = softmax(model.forward(x))
            total = p if total is None else total + p
            squares = p * p if squares is None else squares + p * p
            if n in counts:
                mean = total / n
                yield n, mean, (squares / n - mean * mean).mean(axis=1)
    finally:
        nn.set_sampling(model, False)


def monte_carlo(model, x, samples, seed=0):
    """(mean class probabilities (B, K, H, W), uncertainty (B, H, W)) of ``samples`` passes:
    :func:`monte_carlo_estimates` for one count."""
    (_, mean, uncertainty), = monte_carlo_estimates(model, x, [samples], seed)
    return mean, uncertainty


def monte_carlo_split(model, split, config, counts, batch_size=8, device="cpu", seed=0,
                      full_res_split=None):
    """{n: (class ids (N, H, W) uint8, uncertainty (N, H, W) float32)} on the host for every
    image of ``split`` and each sample count n in ``counts``: the argmax of the mean
    probabilities and their uncertainty (both resized bilinearly to ``full_res_split``'s
    size when given). Batch b draws its masks from seed (seed, b), so the result depends on
    the seed and the batch size alone."""
    out = {n: ([], []) for n in counts}
    for b, index in enumerate(transforms.batches(len(split), batch_size)):
        x = to_device(standardize(split.images[index], config), device)
        batch_seed = int(np.random.SeedSequence([seed, b]).generate_state(1)[0])
        for n, mean, uncertainty in monte_carlo_estimates(model, x, counts, batch_seed):
            if full_res_split is not None:
                mean = resize_scores(mean, full_res_split.size)
                uncertainty = resize_scores(uncertainty[:, None], full_res_split.size)[:, 0]
            out[n][0].append(to_numpy(mean.argmax(axis=1)).astype(np.uint8))
            out[n][1].append(to_numpy(uncertainty).astype(np.float32))
    return {n: (np.concatenate(ids), np.concatenate(u)) for n, (ids, u) in out.items()}


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


def score_predictions(predictions, labels, boundary_f1=False, n_classes=len(CLASSES)):
    """The scores dict of ``tinysegnet.metrics`` (G, C, mIoU, per-class accuracy and IoU, BF
    when asked) over one confusion matrix for the whole split."""
    score = SegmentationScore(n_classes, VOID, boundary_f1)
    score.update(predictions, labels)
    return score.result()


def evaluate_split(model, split, config, batch_size=8, device="cpu", boundary_f1=False,
                   full_res_split=None, n_classes=len(CLASSES), samples=0, seed=0):
    """(scores, predictions): :func:`score_predictions` of the model's class ids for the
    split; with ``samples`` > 0, of the Monte Carlo dropout estimate from that many passes."""
    if samples:
        predictions = monte_carlo_split(model, split, config, [samples], batch_size, device, seed,
                                        full_res_split)[samples][0]
    else:
        predictions = predict_split(model, split, config, batch_size, device, full_res_split)
    labels = (full_res_split if full_res_split is not None else split).labels
    return score_predictions(predictions, labels, boundary_f1, n_classes), predictions


def _network_input(image, config, device):
    """One RGB uint8 image (H, W, 3) as the network's input (1, 3, h, w) at the run's size."""
    small = np.asarray(Image.fromarray(image).resize(tuple(config.size)[::-1], Image.BILINEAR))
    return to_device(standardize(small[None], config), device)


def predict(model, image, config, device="cpu"):
    """Class ids (H, W) uint8 for one RGB uint8 image (H, W, 3) of any size: resized to the
    run's size for the network, the class scores resized back to the image's."""
    logits = model.eval().forward(_network_input(image, config, device))
    logits = resize_scores(logits, image.shape[:2])
    return to_numpy(logits.argmax(axis=1)[0]).astype(np.uint8)


def predict_monte_carlo(model, image, config, samples, device="cpu", seed=0):
    """(class ids (H, W) uint8, uncertainty (H, W) float32) for one image of any size, from
    ``samples`` Monte Carlo dropout passes (:func:`monte_carlo`), resized to the image's size."""
    mean, uncertainty = monte_carlo(model, _network_input(image, config, device), samples, seed)
    size = image.shape[:2]
    ids = resize_scores(mean, size).argmax(axis=1)[0]
    uncertainty = resize_scores(uncertainty[:, None], size)[0, 0]
    return to_numpy(ids).astype(np.uint8), to_numpy(uncertainty).astype(np.float32)


def recompute_bn_statistics(model, split, config, batch_size=8, device="cpu"):
    """Replace every batch norm's running statistics by their average over ``split``.

    SegNet-Tutorial's ``Scripts/compute_bn_statistics.py``: after training, run the training
    set through the network with batch statistics and keep their mean (momentum 1/(t+1) at
    batch t is a running average). The running variance is the average of unbiased batch
    variances.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [bn.momentum for bn in norms]
    model.train()
    # Dropout draws as in training (the statistics are the training network's, as in
    # SegNet-Tutorial, whose script runs the training net), from the run's seed.
    nn.seed_dropout(model, config.seed)
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
