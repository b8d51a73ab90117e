"""The user's job timed: one training epoch and one validation pass at the README's CamVid
protocol (90x120, batch 12, SGD with momentum and weight decay, median-frequency weights,
flips, standardised inputs), ours through ``engine.train_epoch`` and ``engine.evaluate_split``,
the PyTorch twin through the same loop written in PyTorch: the same images, the same
shuffles and flips, the same loss (a weighted sum over valid pixels over their count).

The two alternate in one process, ``repeat`` times, and each figure is the median; with
``load`` > 0 that many other processes keep a core busy each meanwhile (a shared machine).
"""

import dataclasses
import multiprocessing
import signal
import time

import numpy as np

from .. import engine, threads
from ..data import transforms
from ..data.camvid import CLASSES, VOID
from ..data.split import Split
from ..data.transforms import standardize
from ..engine import score_predictions
from ..interop.torch import require_torch, torch_model

PROTOCOL = dict(size=(90, 120), batch_size=12)


def _subset(split, n):
    n = min(n, len(split))
    return Split(split.images[:n], split.labels[:n], split.names[:n])


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _torch_train_epoch(net, optimizer, split, config, rng, weights, torch):
    """The PyTorch twin through ``engine.train_epoch``'s loop: same batches, flips, loss."""
    net.train()
    for index in transforms.batches(len(split), config.batch_size, rng):
        images, labels = split.images[index], split.labels[index]
        if config.flip:
            images, labels = transforms.random_flip(images, labels, rng)
        x = torch.from_numpy(standardize(images, config.mean, config.std))
        y = torch.from_numpy(labels.astype(np.int64))
        loss = torch.nn.functional.cross_entropy(net(x), y, weight=weights, ignore_index=VOID,
                                                 reduction="sum") / (y != VOID).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # read once a step, as ours is


def _torch_evaluate(net, split, config, torch):
    net.eval()
    predictions = []
    with torch.no_grad():
        for index in transforms.batches(len(split), config.batch_size):
            logits = net(torch.from_numpy(standardize(split.images[index], config.mean, config.std)))
            predictions.append(logits.argmax(dim=1).numpy().astype(np.uint8))
    return score_predictions(np.concatenate(predictions), split.labels, len(CLASSES))


def _spin():
    """Keep a core busy until terminated. Forked from a command that turns SIGTERM into
    KeyboardInterrupt (``cli.run_main``), so it takes the default action back: ended quietly,
    not with a traceback in the user's output."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        pass


def measure(data_dir=None, model="segnet-basic", train_images=48, val_images=24, repeat=3,
            vs_torch=True, load=0, device="cpu", blas_threads=None):
    """{"ours": {"train": s/img, "val": s/img}, "torch": {...}} medians over ``repeat``
    alternations, on the first ``train_images`` and ``val_images`` of the splits. Ours runs
    with ``blas_threads`` as ``train --threads`` takes it (set again before each of our
    passes); PyTorch with its own threads, as shipped."""
    config = engine.RunConfig.for_data(data_dir, model=model, device=device, **PROTOCOL)
    run = engine.start(config, out_dir=None)  # nothing is written: start only builds
    run.train_split, run.val_split = _subset(run.train_split, train_images), _subset(run.val_split, val_images)
    times = {"ours": {"train": [], "val": []}, "torch": {"train": [], "val": []}}
    if vs_torch:
        torch = require_torch()
        net = torch_model(model)
        optimizer = torch.optim.SGD(net.parameters(), lr=run.config.lr, momentum=run.config.momentum,
                                    weight_decay=run.config.weight_decay)
        weights = torch.tensor(run.config.class_weights, dtype=torch.float32)
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(load)]
    for p in spinners:
        p.start()
    counts_set = []
    try:
        with threads.blas_threads(blas_threads) as adjust:
            for _ in range(repeat):
                run.rng = np.random.default_rng(run.config.seed)
                counts_set.append(adjust())
                times["ours"]["train"].append(_seconds(lambda: engine.train_epoch(run)))
                times["ours"]["val"].append(_seconds(lambda: engine.evaluate_split(
                    run.model, run.val_split, run.config.mean, run.config.std, run.config.batch_size)))
                if vs_torch:
                    rng = np.random.default_rng(run.config.seed)
                    times["torch"]["train"].append(_seconds(lambda: _torch_train_epoch(
                        net, optimizer, run.train_split, run.config, rng, weights, torch)))
                    times["torch"]["val"].append(_seconds(lambda: _torch_evaluate(
                        net, run.val_split, run.config, torch)))
    finally:
        for p in spinners:
            p.terminate()
            p.join()
    counts = {"train": len(run.train_split), "val": len(run.val_split)}
    medians = {who: {part: float(np.median(t)) / counts[part] for part, t in parts.items() if t}
               for who, parts in times.items() if parts["train"]}
    return medians, counts, dataclasses.asdict(run.config), counts_set


def report(data_dir=None, model="segnet-basic", train_images=48, val_images=24, repeat=3,
           vs_torch=True, load=0, device="cpu", blas_threads=None):
    result, counts, config, counts_set = measure(data_dir, model, train_images, val_images, repeat,
                                                 vs_torch, load, device, blas_threads)
    threads_said = ("" if blas_threads is None else
                    f", our BLAS threads {blas_threads} ({', '.join(str(n) for n in counts_set)})")
    print(f"{model} on {data_dir or 'the synthetic set'} at {config['size'][0]}x{config['size'][1]}, "
          f"batch {config['batch_size']}: {counts['train']} train + {counts['val']} val images, "
          f"{repeat} alternations (medians), device {device}"
          f"{f', {load} other process(es) keeping a core busy' if load else ''}{threads_said}")
    print(f"{'':<8} {'train ms/img':>12} {'val ms/img':>10} {'epoch s':>8}")
    epoch = {}
    for who, r in result.items():
        epoch[who] = r["train"] * counts["train"] + r["val"] * counts["val"]
        print(f"{who:<8} {1000 * r['train']:12.1f} {1000 * r['val']:10.1f} {epoch[who]:8.2f}")
    if "torch" in result:
        o, t = result["ours"], result["torch"]
        print(f"{'ratio':<8} {o['train'] / t['train']:12.2f} {o['val'] / t['val']:10.2f} "
              f"{epoch['ours'] / epoch['torch']:8.2f}   (ours / PyTorch: below 1 is faster)")
    return result
