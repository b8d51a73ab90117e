"""Running a trained model: predictions, scores, batch-norm statistics, loading a run, and
Bayesian SegNet's Monte Carlo dropout (class probabilities and uncertainty from N samples)."""

import functools

import numpy as np
from PIL import Image

from .. import checkpoint, nn
from .. import functional as F
from ..backend import array_module, to_device, to_numpy
from ..data import camvid, folder, transforms
from ..data.transforms import network_input
from ..data.camvid import VOID
from ..data.classes import config_classes, read_classes
from ..errors import DataError
from ..data.synthetic import load_synthetic_split
from ..functional import resize_scores, scratch, softmax
from ..metrics import SegmentationScore
from ..models import from_config
from .config import read_meta


def _hands_scratch_back(inference):
    """``inference(model, ...)`` that, on a GPU, gives the convolutions' scratch buffers back
    to CuPy's pool when it ends, so a process that lives on (the demo's server, a notebook)
    holds the weights between calls, not the largest layer's temporaries (row shifts at
    360x480: 319 MB). On the CPU they stay: the next call would take fresh pages, which the
    system zero-fills."""
    @functools.wraps(inference)
    def handing_back(model, *args, **kwargs):
        try:
            return inference(model, *args, **kwargs)
        finally:
            if model.device != "cpu":
                scratch.release(array_module(model.device))
    return handing_back


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


def _inputs(model, images, mean, std, norm):
    """uint8 images (B, H, W, 3) as the network's input (:func:`network_input`: standardised, or
    ``norm="lcn"``), in the model's dtype, on its device: (B, 3, H, W)."""
    return to_device(network_input(images, mean, std, norm).astype(model.dtype, copy=False), model.device)


@_hands_scratch_back
def monte_carlo_split(model, split, mean, std, counts, batch_size=8, seed=0, full_res=None, on_batch=None,
                      norm="standardize"):
    """{n: (class ids (N, H, W) uint8, uncertainty (N, H, W) float32)} on the host for every
    image of ``split`` and each sample count n in ``counts``: the argmax of the mean
    probabilities and their uncertainty (both resized bilinearly to ``full_res``'s size, the
    same images at their own size, when given). ``mean``/``std`` (3,) standardise the inputs
    (a run config's). Batch b draws its masks from seed (seed, b), so the result depends on
    the seed and the batch size alone. ``on_batch(images_done)`` reports progress."""
    out = {n: ([], []) for n in counts}
    for b, index in enumerate(transforms.batches(len(split), batch_size)):
        x = _inputs(model, split.images[index], mean, std, norm)
        batch_seed = int(np.random.SeedSequence([seed, b]).generate_state(1)[0])
        for n, probs, uncertainty in monte_carlo_estimates(model, x, counts, batch_seed):
            if full_res is not None:
                probs = resize_scores(probs, full_res.size)
                uncertainty = resize_scores(uncertainty[:, None], full_res.size)[:, 0]
            out[n][0].append(to_numpy(probs.argmax(axis=1)).astype(np.uint8))
            out[n][1].append(to_numpy(uncertainty).astype(np.float32))
        if on_batch:
            on_batch(index[-1] + 1)
    return {n: (np.concatenate(ids), np.concatenate(u)) for n, (ids, u) in out.items()}


def _split_logits(model, split, mean, std, batch_size, on_batch=None, norm="standardize"):
    """(index, logits (B, K, H, W) on the model's device) for each batch of ``split``, in eval
    mode; ``on_batch(images_done)`` after each."""
    model.eval()
    for index in transforms.batches(len(split), batch_size):
        yield index, model.forward(_inputs(model, split.images[index], mean, std, norm))
        if on_batch:
            on_batch(index[-1] + 1)


@_hands_scratch_back
def predict_split(model, split, mean, std, batch_size=8, full_res=None, on_batch=None, norm="standardize"):
    """Class ids (N, H, W) uint8 for every image of ``split``, in eval mode, on the model's
    device; ``mean``/``std`` (3,) standardise the inputs.

    With ``full_res`` (the same images at their own size) the class scores are resized
    bilinearly to that size before the argmax. ``on_batch(images_done)`` reports progress.
    """
    out = []
    for _, logits in _split_logits(model, split, mean, std, batch_size, on_batch, norm):
        if full_res is not None:
            logits = resize_scores(logits, full_res.size)
        out.append(to_numpy(logits.argmax(axis=1)).astype(np.uint8))
    return np.concatenate(out)


@_hands_scratch_back
def validate(model, split, mean, std, batch_size=8, class_weights=None, void=VOID, on_batch=None,
             norm="standardize"):
    """(scores with ``loss``, predictions): one pass over a split at its own size, in eval
    mode, for a run's epoch: the class ids, the scores of :func:`score_predictions`, and the
    loss training minimises (weighted cross-entropy over the valid pixels, ``class_weights``
    (K,) on the model's device or None), averaged over the images as the training loss is."""
    out, total = [], 0.0
    for index, logits in _split_logits(model, split, mean, std, batch_size, on_batch, norm):
        labels = to_device(split.labels[index], model.device)
        loss, _ = F.softmax_cross_entropy(logits, labels, class_weights, void)
        total += float(loss) * len(index)
        out.append(to_numpy(logits.argmax(axis=1)).astype(np.uint8))
    predictions = np.concatenate(out)
    scores = score_predictions(predictions, split.labels, model.config["n_classes"], void)
    scores["loss"] = total / len(split)
    return scores, predictions


