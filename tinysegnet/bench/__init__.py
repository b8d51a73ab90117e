"""Benchmarks: ``python -m tinysegnet.bench epoch | layers | model | launches | monte-carlo``.

``epoch`` times the user's job: a training epoch and a validation pass at the README's
CamVid protocol, ours against the PyTorch twin through the same loop (:mod:`.epoch`).

``layers`` times each layer's forward and backward at SegNet-Basic's shapes (batch 4,
64 channels, 90x120, 7x7 kernels) and sets the fast convolution's GFLOP/s beside the
plain matrix-product rate of the same array module.

``model`` times a SegNet-Basic training step (forward, loss, backward, SGD update) and
an inference forward at several sizes, and SegNet; ``--vs-torch`` times the same networks
in PyTorch in the same run, each of their runs in turn with ours (``timing.alternating``).
It also reports peak memory (NumPy's on the CPU, the GPU's on a GPU) and the bytes the
decoder keeps from the encoder. The rows differ by device: a GPU
gets the paper's full 360x480 and the CamVid protocol's batch of 12.

``monte-carlo`` times Bayesian SegNet-Basic's Monte Carlo dropout inference per image for
N = 1 ... 50 samples at 90x120 and 360x480, beside the single deterministic pass.

``launches`` counts, through the strict CuPy stand-in, the array operations (each a kernel
launch or more on a GPU) and host synchronisations of one training step and one inference
forward of every model: on a GPU these, not the arithmetic, bound small layers.

Each figure is the median of ``--repeat`` runs after warm-up runs (two for the models: the
first steps of a fresh model run up to 30% slower while memory is first touched).
"""

import contextlib
import tracemalloc

import numpy as np

from .. import cli, engine, nn
from .. import functional as F
from ..backend import array_module, resolve_device
from ..cli import positive_int
from ..functional import conv, scratch
from ..interop.torch import torch_model
from ..models import MODELS, DecoderVariant, build, draws_dropout
from ..models.segnet_basic import unpooling_indices
from ..optim import SGD
from ..timing import alternating, synchronize, timeit
from . import epoch

MODEL_ROWS = {"cpu": [("segnet-basic", 12, 90, 120), ("segnet-basic", 4, 90, 120), ("segnet-basic", 4, 180, 240),
                      ("segnet-basic", 1, 360, 480), ("segnet", 1, 180, 240)],
              "gpu": [("segnet-basic", 12, 90, 120), ("segnet-basic", 4, 360, 480),
                      ("segnet-basic", 1, 360, 480), ("segnet", 4, 360, 480)]}
# Training steps counted by ``launches``: SegNet-Basic's family at the CamVid protocol, SegNet
# at the batch that fits the same memory.
LAUNCH_ROWS = {"segnet": (2, 90, 120), "bayesian-segnet": (2, 90, 120)}
LAUNCH_DEFAULT = (12, 90, 120)


def matmul_rate(xp, repeat):
    """GFLOP/s of one float32 product of the size a 7x7x64 convolution reduces to."""
    rng = np.random.default_rng(0)
    a = xp.asarray(rng.standard_normal((448, 448), dtype=np.float32))
    b = xp.asarray(rng.standard_normal((448, 12096), dtype=np.float32))
    seconds = timeit(lambda: a @ b, xp, repeat=repeat)
    return 2 * 448 * 448 * 12096 / seconds / 1e9


