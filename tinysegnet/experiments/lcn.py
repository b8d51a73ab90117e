"""Local contrast normalisation against standardisation, measured on two runs of one protocol:
``python -m tinysegnet.experiments lcn --runs STANDARDISED LCN --data-dir CAMVID --report docs``.

Each run's best checkpoint is scored on the val split (G, C, mIoU, BF, per-class IoU), and
their histories are compared at equal epochs (both runs' best within the epochs both reached),
so a run stopped early is still compared fairly. The report says how far the runs went and
which protocol each followed, read from their checkpoints; whether the difference is beyond the
epoch-to-epoch noise is judged against the spread of each run's own last ten epochs.
"""

import os

import numpy as np

from .. import checkpoint, cli
from ..engine.config import read_meta
from ..data.classes import config_classes
from .common import protocol, score_best, write_report_files


def _score(run_dir, data_dir):
    _, config, progress, scores, history, val = score_best(run_dir, data_dir)
    return config, progress, scores, [r["mIoU"] for r in history], val


def measure(runs, data_dir):
    for name, run_dir in zip(("standardize", "lcn"), runs):  # before any scoring
        path = os.path.join(run_dir, "best.npz")
        norm = read_meta(checkpoint.load_meta(path), path)[0].input_norm
        if norm != name:
            raise cli.Misuse(f"{run_dir} holds a run with --input-norm {norm}, not {name}: give the "
                             f"standardised run first, then the LCN one")
    out = {}
    for name, run_dir in zip(("standardize", "lcn"), runs):
        config, progress, scores, curve, val = _score(run_dir, data_dir)
        out[name] = dict(run=run_dir, protocol=protocol(config), epochs=len(curve), best_epoch=progress["epoch"],
                         scores={k: scores[k] for k in ("G", "C", "mIoU", "BF", "class_iou")}, curve=curve,
                         classes=list(config_classes(config).names), val_names=list(val.names))
    both = min(out["standardize"]["epochs"], out["lcn"]["epochs"])
    for name in out:
        curve = out[name]["curve"][:both]
        out[name]["best_within_common"] = max(curve)
        out[name]["best_epoch_within_common"] = int(np.argmax(curve)) + 1
        tail = curve[-10:]
        out[name]["last_ten"] = [min(tail), max(tail)]
    out["common_epochs"] = both
    return out


def write_report(result, command, folder):
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}"
    s, n = result["standardize"], result["lcn"]
    classes = s["classes"]
    lines = ["# Local contrast normalisation against standardisation", "", f"Made by `{command}`.", "",
             f"SegNet-Basic, the same protocol but for the inputs ({s['protocol']}): standardised with the "
             f"training set's per-channel mean and deviation, or locally contrast-normalised "
             f"(`tinysegnet/data/lcn.py`: a 9x9 Gaussian window, sigma 2, the image's mean local deviation "
             f"as floor). The standardised run trained {s['epochs']} epochs, the LCN run {n['epochs']}.", "",
             "| inputs | epochs | best epoch | G | C | mIoU | BF | " + " | ".join(classes) + " |",
             "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(classes)]
    for label, r in (("standardised", s), ("LCN", n)):
        sc = r["scores"]
        lines.append(f"| {label} | {r['epochs']} | {r['best_epoch']} | {pct(sc['G'])} | {pct(sc['C'])} | "
                     f"{pct(sc['mIoU'])} | {pct(sc['BF'])} | " + " | ".join(pct(v) for v in sc["class_iou"]) + " |")
    both = result["common_epochs"]
    diff = 100 * (n["best_within_common"] - s["best_within_common"])
    spread = max(100 * (s["last_ten"][1] - s["last_ten"][0]), 100 * (n["last_ten"][1] - n["last_ten"][0]))
    verdict = ("within the epoch-to-epoch noise" if abs(diff) <= spread else
               ("better" if diff > 0 else "worse") + ", beyond the epoch-to-epoch noise")
    lines += ["", "Per-class columns are val IoU (%) of each run's best checkpoint.", "",
              f"Within the {both} epochs both reached, the best val mIoU is {pct(s['best_within_common'])} "
              f"(epoch {s['best_epoch_within_common']}) standardised and {pct(n['best_within_common'])} "
              f"(epoch {n['best_epoch_within_common']}) with LCN: {diff:+.1f} points. Over each run's last ten "
              f"of those epochs val mIoU moved by up to {spread:.1f} points, so LCN reads as **{verdict}** here.", "",
              "The paper's reason for LCN is robustness to illumination. CamVid's val split here is "
              f"{len(set(v[:6] for v in s['val_names']))} daytime sequence "
              f"({', '.join(sorted(set(v[:6] for v in s['val_names'])))}): it holds no dusk or night images "
              "(the dusk sequence 0001TP is in the train split), so that claim is not measured by this split."]
    return write_report_files(folder, "lcn", lines, result)


def main(argv):
    p = cli.ArgumentParser(prog="python -m tinysegnet.experiments lcn", description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs=2, required=True, metavar=("STANDARDISED", "LCN"),
                   help="two run folders of one protocol: --input-norm standardize, then lcn")
    p.add_argument("--data-dir", type=cli.folder_name, help="the runs' data, if it has moved")
    p.add_argument("--report", required=True, help="folder for lcn.md and lcn.json")
    args = p.parse_args(argv)
    cli.run_main("experiments", lambda: _lcn(args, argv))


def _lcn(args, argv):
    cli.writable_folder(args.report)
    result = measure(args.runs, args.data_dir)
    os.makedirs(args.report, exist_ok=True)
    print(f"wrote {write_report(result, 'python -m tinysegnet.experiments lcn ' + ' '.join(argv), args.report)}")

