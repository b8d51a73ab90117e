"""Bayesian SegNet's claims, rerun: ``python -m tinysegnet.experiments bayesian --data-dir DIR``.

Trains (or reuses, or continues) SegNet-Basic and Bayesian SegNet-Basic with one protocol
and scores the last epoch of each on the val split (the last, not the best: picking the
best epoch on the split being scored would flatter both):

- SegNet-Basic; Bayesian SegNet-Basic with dropout off ("weight averaging"); Bayesian
  SegNet-Basic with Monte Carlo dropout for each N of ``--samples`` (G, C, mIoU, BF);
- uncertainty against error: the pixel error rate in each decile of uncertainty, the rank
  correlation of the two, uncertainty at boundaries and per class;
- a grid of val images (image, truth, prediction, error, uncertainty);
- inference time per image against N.

Writes ``bayesian.md`` and its pictures into ``--report``, with a reading of the results
against the authors' claims made from the measured numbers.
"""

import os

import numpy as np
from matplotlib.figure import Figure

from .. import cli, engine
from ..backend import resolve_device
from ..cli import non_negative_int, positive_int
from ..data.camvid import CLASSES, VOID
from ..files import atomic_path, write_text
from ..viz import colorize
from .common import inference_ms, parse_protocol, protocol, protocol_parser, train_model, trained

MODELS = ("segnet-basic", "bayesian-segnet-basic")
SAMPLES = (1, 2, 5, 10, 20, 50)


def rank_correlation(a, b):
    """Spearman's rank correlation of two flat arrays: Pearson's on their ranks, tied values
    sharing the average of their ranks (the error is 0 or 1, so almost all values tie)."""
    def ranks(v):
        values, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        return ((ends - counts + 1 + ends) / 2.0)[inverse]  # the average of ranks start..end
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / np.sqrt((ra * ra).sum() * (rb * rb).sum()))


def error_by_decile(uncertainty, error, n=10):
    """Pixel error rate in each of ``n`` equal-count groups of pixels sorted by uncertainty
    (lowest first), and the groups' mean uncertainty."""
    order = np.argsort(uncertainty, kind="stable")
    groups = np.array_split(order, n)
    return [float(error[g].mean()) for g in groups], [float(uncertainty[g].mean()) for g in groups]


def class_edges(labels):
    """(N, H, W) bool: pixels with a 4-neighbour of another class (void counts as a class)."""
    p = np.pad(labels, ((0, 0), (1, 1), (1, 1)), mode="edge")
    centre = p[:, 1:-1, 1:-1]
    return ((centre != p[:, :-2, 1:-1]) | (centre != p[:, 2:, 1:-1]) |
            (centre != p[:, 1:-1, :-2]) | (centre != p[:, 1:-1, 2:]))


def calibration(labels, predictions, uncertainty):
    """Uncertainty against error over the valid (non-void) pixels of a split."""
    valid = labels != VOID
    u, e = uncertainty[valid], (predictions != labels)[valid].astype(np.float64)
    rates, means = error_by_decile(u, e)
    edges = class_edges(labels)
    per_class = [float(uncertainty[labels == k].mean()) if (labels == k).any() else float("nan")
                 for k in range(len(CLASSES))]
    return dict(decile_error=rates, decile_uncertainty=means, spearman=rank_correlation(u, e),
                error_rate=float(e.mean()),
                uncertainty_wrong=float(u[e == 1].mean()), uncertainty_right=float(u[e == 0].mean()),
                uncertainty_boundary=float(uncertainty[valid & edges].mean()),
                uncertainty_interior=float(uncertainty[valid & ~edges].mean()),
                class_uncertainty=per_class)


def _scores(scores):
    return {k: scores[k] for k in ("G", "C", "mIoU", "BF", "class_iou")}


