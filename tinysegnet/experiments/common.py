"""What the experiments share: training one model of a comparison with the shared protocol,
knowing when a run can be reused, and timing inference."""

import os

import numpy as np

from .. import engine
from ..backend import array_module, to_device
from ..timing import timeit


def inference_ms(fn_or_model, size, device, repeat=3):
    """Median milliseconds of one forward pass of a single random image of ``size`` (H, W),
    the device synchronised: ``fn_or_model`` is a model (timed in eval mode) or a function of
    the input batch (1, 3, H, W)."""
    x = to_device(np.random.default_rng(0).standard_normal((1, 3) + tuple(size), dtype=np.float32),
                  device)
    fn = fn_or_model.eval().forward if hasattr(fn_or_model, "forward") else fn_or_model
    return 1000 * timeit(lambda: fn(x), array_module(device), repeat=repeat)


def trained(run_dir, epochs):
    """True when ``run_dir`` holds a run that has finished ``epochs`` epochs."""
    path = os.path.join(run_dir, "last.npz")
    return os.path.exists(path) and engine.load_run(path)[2]["epoch"] >= epochs


def train_model(model_name, run_dir, args):
    """Train ``model_name`` into ``run_dir`` with the protocol in ``args`` (data_dir, size,
    epochs, batch_size, device), or continue the run there up to ``args.epochs``. Prints one
    line per epoch; raises engine.Diverged when the run diverges."""
    config = engine.RunConfig.for_data(os.path.abspath(args.data_dir) if args.data_dir else None,
                                       model=model_name, size=tuple(args.size) if args.size else None,
                                       epochs=args.epochs, batch_size=args.batch_size,
                                       device=args.device)
    last = os.path.join(run_dir, "last.npz")
    run = (engine.restore(last, epochs=args.epochs, device=args.device) if os.path.exists(last)
           else engine.start(config, run_dir))
    engine.fit(run, on_epoch=lambda run, r, best: print(
        f"epoch {r['epoch']:3d}  loss {r['loss']:.4f}  val mIoU {100 * r['mIoU']:.1f}", flush=True))