def score_predictions(predictions, labels, n_classes, void=VOID, boundary_f1=False):
    """The scores dict of ``tinysegnet.metrics`` (G, C, mIoU, per-class accuracy and IoU, BF
    when asked) over one confusion matrix for the whole split; pixels labelled ``void``
    are not scored."""
    score = SegmentationScore(n_classes, void, boundary_f1)
    score.update(predictions, labels)
    return score.result()


def evaluate_split(model, split, mean, std, batch_size=8, boundary_f1=False, full_res=None,
                   samples=0, seed=0, void=VOID, on_batch=None, norm="standardize"):
    """(scores, predictions): :func:`score_predictions` of the model's class ids for the
    split (over the model's classes); with ``samples`` > 0, of the Monte Carlo dropout
    estimate from that many passes (masks from ``seed``). ``norm``: the run's input
    normalisation (``config.input_norm``), as in every inference function here."""
    if samples:
        predictions = monte_carlo_split(model, split, mean, std, [samples], batch_size, seed,
                                        full_res, on_batch, norm)[samples][0]
    else:
        predictions = predict_split(model, split, mean, std, batch_size, full_res, on_batch, norm)
    labels = (full_res if full_res is not None else split).labels
    scores = score_predictions(predictions, labels, model.config["n_classes"], void, boundary_f1)
    return scores, predictions


def _network_input(model, image, mean, std, size, norm):
    """One RGB uint8 image (H, W, 3) as the network's input (1, 3, h, w) at ``size`` (h, w)."""
    small = np.asarray(Image.fromarray(image).resize(tuple(size)[::-1], Image.BILINEAR))
    return _inputs(model, small[None], mean, std, norm)


@_hands_scratch_back
def predict(model, image, mean, std, size, norm="standardize"):
    """Class ids (H, W) uint8 for one RGB uint8 image (H, W, 3) of any size: resized to
    ``size`` (h, w, the run's) for the network, the class scores resized back to the image's."""
    logits = model.eval().forward(_network_input(model, image, mean, std, size, norm))
    logits = resize_scores(logits, image.shape[:2])
    return to_numpy(logits.argmax(axis=1)[0]).astype(np.uint8)


@_hands_scratch_back
def predict_monte_carlo(model, image, mean, std, size, samples, seed=0, norm="standardize"):
    """(class ids (H, W) uint8, uncertainty (H, W) float32) for one image of any size, from
    ``samples`` Monte Carlo dropout passes (:func:`monte_carlo`), resized to the image's size."""
    probs, uncertainty = monte_carlo(model, _network_input(model, image, mean, std, size, norm), samples, seed)
    shape = image.shape[:2]
    ids = resize_scores(probs, shape).argmax(axis=1)[0]
    uncertainty = resize_scores(uncertainty[:, None], shape)[0, 0]
    return to_numpy(ids).astype(np.uint8), to_numpy(uncertainty).astype(np.float32)


def recompute_bn_statistics(model, split, mean, std, batch_size=8, seed=0, on_batch=None, norm="standardize"):
    """Replace every batch norm's running statistics by their average over ``split``.

    SegNet-Tutorial's ``Scripts/compute_bn_statistics.py``: after training, run the training
    set through the network with batch statistics and keep their mean (momentum 1/(t+1) at
    batch t is a running average). The running variance is the average of unbiased batch
    variances. Dropout draws its masks from ``seed`` (the run's). ``on_batch(images_done)``
    reports progress.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [bn.momentum for bn in norms]
    model.train()
    # Dropout draws as in training (the statistics are the training network's, as in
    # SegNet-Tutorial, whose script runs the training net).
    nn.seed_dropout(model, seed)
    try:
        for t, index in enumerate(transforms.batches(len(split), batch_size)):
            for bn in norms:
                bn.momentum = 1.0 / (t + 1)
            model.forward(_inputs(model, split.images[index], mean, std, norm))
            if on_batch:
                on_batch(index[-1] + 1)
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


def load_eval_data(config, split_name, data_dir=None, full_size=None, full_res=True):
    """(the split at the run's size, the same images at their own size, or at ``full_size``
    where they differ; None unless ``full_res``): the data set in ``data_dir`` or the run's
    folder, else the run's synthetic set (made at the run's size). A data folder whose classes
    are not the run's is one line: the model's scores would name the wrong classes."""
    root = data_dir or config.data_dir
    if root is None:
        split = load_synthetic_split(split_name, tuple(config.size), config.seed)
        return split, split
    classes = config_classes(config)
    found = read_classes(root)
    if found != classes:
        raise DataError(f"{root}: its classes ({len(found)}: {', '.join(found.names[:3])}, ...) are not the "
                        f"run's ({len(classes)}: {', '.join(classes.names[:3])}, ...): score the run on "
                        f"the data set it was trained for")
    if not full_res:
        return folder.load_split(root, split_name, tuple(config.size), classes), None
    full = folder.load_split(root, split_name, full_size, classes)
    return camvid.resize_split(full, tuple(config.size)), full
