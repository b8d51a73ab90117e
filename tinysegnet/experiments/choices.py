"""Two of the training protocol's choices, measured: ``python -m tinysegnet.experiments
choices --data-dir DIR``.

Trains (or reuses) SegNet-Basic with median-frequency class weights and without class
weights, with one protocol otherwise, and scores the last epoch of each on the val split
twice: with the batch-norm running averages kept during training, and with statistics
recomputed over the training split (SegNet-Tutorial's ``compute_bn_statistics.py``). It
also sets our median-frequency weights beside those SegNet-Tutorial publishes in its
prototxts. Writes ``choices.md`` and ``choices.json`` (which lesson 7 reads) into ``--report``.
"""

import os

import numpy as np

from .. import cli, engine
from ..backend import resolve_device
from ..data import camvid, transforms
from ..data.camvid import CLASSES, VOID
from ..files import strict_json, write_text
from .common import parse_protocol, protocol, protocol_parser, train_model, trained

# SegNet-Tutorial's Models/segnet_basic_train.prototxt, loss_param class_weighting, in
# CamVid's class order.
TUTORIAL_WEIGHTS = (0.2595, 0.1826, 4.5640, 0.1417, 0.9051, 0.3826, 9.6446, 1.8418, 0.6823, 6.2478, 7.3614)
WEIGHTINGS = ("median", "none")  # each run's class weighting, which also names its folder


def scores_both_ways(run_dir, data_dir, device, batch_size=8):
    """{"running": scores, "recomputed": scores} of a run's last checkpoint on the val split."""
    model, config, _ = engine.load_run(os.path.join(run_dir, "last.npz"), device)
    val, _ = engine.load_eval_data(config, "val", data_dir)
    train, _ = engine.load_eval_data(config, "train", data_dir)
    out = {"running": engine.evaluate_split(model, val, config.mean, config.std, batch_size)[0]}
    with cli.ProgressBar(len(train), "batch-norm statistics") as bar:
        engine.recompute_bn_statistics(model, train, config.mean, config.std, batch_size, config.seed, bar.to)
    out["recomputed"] = engine.evaluate_split(model, val, config.mean, config.std, batch_size)[0]
    return {k: {m: v[m] for m in ("G", "C", "mIoU", "class_iou")} for k, v in out.items()}


def weights_compared(data_dir, size):
    """Median-frequency weights from the train split at the run's size and at full size."""
    full = camvid.load_camvid_split(data_dir, "train")
    small = camvid.resize_split(full, size)

    def weights(split):
        return transforms.median_frequency_weights(split.labels, len(CLASSES), VOID).tolist()
    return {"ours, train split at %dx%d" % size: weights(small),
            "ours, train split at full size": weights(full),
            "SegNet-Tutorial's prototxt": list(TUTORIAL_WEIGHTS)}


def write_report(result, command, folder):
    os.makedirs(folder, exist_ok=True)
    write_text(os.path.join(folder, "choices.json"), strict_json(result, indent=2) + "\n")
    pct = lambda v: "-" if v is None or np.isnan(v) else f"{100 * v:.1f}"
    lines = ["# Class weighting and batch-norm statistics, measured", "", f"Command: `{command}`", "",
             f"SegNet-Basic trained with and without median-frequency class weights, otherwise one "
             f"protocol ({result['protocol']}; {result['epochs']} epochs); the last "
             "epoch of each scored on the val split with the batch-norm running averages of training and "
             "with statistics recomputed over the training split. The runs, as their checkpoints record "
             "them: " + "; ".join(f"{w}: trained on device {t['device']} from {t['data_dir']}"
                                  for w, t in result["trained_on"].items())
             + f"; scored on device {result['scored_on']}.", "",
             "| class weights | BN statistics | G | C | mIoU | " + " | ".join(CLASSES) + " |",
             "|---|---|---:|---:|---:|" + "---:|" * len(CLASSES)]
    for weighting, both in result["scores"].items():
        for stats, s in both.items():
            lines.append(f"| {weighting} | {stats} | {pct(s['G'])} | {pct(s['C'])} | {pct(s['mIoU'])} | "
                         + " | ".join(pct(v) for v in s["class_iou"]) + " |")
    lines += ["", "Per-class columns are IoU (%).", "", "## Median-frequency weights", "",
              "| source | " + " | ".join(CLASSES) + " |", "|---|" + "---:|" * len(CLASSES)]
    for source, w in result["weights"].items():
        lines.append(f"| {source} | " + " | ".join(f"{v:.3f}" for v in w) + " |")
    ours = np.array(result["weights"]["ours, train split at full size"])
    theirs = np.array(TUTORIAL_WEIGHTS)
    ratio = theirs / ours
    odd = np.abs(np.log(ratio / np.median(ratio))) > np.log(1.5)  # more than 1.5x off the common factor
    common = ratio[~odd]
    exceptions = ", ".join(f"{CLASSES[k]} ({ratio[k]:.2f})" for k in np.flatnonzero(odd)) or "none"
    lines += ["", f"Theirs over ours (full size): {', '.join(f'{r:.2f}' for r in ratio)}. {len(common)} of "
              f"the {len(CLASSES)} classes differ by a nearly common factor ({common.min():.2f} to "
              f"{common.max():.2f}, median {np.median(common):.2f}): a different median frequency, which "
              f"rescales every weight, and with them the loss and its gradient, but hardly the balance "
              f"between classes. Off that factor by more than 1.5x: {exceptions}. No variant of the "
              f"definition we tried on this train split (global instead of per-image frequencies, void "
              f"pixels counted or not, 90x120 to full size, the val split added) reproduces those, so "
              f"SegNet-Tutorial's list was computed from other annotations or images than the 367 here."]
    path = os.path.join(folder, "choices.md")
    write_text(path, "\n".join(lines) + "\n")
    return path


def main(argv):
    p = protocol_parser("choices", "class weighting and batch-norm statistics, measured",
                        "folders median/ and none/", "folder for choices.md and choices.json",
                        epochs=40, data_help=None)
    args = parse_protocol(p, argv)
    cli.run_main("experiments", lambda: _choices(args, argv))


def _choices(args, argv):
    cli.apply_precision(args)  # before the device is probed: CuPy reads it at its first product
    cli.writable_folder(args.report)
    cli.writable_folder(args.runs)
    device = resolve_device(args.device)
    scores = {}
    for weighting in WEIGHTINGS:
        run_dir = os.path.join(args.runs, weighting)
        print(f"== class weights: {weighting}", flush=True)
        if trained(run_dir, "segnet-basic", args, class_weighting=weighting):
            print(f"already trained for {args.epochs} epochs in {run_dir}")
        else:
            train_model("segnet-basic", run_dir, args, class_weighting=weighting)
        scores[weighting] = scores_both_ways(run_dir, args.data_dir, device)
    configs = {w: engine.load_run(os.path.join(args.runs, w, "last.npz"))[1] for w in WEIGHTINGS}
    size = tuple(configs["median"].size)
    result = dict(size=list(size), epochs=args.epochs, scores=scores,
                  weights=weights_compared(args.data_dir, size), scored_on=device,
                  trained_on={w: dict(device=c.device, data_dir=c.data_dir) for w, c in configs.items()},
                  protocol=protocol(configs["median"]).replace("median-frequency class weights, ", ""))
    command = "python -m tinysegnet.experiments choices " + " ".join(argv)
    print(f"wrote {write_report(result, command, args.report)}")
