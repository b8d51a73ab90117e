"""Score a checkpoint on a split: ``python -m tinysegnet.evaluate CKPT [--data-dir DIR --split val]``.

Prints G, C, mIoU, BF and a per-class table of accuracy and IoU; ``--json FILE`` saves them.
By default predictions are scored at the size the model was trained at (labels resized
nearest-neighbour); ``--full-res`` resizes the class scores bilinearly to each label's own
size instead, which is what the paper's figures mean.
"""

import argparse
import json
import os
import sys

import numpy as np

from . import checkpoint
from .backend import resolve_device, to_device, to_numpy
from .data import camvid, transforms
from .data.synthetic import load_synthetic_split
from .data.camvid import CLASSES, VOID
from .files import write_text
from .functional import resize_scores
from .metrics import SegmentationScore
from .models import from_config
from .nn import BatchNorm2d


def predict_split(model, split, mean, std, batch_size=8, device="cpu", full_res_split=None):
    """Class ids (N, H, W) for every image of ``split``, in eval mode.

    With ``full_res_split`` (the same images at their own size) the class scores are
    resized bilinearly to that size before the argmax.
    """
    model.eval()
    out = []
    for index in transforms.batches(len(split), batch_size):
        x = to_device(transforms.standardize(split.images[index], mean, std), device)
        logits = model.forward(x)
        if full_res_split is not None:
            logits = resize_scores(logits, full_res_split.size)
        out.append(to_numpy(logits.argmax(axis=1)).astype(np.uint8))
    return np.concatenate(out)


def score_split(model, split, mean, std, batch_size=8, device="cpu", boundary_f1=False,
                full_res_split=None, n_classes=len(CLASSES)):
    """Scores dict (see ``tinysegnet.metrics.scores``) and the predictions."""
    predictions = predict_split(model, split, mean, std, batch_size, device, full_res_split)
    labels = (full_res_split if full_res_split is not None else split).labels
    score = SegmentationScore(n_classes, VOID, boundary_f1)
    score.update(predictions, labels)
    return score.result(), predictions


def recompute_bn_statistics(model, split, mean, std, batch_size=8, device="cpu"):
    """Replace every batch norm's running statistics by their average over ``split``.

    The paper's procedure: after training, run the training set through the network
    with batch statistics and keep their mean (momentum 1/(t+1) at batch t is a running
    average). The running variance is the average of unbiased batch variances.
    """
    norms = [m for m in model.modules() if isinstance(m, BatchNorm2d)]
    saved = [bn.momentum for bn in norms]
    model.train()
    for t, index in enumerate(transforms.batches(len(split), batch_size)):
        for bn in norms:
            bn.momentum = 1.0 / (t + 1)
        model.forward(to_device(transforms.standardize(split.images[index], mean, std), device))
    for bn, momentum in zip(norms, saved):
        bn.momentum = momentum
    model.eval()


def format_scores(result, class_names=CLASSES):
    lines = [f"G {100 * result['G']:.1f}  C {100 * result['C']:.1f}  "
             f"mIoU {100 * result['mIoU']:.1f}" + (f"  BF {100 * result['BF']:.1f}" if "BF" in result else ""),
             f"{'class':<12} {'accuracy':>8} {'IoU':>6}"]
    for name, acc, iou in zip(class_names, result["class_accuracy"], result["class_iou"]):
        fmt = lambda v: "   -" if v is None or np.isnan(v) else f"{100 * v:.1f}"
        lines.append(f"{name:<12} {fmt(acc):>8} {fmt(iou):>6}")
    return "\n".join(lines)


def load_model(path, device):
    """(model, meta) from a checkpoint, on ``device``, in eval mode."""
    state, _, meta = checkpoint.load(path)
    model = from_config(meta["model"])
    model.load_state_dict(state)
    return model.to(device).eval(), meta


def load_eval_data(meta, data_dir, split_name):
    """The split to score at the model's training size, and the same at full size."""
    size = tuple(meta["size"])
    if data_dir is None and meta.get("data_dir") is None:
        full = load_synthetic_split(split_name, size, meta.get("data_seed", 0))
        return full, full
    root = data_dir or meta["data_dir"]
    full = camvid.load_camvid_split(root, split_name)
    return camvid.resize_split(full, size), full


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tinysegnet.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data-dir", help="CamVid folder (default: the data the model was trained on)")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--full-res", action="store_true", help="score at the labels' own size")
    p.add_argument("--recompute-bn", action="store_true",
                   help="first recompute batch-norm statistics over the training split")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--json", help="also write the scores to this JSON file")
    args = p.parse_args(argv)
    try:
        device = resolve_device(args.device)
        model, meta = load_model(args.checkpoint, device)
        mean, std = np.asarray(meta["mean"], np.float32), np.asarray(meta["std"], np.float32)
        if args.recompute_bn:
            train_split, _ = load_eval_data(meta, args.data_dir, "train")
            recompute_bn_statistics(model, train_split, mean, std, args.batch_size, device)
        split, full = load_eval_data(meta, args.data_dir, args.split)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        sys.exit(f"evaluate: {e}")
    result, _ = score_split(model, split, mean, std, args.batch_size, device, boundary_f1=True,
                            full_res_split=full if args.full_res else None)
    where = f"{args.split} split, {'full resolution' if args.full_res else 'at %dx%d' % tuple(meta['size'])}"
    print(f"{os.path.basename(args.checkpoint)} ({meta['model']['name']}, epoch {meta['epoch']}) on the {where}")
    print(format_scores(result))
    if args.json:
        write_text(args.json, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