def measure(runs, data_dir, samples, seed, device, batch_size=8):
    """Everything the report shows, computed from the two runs' last checkpoints."""
    plain, plain_config, plain_progress = engine.load_run(os.path.join(runs[0], "last.npz"), device)
    bayes, config, progress = engine.load_run(os.path.join(runs[1], "last.npz"), device)
    split, _ = engine.load_eval_data(config, "val", data_dir)
    size = tuple(config.size)
    rows = {"SegNet-Basic": _scores(engine.evaluate_split(
                plain, split, plain_config.mean, plain_config.std, batch_size, boundary_f1=True)[0]),
            "Bayesian SegNet-Basic, weight averaging": _scores(engine.evaluate_split(
                bayes, split, config.mean, config.std, batch_size, boundary_f1=True)[0])}
    with cli.ProgressBar(len(split), f"Monte Carlo, {max(samples)} samples") as bar:
        estimates = engine.monte_carlo_split(bayes, split, config.mean, config.std, samples, batch_size, seed,
                                             on_batch=bar.to)
    for n in samples:
        rows[f"Bayesian SegNet-Basic, Monte Carlo N = {n}"] = _scores(engine.score_predictions(
            estimates[n][0], split.labels, bayes.config["n_classes"], boundary_f1=True))
    predictions, uncertainty = estimates[max(samples)]
    times = {"SegNet-Basic": inference_ms(plain, size, device),
             "weight averaging": inference_ms(bayes, size, device)}
    for n in samples:
        times[f"N = {n}"] = inference_ms(lambda x, n=n: engine.monte_carlo(bayes, x, n, seed), size, device)
    last = 10
    noise = dict(epochs=last)
    for name, p in zip(MODELS, (plain_progress, progress)):
        values = [100 * r["mIoU"] for r in p["history"][-last:]]
        noise[name] = (float(np.mean(values)), float(np.std(values)))
    origin = [(name, c.device, c.data_dir, p["epoch"])
              for name, c, p in zip(MODELS, (plain_config, config), (plain_progress, progress))]
    if protocol(plain_config) != protocol(config):
        raise cli.Misuse(f"{runs[0]} and {runs[1]} were trained with different protocols "
                         f"({protocol(plain_config)}; {protocol(config)}): one comparison needs one")
    return dict(rows=rows, calibration=calibration(split.labels, predictions, uncertainty),
                protocol=protocol(config),
                times=times, split=split, predictions=predictions, uncertainty=uncertainty,
                epochs=(plain_progress["epoch"], progress["epoch"]), size=size, samples=list(samples),
                device=device, noise=noise, origin=origin)


def _save(fig, path):
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)


def plot_samples(result, path):
    """mIoU against N, with SegNet-Basic and weight averaging as lines."""
    rows, samples = result["rows"], result["samples"]
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    ax.plot(samples, [100 * rows[f"Bayesian SegNet-Basic, Monte Carlo N = {n}"]["mIoU"] for n in samples],
            marker="o", label="Bayesian SegNet-Basic, Monte Carlo")
    ax.axhline(100 * rows["Bayesian SegNet-Basic, weight averaging"]["mIoU"], color="tab:orange",
               linestyle="--", label="Bayesian SegNet-Basic, weight averaging")
    ax.axhline(100 * rows["SegNet-Basic"]["mIoU"], color="tab:green", linestyle=":", label="SegNet-Basic")
    ax.set_xscale("log")
    ax.set_xticks(samples, [str(n) for n in samples])
    ax.set_xlabel("Monte Carlo samples N")
    ax.set_ylabel("val mIoU (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_calibration(result, path):
    """Pixel error rate per uncertainty decile."""
    cal = result["calibration"]
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    ax.bar(range(1, 11), [100 * r for r in cal["decile_error"]])
    ax.axhline(100 * cal["error_rate"], color="black", linestyle=":", label="all pixels")
    ax.set_xticks(range(1, 11))
    ax.set_xlabel("uncertainty decile (1 = the most certain tenth of pixels)")
    ax.set_ylabel("pixel error rate (%)")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_grid(result, path, count=4):
    """Rows of image | truth | prediction | error | uncertainty for evenly spaced val images."""
    split = result["split"]
    shown = np.linspace(0, len(split) - 1, count).astype(int)
    top = float(np.quantile(result["uncertainty"], 0.995))  # one colour scale for every row
    fig = Figure(figsize=(13, 2.2 * count))
    axes = fig.subplots(count, 5, squeeze=False)
    titles = ("image", "ground truth", f"prediction (N = {max(result['samples'])})",
              "error (white; void black)", "uncertainty")
    for row, i in enumerate(shown):
        label, pred = split.labels[i], result["predictions"][i]
        error = np.where(label == VOID, 0, np.where(pred != label, 255, 60)).astype(np.uint8)
        pictures = (split.images[i], colorize(label), colorize(pred), error)
        for ax, picture in zip(axes[row], pictures):
            ax.imshow(picture, cmap="gray", vmin=0, vmax=255)
        shown_u = axes[row, 4].imshow(result["uncertainty"][i], cmap="inferno", vmin=0, vmax=top)
        for ax, title in zip(axes[row], titles):
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title, fontsize=9)
    fig.colorbar(shown_u, ax=axes[:, 4].tolist(), fraction=0.05)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)


