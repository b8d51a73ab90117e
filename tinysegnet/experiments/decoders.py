"""The paper's decoder comparison (its Table 1), rerun: ``python -m tinysegnet.experiments decoders``.

Trains SegNet-Basic and every decoder variant of ``tinysegnet.models.decoders`` with the
same protocol, then writes a markdown table and a plot: parameters, the storage
multiplier (bytes each decoder keeps from the encoder, relative to SegNet-Basic's
indices packed at 2 bits, as the paper counts), inference time, and val G, C, mIoU, BF
of each variant's best checkpoint.
"""

import os

from matplotlib.figure import Figure

from .. import cli, engine
from ..backend import resolve_device
from ..files import atomic_path, write_text
from ..models import VARIANTS, build
from ..models.decoders import storage_multiplier
from .common import inference_ms, parse_protocol, protocol, protocol_parser, train_model, trained

ORDER = ("segnet-basic",) + VARIANTS


def measure(variant, run_dir, device):
    """The table row of a trained variant: its best checkpoint scored on the val split."""
    model, config, progress = engine.load_run(os.path.join(run_dir, "best.npz"), device)
    split, _ = engine.load_eval_data(config, "val")
    with cli.ProgressBar(len(split), f"{variant}, val split") as bar:
        scores, _ = engine.evaluate_split(model, split, config.mean, config.std, 8, boundary_f1=True, on_batch=bar.to)
    return dict(variant=variant, parameters=model.num_parameters(),
                storage=storage_multiplier(model, tuple(config.size)),
                ms=inference_ms(model, config.size, device), epoch=progress["best_epoch"],
                protocol=protocol(config),
                **{k: scores[k] for k in ("G", "C", "mIoU", "BF")})


def write_report(rows, command, folder):
    os.makedirs(folder, exist_ok=True)
    lines = ["# Decoder variants (the SegNet paper's Table 1), rerun with tinysegnet", "",
             f"Command: `{command}`", "",
             "| variant | parameters | storage multiplier | inference ms | best epoch | G | C | mIoU | BF |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.get("diverged"):
            lines.append(f"| {r['variant']} | {r['parameters']:,} | {r['storage']:.0f} | - | - | "
                         f"diverged: {r['diverged']} | | | |")
            continue
        lines.append(f"| {r['variant']} | {r['parameters']:,} | {r['storage']:.0f} | {r['ms']:.0f} | "
                     f"{r['epoch']} | {100 * r['G']:.1f} | {100 * r['C']:.1f} | "
                     f"{100 * r['mIoU']:.1f} | {100 * r['BF']:.1f} |")
    protocols = sorted({r["protocol"] for r in rows if "protocol" in r})
    lines += ["", "Trained with " + ("; ".join(protocols) if protocols else "no finished run") + ".",
              "", "Storage multiplier: bytes kept from the encoder for the decoder, relative to "
              "SegNet-Basic's pooling indices at 2 bits each. Scores are on the validation split "
              "at the training size, for each variant's best epoch (by val mIoU)."]
    path = os.path.join(folder, "decoders.md")
    write_text(path, "\n".join(lines) + "\n")

    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    names = [r["variant"] for r in rows]
    left.barh(names, [100 * r.get("mIoU", 0) for r in rows])
    left.set_xlabel("val mIoU (%)")
    left.invert_yaxis()
    right.barh(names, [r["storage"] for r in rows], color="tab:orange")
    right.set_xlabel("storage multiplier (x SegNet-Basic's 2-bit indices)")
    right.invert_yaxis()
    right.set_yticklabels([])
    fig.tight_layout()
    with atomic_path(os.path.join(folder, "decoders.png")) as tmp:
        fig.savefig(tmp, dpi=100)
    return path


def main(argv):
    p = protocol_parser("decoders", "train every decoder variant with one protocol",
                        "one run folder per variant", "folder for decoders.md and decoders.png",
                        epochs=5, data_help="CamVid (default: the synthetic set)")
    p.add_argument("--variants", nargs="+", default=list(ORDER), choices=ORDER)
    args = parse_protocol(p, argv)
    cli.run_main("experiments", lambda: _decoders(args, argv))


def _decoders(args, argv):
    cli.apply_precision(args)  # before the device is probed: CuPy reads it at its first product
    cli.writable_folder(args.report)
    cli.writable_folder(args.runs)
    rows = []
    for variant in args.variants:
        run_dir = os.path.join(args.runs, variant)
        print(f"== {variant}", flush=True)
        reason = f"no epoch of it finished in {run_dir}"
        if trained(run_dir, variant, args):
            print(f"already trained for {args.epochs} epochs in {run_dir}")
        else:
            try:
                train_model(variant, run_dir, args)
            except engine.Diverged as e:  # a diverged variant is a row of the table, with why
                print(f"{variant}: {e}")
                reason = str(e)
        if os.path.exists(os.path.join(run_dir, "best.npz")):
            rows.append(measure(variant, run_dir, resolve_device(args.device)))
        else:
            model = build(variant)
            rows.append(dict(variant=variant, parameters=model.num_parameters(), diverged=reason,
                             storage=storage_multiplier(model, tuple(args.size or (90, 120)))))
    command = "python -m tinysegnet.experiments decoders " + " ".join(argv)
    print(f"wrote {write_report(rows, command, args.report)}")