def bench_layers(device, repeat):
    xp = array_module(device)
    rng = np.random.default_rng(0)
    N, C, H, W, k = 4, 64, 90, 120, 7

    def arr(*shape):
        return xp.asarray(rng.standard_normal(shape, dtype=np.float32))

    x, w, dout = arr(N, C, H, W), arr(C, C, k, k), arr(N, C, H, W)
    gamma, beta, rm, rv = arr(C), arr(C), xp.zeros(C, np.float32), xp.ones(C, np.float32)
    logits, labels = arr(N, 11, H, W), xp.asarray(rng.integers(0, 12, (N, H, W)))
    pooled, idx = F.maxpool2x2_forward(x)
    conv_cache = F.conv2d_forward(x, w)[1]
    bn_cache = F.batchnorm2d_forward(x, gamma, beta, rm, rv, True)[1]
    relu_cache = F.relu_forward(x)[1]
    rows = [
        ("conv 7x7 64->64", lambda: F.conv2d_forward(x, w), lambda: F.conv2d_backward(dout, conv_cache),
         2 * N * C * C * k * k * H * W),
        ("batchnorm (train)", lambda: F.batchnorm2d_forward(x, gamma, beta, rm, rv, True),
         lambda: F.batchnorm2d_backward(dout, bn_cache), None),
        ("relu", lambda: F.relu_forward(x), lambda: F.relu_backward(dout, relu_cache), None),
        ("maxpool 2x2", lambda: F.maxpool2x2_forward(x),
         lambda: F.maxpool2x2_backward(pooled, idx, x.shape), None),
        ("unpool 2x2", lambda: F.unpool2x2_forward(pooled, idx, (H, W)),
         lambda: F.unpool2x2_backward(dout, idx), None),
        ("softmax cross-entropy (fwd+bwd)", lambda: F.softmax_cross_entropy(logits, labels, None, 11),
         None, None),
    ]
    print(f"layers at batch {N}, {C} channels, {H}x{W}, {k}x{k} kernels, float32, device {device}")
    print(f"{'layer':<32} {'forward ms':>10} {'backward ms':>11} {'fwd GFLOP/s':>11} {'bwd GFLOP/s':>11}")
    for name, fwd, bwd, flops in rows:
        tf = timeit(fwd, xp, repeat=repeat)
        tb = timeit(bwd, xp, repeat=repeat) if bwd else float("nan")
        rates = (f"{flops / tf / 1e9:11.0f} {2 * flops / tb / 1e9:11.0f}" if flops else f"{'':>11} {'':>11}")
        print(f"{name:<32} {1000 * tf:10.1f} {1000 * tb:11.1f} {rates}")
    compare_conv_methods(xp, repeat)
    rate = matmul_rate(xp, repeat)
    conv_f = 2 * N * C * C * k * k * H * W / timeit(rows[0][1], xp, repeat=repeat) / 1e9
    conv_b = 4 * N * C * C * k * k * H * W / timeit(rows[0][2], xp, repeat=repeat) / 1e9
    print(f"matrix product (448x448 @ 448x12096) {rate:.0f} GFLOP/s; fast convolution at "
          f"{100 * conv_f / rate:.0f}% of it forward, {100 * conv_b / rate:.0f}% backward")


def build_ours(name, device):
    return build(name).to(device)


def _our_step(name, batch, h, w, device, graphed=False):
    """(model, step, infer) closures for our model on ``device``, as the training loop runs it
    (``graphed``: ``train --cuda-graph``'s, replayed from a CUDA graph)."""
    xp = array_module(device)
    rng = np.random.default_rng(0)
    model = build_ours(name, device)
    nn.seed_dropout(model, 0)  # the Bayesian models draw masks in their training steps
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = xp.asarray(rng.standard_normal((batch, 3, h, w), dtype=np.float32))
    y = xp.asarray(rng.integers(0, 11, (batch, h, w), dtype=np.uint8))

    graph = engine.GraphedStep(model, opt) if graphed else None

    def step():
        if graph:
            graph(x, y)
        else:
            engine.train_step(model.train(), opt, x, y)  # the training loop's own step

    def infer():
        model.eval()
        model.forward(x)

    return model, step, infer


def gpu_memory_ours(name, batch, h, w, device, train):
    """Bytes CuPy's memory pool holds after one training step (or inference forward) started
    from an empty pool: its peak, since the pool keeps every block until freed."""
    xp = array_module(device)
    pool = xp.get_default_memory_pool()
    scratch.release()
    pool.free_all_blocks()
    _, step, infer = _our_step(name, batch, h, w, device)
    (step if train else infer)()
    synchronize(xp)
    held = pool.total_bytes()
    scratch.release()
    return held


def count_launches(name, batch, h, w):
    """(step ops, step syncs, inference ops, ops of a step replayed from a CUDA graph or None
    for a model with dropout) of one model through the strict CuPy stand-in, the second step
    counted (the first creates the momentum buffers), and the third graphed one (the first
    runs eagerly, the second records)."""
    from ..backend import using_gpu_module
    from ..testing import strict_cupy
    with using_gpu_module(strict_cupy):
        _, step, infer = _our_step(name, batch, h, w, "gpu")
        step()
        with strict_cupy.counting() as train_counts:
            step()
        with strict_cupy.counting() as infer_counts:
            infer()
        graphed = None
        if not draws_dropout(name):
            _, step, _ = _our_step(name, batch, h, w, "gpu", graphed=True)
            step(), step()
            with strict_cupy.counting() as graphed_counts:
                step()
            graphed = graphed_counts.ops
    return train_counts.ops, train_counts.syncs, infer_counts.ops, graphed