def reading(result):
    """The paragraph that reads the numbers against the authors' claims, built from them."""
    rows, samples, cal = result["rows"], result["samples"], result["calibration"]
    miou = lambda name: 100 * rows[name]["mIoU"]
    plain, averaged = miou("SegNet-Basic"), miou("Bayesian SegNet-Basic, weight averaging")
    mc = {n: miou(f"Bayesian SegNet-Basic, Monte Carlo N = {n}") for n in samples}
    best_n = max(mc, key=mc.get)
    beats = [n for n in samples if mc[n] > averaged]
    from_n = next((n for n in samples if all(mc[m] > averaged for m in samples if m >= n)), None)
    noise = result["noise"]
    lines = [f"Epoch-to-epoch noise, for scale: over each run's last {noise['epochs']} epochs the "
             f"val mIoU (dropout off) is {noise['segnet-basic'][0]:.1f} +- {noise['segnet-basic'][1]:.1f} "
             f"for SegNet-Basic and {noise['bayesian-segnet-basic'][0]:.1f} +- "
             f"{noise['bayesian-segnet-basic'][1]:.1f} for Bayesian SegNet-Basic (mean +- standard "
             f"deviation)."]
    if from_n is None:
        where = (f"above it only at N = {', '.join(map(str, beats))}" if beats else "below it at every N tested")
        lines.append(f"**Monte Carlo against weight averaging** (the authors: better once N is "
                     f"beyond about 6): does not hold here. Weight averaging scores {averaged:.1f} "
                     f"mIoU; Monte Carlo reaches {mc[best_n]:.1f} at N = {best_n} and is {where}, "
                     f"converging to it from below as N grows ({mc[samples[0]]:.1f} at N = "
                     f"{samples[0]}).")
    else:
        lines.append(f"**Monte Carlo against weight averaging** (the authors: better once N is "
                     f"beyond about 6): Monte Carlo is above weight averaging ({averaged:.1f} mIoU) "
                     f"from N = {from_n} on, reaching {mc[max(samples)]:.1f} at N = {max(samples)} "
                     f"({mc[max(samples)] - averaged:+.1f}); N = {samples[0]} scores "
                     f"{mc[samples[0]]:.1f}, {mc[samples[0]] - averaged:+.1f} against weight averaging.")
    gain = mc[max(samples)] - plain
    spread = max(noise["segnet-basic"][1], noise["bayesian-segnet-basic"][1])
    verdict = ("holds here" if gain >= 2 else
               "does not hold here: the difference is within the epoch-to-epoch noise"
               if abs(gain) <= 2 * spread else "holds in part here" if gain > 0 else "does not hold here")
    bayes, base = rows[f"Bayesian SegNet-Basic, Monte Carlo N = {max(samples)}"], rows["SegNet-Basic"]
    balance = ("Dropout moves the balance between classes instead: class"
               if bayes["C"] > base["C"] and bayes["G"] < base["G"] else "Class")
    lines.append(f"**Against the same network without dropout** (the authors: 2-3 points better): "
                 f"{verdict}. Monte Carlo with N = {max(samples)} scores {mc[max(samples)]:.1f} mIoU "
                 f"against SegNet-Basic's {plain:.1f} ({gain:+.1f}). {balance} average accuracy C "
                 f"{100 * bayes['C']:.1f} against {100 * base['C']:.1f}, global accuracy G "
                 f"{100 * bayes['G']:.1f} against {100 * base['G']:.1f}.")
    lines.append("The authors' figures come from networks trained at 360x480; these are trained at "
                 "a sixteenth of the pixels, where the 0.75% BF tolerance is about one pixel, and for "
                 "the epochs stated above: read the comparisons at this scale only.")
    ratio = cal["uncertainty_boundary"] / cal["uncertainty_interior"]
    order = np.argsort(cal["class_uncertainty"])[::-1]
    lines.append(f"**Where the model is uncertain** (the authors: at class boundaries and on rare "
                 f"or ambiguous objects): at ground-truth boundaries the mean uncertainty is "
                 f"{ratio:.1f}x that of the interiors; the most uncertain classes are "
                 f"{', '.join(CLASSES[k] for k in order[:3])}, the least "
                 f"{', '.join(CLASSES[k] for k in order[-3:])}. Wrong pixels carry "
                 f"{cal['uncertainty_wrong'] / cal['uncertainty_right']:.1f}x the uncertainty of right "
                 f"ones; the error rate climbs from {100 * cal['decile_error'][0]:.1f}% in the most "
                 f"certain decile to {100 * cal['decile_error'][-1]:.1f}% in the least "
                 f"(rank correlation {cal['spearman']:.2f}).")
    return lines


