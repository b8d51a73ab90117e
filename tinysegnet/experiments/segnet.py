"""The paper's SegNet (VGG16) against SegNet-Basic, measured on runs of one protocol:
``python -m tinysegnet.experiments segnet --runs BASIC SEGNET [SEGNET ...] --data-dir CAMVID --report docs``.

Each run's best checkpoint is scored on the val split (G, C, mIoU, BF, per-class IoU). Runs
that trained different numbers of epochs are also compared at equal epochs (each run's best
within the epochs all of them reached), and each run's time per epoch is the median its own
history recorded. Every run must follow the first one's protocol (data, size, batch size,
optimiser, class weights, flips, input normalisation): only the model and the encoder's
initialisation may differ. The report says how far each went, from its checkpoints.
"""

import os
import statistics

from .. import checkpoint, cli
from ..data.classes import config_classes
from ..engine.config import read_meta
from .common import protocol, score_best, write_report_files

# What every compared run must share with the first (RunConfig fields).
SAME = ("data_dir", "size", "batch_size", "lr", "momentum", "weight_decay", "class_weighting", "flip",
        "input_norm", "seed")


def _value(config, key):
    value = getattr(config, key)
    return tuple(value) if isinstance(value, list) else value


def check_runs(runs):
    """The runs' RunConfigs, read from their best checkpoints before anything is scored: the
    first SegNet-Basic, the others SegNet, all of one protocol (else one line, exit 2)."""
    configs = []
    for run_dir in runs:
        path = os.path.join(run_dir, "best.npz")
        if not os.path.isfile(path):
            raise cli.Misuse(f"{run_dir} holds no best.npz: give run folders that "
                             f"python -m tinysegnet.train wrote")
        configs.append(read_meta(checkpoint.load_meta(path), path)[0])
    wanted = ["segnet-basic"] + ["segnet"] * (len(runs) - 1)
    for run_dir, config, model in zip(runs, configs, wanted):
        if config.model != model:
            raise cli.Misuse(f"{run_dir} holds a {config.model} run, not {model}: give the "
                             f"SegNet-Basic run first, then SegNet runs")
        for key in SAME:
            if _value(config, key) != _value(configs[0], key):
                raise cli.Misuse(f"{run_dir} was trained with {key.replace('_', ' ')} "
                                 f"{_value(config, key)}, {runs[0]} with {_value(configs[0], key)}: "
                                 f"the runs must share one protocol")
    return configs


def measure(runs, data_dir):
    check_runs(runs)
    out = []
    for run_dir in runs:
        model, config, progress, scores, history, _ = score_best(run_dir, data_dir)
        out.append(dict(
            run=run_dir, model=config.model, encoder_weights=config.encoder_weights,
            parameters=sum(p.data.size for p in model.parameters()), protocol=protocol(config),
            epochs=len(history), best_epoch=progress["epoch"],
            train_seconds=statistics.median(r["seconds"] for r in history),
            scores={k: scores[k] for k in ("G", "C", "mIoU", "BF", "class_iou")},
            curve=[r["mIoU"] for r in history], classes=list(config_classes(config).names)))
    common = min(r["epochs"] for r in out)
    for r in out:
        within = r["curve"][:common]
        r["best_within_common"] = max(within)
        r["best_epoch_within_common"] = within.index(max(within)) + 1
        r["last_ten_within_common"] = [min(within[-10:]), max(within[-10:])]
    return dict(runs=out, common_epochs=common)


def _label(r):
    if r["model"] == "segnet-basic":
        return "SegNet-Basic"
    return "SegNet, " + ("VGG16 encoder from " + os.path.basename(r["encoder_weights"])
                         if r["encoder_weights"] else "from scratch")


def write_report(result, command, folder):
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}"
    runs = result["runs"]
    classes = runs[0]["classes"]
    lines = ["# SegNet (VGG16) against SegNet-Basic on CamVid", "", f"Made by `{command}`.", "",
             f"One protocol for every run ({runs[0]['protocol']}); scores are val's, at the training size, "
             f"from each run's best checkpoint (best val mIoU). Per-class columns are val IoU (%).", "",
             "| model | parameters | epochs | best epoch | train s/epoch | G | C | mIoU | BF | "
             + " | ".join(classes) + " |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(classes)]
    for r in runs:
        sc = r["scores"]
        lines.append(f"| {_label(r)} | {r['parameters']:,} | {r['epochs']} | {r['best_epoch']} | "
                     f"{r['train_seconds']:.0f} | {pct(sc['G'])} | {pct(sc['C'])} | {pct(sc['mIoU'])} | "
                     f"{pct(sc['BF'])} | " + " | ".join(pct(v) for v in sc["class_iou"]) + " |")
    common = result["common_epochs"]
    spread = max(100 * (r["last_ten_within_common"][1] - r["last_ten_within_common"][0]) for r in runs)
    lines += ["", f"At equal epochs (the first {common}, which every run reached), the best val mIoU was: "
              + "; ".join(f"{_label(r)} {pct(r['best_within_common'])} (epoch {r['best_epoch_within_common']})"
                          for r in runs) + ".", "",
              f"Over each run's last ten of those epochs val mIoU spanned up to {spread:.1f} points (lowest to "
              f"highest), so a difference smaller than that is within the epoch-to-epoch noise.", "",
              "Train s/epoch is the median of the training times each run's history recorded (the "
              "validation pass not included), on the machine and under the load it ran with."]
    if any(r["model"] == "segnet" and not r["encoder_weights"] for r in runs):
        lines += ["", "SegNet from scratch is not the paper's start: its encoder begins from VGG16's ImageNet "
                      "weights, which `train --model segnet --encoder-weights VGG16.pth` takes from a torchvision "
                      "state_dict where one can be downloaded."]
    return write_report_files(folder, "segnet_camvid", lines, result)


def main(argv):
    p = cli.ArgumentParser(prog="python -m tinysegnet.experiments segnet", description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="+", required=True, metavar="RUN",
                   help="run folders of one protocol: the SegNet-Basic run, then one or more SegNet runs")
    p.add_argument("--data-dir", type=cli.folder_name, help="the runs' data, if it has moved")
    p.add_argument("--report", required=True, help="folder for segnet_camvid.md and segnet_camvid.json")
    args = p.parse_args(argv)
    if len(args.runs) < 2:
        p.error("--runs needs the SegNet-Basic run and at least one SegNet run")
    cli.run_main("experiments", lambda: _segnet(args, argv))


def _segnet(args, argv):
    cli.writable_folder(args.report)
    result = measure(args.runs, args.data_dir)
    os.makedirs(args.report, exist_ok=True)
    print(f"wrote {write_report(result, 'python -m tinysegnet.experiments segnet ' + ' '.join(argv), args.report)}")