def bench_launches():
    print("array operations (kernel launches on a GPU) and host syncs, counted by the strict "
          "CuPy stand-in")
    print(f"{'model':<40} {'batch':>5} {'size':>7} {'step ops':>8} {'syncs':>5} {'infer ops':>9} "
          f"{'graphed step':>12}")
    for name in sorted(MODELS):
        batch, h, w = LAUNCH_ROWS.get(name, LAUNCH_DEFAULT)
        ops, syncs, infer_ops, graphed = count_launches(name, batch, h, w)
        graphed = "dropout" if graphed is None else graphed
        print(f"{name:<40} {batch:>5} {f'{h}x{w}':>7} {ops:>8} {syncs:>5} {infer_ops:>9} {graphed:>12}",
              flush=True)


# (N, C, H, W, F, k): SegNet-Basic's first, full-size and deep layers at batch 1, 4 and the
# CamVid protocol's 12 and at the paper's full 360x480, and its 1x1 classifier; SegNet's 3x3
# layers at batch 12 and 1; on a GPU also 180x240.
METHOD_SHAPES = [(4, 3, 90, 120, 64, 7), (1, 64, 90, 120, 64, 7), (4, 64, 90, 120, 64, 7),
                 (4, 64, 45, 60, 64, 7), (4, 64, 23, 30, 64, 7), (1, 64, 360, 480, 64, 7),
                 (12, 64, 90, 120, 64, 7), (12, 64, 45, 60, 64, 7), (12, 64, 23, 30, 64, 7),
                 (12, 64, 90, 120, 11, 1),
                 (12, 64, 90, 120, 64, 3), (12, 128, 45, 60, 128, 3), (12, 256, 23, 30, 256, 3),
                 (12, 512, 12, 15, 512, 3), (12, 512, 6, 8, 512, 3),
                 (1, 256, 45, 60, 256, 3), (1, 512, 23, 30, 512, 3), (1, 512, 12, 15, 512, 3)]
GPU_METHOD_SHAPES = [(1, 64, 180, 240, 64, 7), (4, 64, 180, 240, 64, 7)]


def compare_conv_methods(xp, repeat):
    """Forward + backward of every fast convolution method that computes the shape (those of
    ``conv.ONLY_KERNEL`` their kernel size only; the whole-map FFT not where its transforms
    outgrow the direct method, (H + W) 8 > C k k, gigabytes of kernel transform at 360x480),
    beside the one the rule picks."""
    rng = np.random.default_rng(0)
    print(f"{'convolution (forward + backward)':<32} " + " ".join(f"{m + ' ms':>11}" for m in conv.METHODS)
          + "  chosen")
    for N, C, H, W, F_, k in METHOD_SHAPES + (GPU_METHOD_SHAPES if xp is not np else []):
        x = xp.asarray(rng.standard_normal((N, C, H, W), dtype=np.float32))
        w = xp.asarray(rng.standard_normal((F_, C, k, k), dtype=np.float32))
        dout = xp.asarray(rng.standard_normal((N, F_, H, W), dtype=np.float32))
        cells = []
        for method in conv.METHODS:
            if conv.ONLY_KERNEL.get(method, k) != k or (method == "fft" and (H + W) * 8 > C * k * k):
                cells.append(f"{'-':>11}")
                continue
            def both():
                F.conv2d_backward(dout, F.conv2d_forward(x, w, method=method)[1])
            cells.append(f"{1000 * timeit(both, xp, repeat=repeat):11.1f}")
        name = f"b{N} {C}->{F_} {k}x{k} {H}x{W}"
        print(f"{name:<32} " + " ".join(cells) + f"  {conv.choose_method(x.shape, w.shape, xp)}", flush=True)


def _torch_step(name, batch, h, w, device):
    """(step, infer) closures for the PyTorch twin, synchronised on CUDA."""
    import torch
    dev = "cuda" if device == "gpu" else "cpu"
    model = torch_model(name).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, h, w, generator=gen).to(dev)
    y = torch.randint(0, 11, (batch, h, w), generator=gen).to(dev)

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    def step():
        model.train()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()  # read once a step, as ours is
        sync()

    def infer():
        model.eval()
        with torch.no_grad():
            model(x)
        sync()

    return step, infer