def write_report(result, command, folder):
    os.makedirs(folder, exist_ok=True)
    plot_samples(result, os.path.join(folder, "bayesian_samples.png"))
    plot_calibration(result, os.path.join(folder, "bayesian_calibration.png"))
    plot_grid(result, os.path.join(folder, "bayesian_examples.png"))
    rows, cal = result["rows"], result["calibration"]
    h, w = result["size"]
    lines = ["# Bayesian SegNet-Basic on CamVid, rerun with tinysegnet", "",
             f"Command: `{command}`", "",
             f"Both networks trained with one protocol ({result['protocol']}) for "
             f"{result['epochs'][0]} and {result['epochs'][1]} epochs; "
             f"the last epoch of each is scored on the val split at {h}x{w} (BF's tolerance 0.75% "
             f"of the diagonal). Monte Carlo estimates for every N come from one stream of "
             f"{max(result['samples'])} passes per batch, seeded.", "",
             "The runs, as their checkpoints record them: " + "; ".join(
                 f"{name}, {epochs} epochs on device {dev} from {data}" for name, dev, data, epochs in result["origin"])
             + ". Scoring and timing ran on device " + result["device"] + ".", "",
             "| model | G | C | mIoU | BF |", "|---|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {100 * r['G']:.1f} | {100 * r['C']:.1f} | {100 * r['mIoU']:.1f} | "
                     f"{100 * r['BF']:.1f} |")
    lines += ["", "![mIoU against N](bayesian_samples.png)", "", "## Reading against the authors' claims", ""]
    lines += [line + "\n" for line in reading(result)]
    lines += ["## Uncertainty against error", "",
              f"Over the val split's valid pixels, with N = {max(result['samples'])}: Spearman rank "
              f"correlation of uncertainty and error {cal['spearman']:.3f}.", "",
              "| uncertainty decile | " + " | ".join(str(i) for i in range(1, 11)) + " |",
              "|---|" + "---:|" * 10,
              "| mean uncertainty | " + " | ".join(f"{u:.4f}" for u in cal["decile_uncertainty"]) + " |",
              "| pixel error rate (%) | " + " | ".join(f"{100 * e:.1f}" for e in cal["decile_error"]) + " |",
              "", "![error per uncertainty decile](bayesian_calibration.png)", "",
              "| class | " + " | ".join(CLASSES) + " |", "|---|" + "---:|" * len(CLASSES),
              "| mean uncertainty | " + " | ".join(f"{u:.4f}" for u in cal["class_uncertainty"]) + " |",
              "| IoU, Monte Carlo (%) | " + " | ".join(f"{100 * v:.1f}" for v in rows[
                  f"Bayesian SegNet-Basic, Monte Carlo N = {max(result['samples'])}"]["class_iou"]) + " |",
              "", "![val images: image, truth, prediction, error, uncertainty](bayesian_examples.png)", "",
              f"## Inference time per image ({h}x{w}, batch 1, device {result['device']})", "",
              "| | " + " | ".join(result["times"]) + " |", "|---|" + "---:|" * len(result["times"]),
              "| ms | " + " | ".join(f"{t:.0f}" for t in result["times"].values()) + " |", "",
              "Monte Carlo dropout costs N forward passes: its time grows linearly in N."]
    path = os.path.join(folder, "bayesian.md")
    write_text(path, "\n".join(lines) + "\n")
    return path


def main(argv):
    p = protocol_parser("bayesian", "SegNet-Basic against Bayesian SegNet-Basic, one protocol",
                        "one run folder per model", "folder for bayesian.md and its pictures",
                        epochs=40, data_help="CamVid (default: the synthetic set)")
    p.add_argument("--samples", type=positive_int, nargs="+", default=list(SAMPLES),
                   help="the Monte Carlo sample counts to score (default 1 2 5 10 20 50)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the Monte Carlo masks")
    args = parse_protocol(p, argv)
    args.samples = sorted(set(args.samples))
    cli.run_main("experiments", lambda: _bayesian(args, argv))


def _bayesian(args, argv):
    cli.apply_precision(args)  # before the device is probed: CuPy reads it at its first product
    cli.writable_folder(args.report)
    cli.writable_folder(args.runs)
    runs = [os.path.join(args.runs, name) for name in MODELS]
    for name, run_dir in zip(MODELS, runs):
        print(f"== {name}", flush=True)
        if trained(run_dir, name, args):
            print(f"already trained for {args.epochs} epochs in {run_dir}")
        else:
            train_model(name, run_dir, args)
    print("== scoring on the val split", flush=True)
    result = measure(runs, args.data_dir, args.samples, args.seed, resolve_device(args.device))
    command = "python -m tinysegnet.experiments bayesian " + " ".join(argv)
    print(f"wrote {write_report(result, command, args.report)}")