@contextlib.contextmanager
def torch_tf32(on):
    """PyTorch's cuDNN convolutions on TF32 tensor cores (``on``: PyTorch's default, 10-bit
    mantissas) or in full float32 as CuPy's products are by default, inside the block; the
    previous setting comes back however it ends."""
    import torch
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def _in_tf32(fn, on):
    def run():
        with torch_tf32(on):
            fn()
    return run


def gpu_memory_torch(name, batch, h, w, device, train):
    """Peak bytes PyTorch's caching allocator reserved for one training step (or forward)."""
    import torch
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    step, infer = _torch_step(name, batch, h, w, device)
    (step if train else infer)()
    return torch.cuda.max_memory_reserved()


def inference_peak_memory(device):
    """Peak bytes NumPy allocated during one SegNet-Basic inference at 360x480, batch 1,
    the convolution's scratch buffers included (they are released before the trace)."""
    model = build_ours("segnet-basic", device).eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 360, 480), dtype=np.float32)
    model.forward(x)  # warm-up outside the trace
    scratch.release()
    tracemalloc.start()
    model.forward(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def decoder_storage(h=360, w=480):
    """Bytes kept from the encoder for the decoder, batch 1: (SegNet's indices, FCN's maps).

    SegNet keeps one uint8 index per pooled value. An FCN-style decoder without dimension
    reduction adds the encoder's float32 map at each resolution it upsamples back to.
    """
    indices = unpooling_indices(h, w)
    _, floats = DecoderVariant("fcn-basic-no-dim-reduction").kept_from_encoder(h, w)
    return indices, 4 * floats


def bench_model(device, repeat, vs_torch):
    print(f"device {device}; times are medians of {repeat} after warm-up; per step, and per image")
    header = f"{'model':<13} {'batch':>5} {'size':>8} {'train ms':>9} {'ms/img':>7} {'infer ms':>9} {'ms/img':>7}"
    # On a GPU PyTorch is timed twice: as it ships (TF32 convolutions) and in full float32 like ours.
    modes = ([True, False] if device == "gpu" else [True]) if vs_torch else []
    graphed = device == "gpu"  # and the step as train --cuda-graph replays it
    if graphed:
        header += f" {'graph train':>11}"
    for tf32 in modes:
        what = "torch" if len(modes) == 1 else ("torch tf32" if tf32 else "torch fp32")
        header += f" {what + ' train':>16} {what + ' infer':>16} {'train x':>7} {'infer x':>7}"
        header += f" {'graph x':>7}" if graphed else ""
    print(header)
    for name, batch, h, w in MODEL_ROWS[device]:
        # ours and PyTorch's in turn, so that the machine's drift falls on both (``alternating``)
        _, step, infer = _our_step(name, batch, h, w, device)
        timed = [step, infer]
        if graphed:  # its warm-up: an eager step, then the recording
            timed.append(_our_step(name, batch, h, w, device, graphed=True)[1])
        for tf32 in modes:
            timed += [_in_tf32(fn, tf32) for fn in _torch_step(name, batch, h, w, device)]
        seconds = alternating(timed, array_module(device), warmup=2, repeat=repeat)
        train_s, infer_s = seconds[:2]
        line = (f"{name:<13} {batch:>5} {f'{h}x{w}':>8} {1000 * train_s:9.1f} {1000 * train_s / batch:7.1f} "
                f"{1000 * infer_s:9.1f} {1000 * infer_s / batch:7.1f}")
        if graphed:
            graph_s = seconds[2]
            line += f" {1000 * graph_s:11.1f}"
        theirs = seconds[3 if graphed else 2:]
        for t_train, t_infer in zip(theirs[0::2], theirs[1::2]):
            line += (f" {1000 * t_train:16.1f} {1000 * t_infer:16.1f} {train_s / t_train:7.2f} "
                     f"{infer_s / t_infer:7.2f}")
            if graphed:
                line += f" {graph_s / t_train:7.2f}"
        print(line, flush=True)
    if device == "cpu":
        print(f"peak NumPy memory of SegNet-Basic inference at 360x480, batch 1: "
              f"{inference_peak_memory(device) / 2**20:.0f} MiB")
    else:
        for train, batch in ((False, 1), (True, 4)):
            what = f"SegNet-Basic {'training step' if train else 'inference'} at 360x480, batch {batch}"
            ours = gpu_memory_ours("segnet-basic", batch, 360, 480, device, train)
            line = f"peak GPU memory of {what}: ours {ours / 2**20:.0f} MiB (CuPy pool)"
            if vs_torch:
                theirs = gpu_memory_torch("segnet-basic", batch, 360, 480, device, train)
                line += f", PyTorch {theirs / 2**20:.0f} MiB (reserved)"
            print(line, flush=True)
    idx, feat = decoder_storage()
    print(f"kept for the decoder at 360x480: pooling indices {idx / 2**20:.2f} MiB (uint8; "
          f"{idx / 4 / 2**20:.2f} MiB at 2 bits) vs encoder feature maps {feat / 2**20:.2f} MiB "
          f"(float32): {feat / idx:.0f}x ({4 * feat / idx:.0f}x at 2 bits)")


MONTE_CARLO_SAMPLES = (1, 2, 5, 10, 20, 50)


def bench_monte_carlo(device, repeat):
    """ms per image of Monte Carlo dropout against N, and of one pass with dropout off."""
    xp = array_module(device)
    model = build("bayesian-segnet-basic").to(device)
    print(f"device {device}; Bayesian SegNet-Basic, batch 1, ms per image (median of {repeat})")
    print(f"{'size':>8} {'dropout off':>11}" + "".join(f"{f'N={n}':>9}" for n in MONTE_CARLO_SAMPLES))
    for h, w in ((90, 120), (360, 480)):
        x = xp.asarray(np.random.default_rng(0).standard_normal((1, 3, h, w), dtype=np.float32))
        off = timeit(lambda: model.eval().forward(x), xp, repeat=repeat)
        times = [timeit(lambda n=n: engine.monte_carlo(model, x, n), xp, repeat=repeat)
                 for n in MONTE_CARLO_SAMPLES]
        print(f"{f'{h}x{w}':>8} {1000 * off:11.1f}" + "".join(f"{1000 * t:9.1f}" for t in times), flush=True)


def main(argv=None):
    p = cli.ArgumentParser(prog="python -m tinysegnet.bench", description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["epoch", "layers", "model", "launches", "monte-carlo"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--repeat", type=positive_int,
                   help="timings a median is taken over (default 5; for epoch, 3 alternations)")
    p.add_argument("--vs-torch", action="store_true", help="time PyTorch's version in the same run")
    p.add_argument("--conv-method", choices=sorted(conv.METHODS),
                   help="one convolution method for every layer (default: each layer's pick)")
    e = p.add_argument_group("epoch")
    e.add_argument("--data-dir", type=cli.folder_name, help="CamVid (default: the synthetic set at 90x120)")
    e.add_argument("--model", default="segnet-basic", choices=sorted(MODELS), metavar="MODEL",
                   help=f"one of {', '.join(sorted(MODELS))} (default segnet-basic)")
    e.add_argument("--images", type=positive_int, nargs=2, default=(48, 24), metavar=("TRAIN", "VAL"),
                   help="how many train and val images an epoch takes (default 48 24; the whole "
                        "CamVid split is 367 101)")
    e.add_argument("--load", type=cli.non_negative_int, default=0,
                   help="other processes that keep a core busy each while timing (a shared machine)")
    e.add_argument("--threads", type=cli.thread_count, default="auto", metavar="N|auto",
                   help="our BLAS threads, as train --threads takes them (default auto, as train's)")
    args = p.parse_args(argv)
    cli.run_main("bench", lambda: _bench(args))


def _bench(args):
    with conv.using_method(args.conv_method):
        repeat = args.repeat or 5
        if args.what == "launches":  # counted, not timed: needs no device
            bench_launches()
            return
        device = resolve_device(args.device)
        if args.what == "epoch":
            if device != "cpu":
                raise cli.Misuse("bench epoch times the CPU (the PyTorch twin runs on the CPU here)")
            epoch.report(args.data_dir, args.model, args.images[0], args.images[1],
                         args.repeat or 3, args.vs_torch, args.load, device, args.threads)
        elif args.what == "layers":
            bench_layers(device, repeat)
        elif args.what == "monte-carlo":
            bench_monte_carlo(device, repeat)
        else:
            bench_model(device, repeat, args.vs_torch)


if __name__ == "__main__":
    main()
