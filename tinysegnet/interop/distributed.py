"""Continue a tinysegnet run on many processes with PyTorch's DistributedDataParallel:

    torchrun --nproc-per-node N -m tinysegnet.interop.distributed RUN/last.npz --epochs E --out NEW_RUN

Each process holds the run's PyTorch twin (``interop.torch``) with the checkpoint's weights and
SGD momentum; gloo connects them on CPUs, NCCL on GPUs (one per process). The run goes on as
tinysegnet would have run it: the same data, the same shuffles and flips (drawn from the run's
own generator, identically in every process), the same class weights, loss and SGD settings.
Every global batch of ``batch_size`` images is the one a single process would have taken, and
process r trains on its images r, r + N, ...; each process's loss is scaled so that DDP's
average of the gradients is the gradient of the whole batch's loss (the weighted sum over its
valid pixels divided by their count, tinysegnet's normalisation). Batch norm normalises each
process's share of the batch (its statistics are per replica, its running averages process
0's): with N = 1 the run is tinysegnet's exactly, with N > 1 the batch statistics are those of
batch_size / N images. (PyTorch's SyncBatchNorm, which would share them, runs on GPUs only.)

After each epoch process 0 brings the weights and momentum back and ends the epoch as
``tinysegnet.train`` does (``engine.end_epoch``): validation, best.npz and last.npz written
atomically in tinysegnet's format, metrics, pictures. So ``evaluate``, ``predict``, the lessons
and ``train --resume`` read the result, and this command continues its own last.npz. The
checkpoints' ``progress.continued`` says which epochs ran where. Ctrl-C stops every process;
nothing is saved mid-epoch.
"""

import os
import socket
import time

import numpy as np

from .. import cli, engine
from ..data import transforms
from ..engine.folders import check_resume_folder
from ..errors import Misuse
from ..files import hold_folder
from .torch import momentum_from_torch, require_torch, to_torch, torch_momentum


def main(argv=None):
    p = cli.ArgumentParser(prog="torchrun --nproc-per-node N -m tinysegnet.interop.distributed",
                           description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="the run's last.npz")
    p.add_argument("--epochs", type=cli.positive_int, required=True, help="the total to reach")
    p.add_argument("--out", required=True, help="the run folder to write (a new one, or the run's own)")
    p.add_argument("--data-dir", type=cli.folder_name, help="the run's data, if it has moved")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    args = p.parse_args(argv)
    cli.run_main("distributed", lambda: _continue(args))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _continue(args):
    torch = require_torch()
    import torch.distributed as dist
    if "RANK" not in os.environ:  # run without torchrun: one process
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(_free_port()))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    cuda = torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    out = os.path.abspath(args.out)
    if rank == 0:  # the folder checks before any process starts work
        hold_folder(out)
        _, done = check_resume_folder(args.checkpoint, out, args.overwrite)
        if args.epochs <= done:
            raise Misuse(f"{args.checkpoint} is already at epoch {done}; --epochs is the total to reach")
    dist.init_process_group(backend)
    try:
        run = engine.restore(args.checkpoint, out, epochs=args.epochs, device="cpu",
                             data_dir=os.path.abspath(args.data_dir) if args.data_dir else None)
        if run.config.batch_size % world:
            raise Misuse(f"the run's batch of {run.config.batch_size} does not split over {world} processes")
        _train(run, rank, world, backend, torch, dist, cuda)
    finally:
        dist.destroy_process_group()


def _train(run, rank, world, backend, torch, dist, cuda):
    config, classes = run.config, run.classes
    device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}") if cuda else torch.device("cpu")
    net = to_torch(run.model).to(device)
    ddp = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if cuda else None)
    opt = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    buffers = torch_momentum(run.model, run.optimizer.state_dict())
    for name, p in net.named_parameters():
        if name in buffers:
            opt.state[p]["momentum_buffer"] = buffers[name].to(device)
    weights = None if config.class_weights is None else torch.tensor(config.class_weights, device=device)
    ignore = classes.ignore
    start = run.progress["epoch"] + 1
    run.progress.setdefault("continued", []).append(dict(
        first_epoch=start, processes=world, backend=backend, torch=torch.__version__))
    for epoch in range(start, config.epochs + 1):
        began = time.perf_counter()
        ddp.train()
        total = count = 0.0
        for index in transforms.batches(len(run.train_split), config.batch_size, run.rng):
            images, labels = run.train_split.images[index], run.train_split.labels[index]
            if config.flip:
                images, labels = transforms.random_flip(images, labels, run.rng)
            valid = max(int((labels != ignore).sum()), 1)  # the whole batch's valid pixels
            x = torch.from_numpy(transforms.network_input(images[rank::world], config.mean, config.std,
                                                          config.input_norm)).to(device)
            y = torch.from_numpy(labels[rank::world].astype(np.int64)).to(device)
            loss_sum = torch.nn.functional.cross_entropy(ddp(x), y, weight=weights, ignore_index=ignore,
                                                         reduction="sum")
            opt.zero_grad()
            (loss_sum * world / valid).backward()  # DDP averages: the gradient of sum / valid
            opt.step()
            batch_loss = loss_sum.detach().clone()
            dist.all_reduce(batch_loss)
            total, count = total + float(batch_loss) / valid * len(index), count + len(index)
        seconds = time.perf_counter() - began
        if rank == 0:
            run.model.load_state_dict(_our_state(run.model, net))
            run.optimizer.load_state_dict(momentum_from_torch(
                run.model, {name: opt.state[p]["momentum_buffer"] for name, p in net.named_parameters()
                            if "momentum_buffer" in opt.state[p]}))
            record, best = engine.end_epoch(run, epoch, total / count, seconds, began)
            print(f"epoch {epoch:3d}/{config.epochs}  loss {record['loss']:.4f}  val mIoU "
                  f"{100 * record['mIoU']:.1f}{'  (best)' if best else ''}  ({world} processes, {backend})",
                  flush=True)
        dist.barrier()


def _our_state(model, net):
    from .torch import from_torch
    return from_torch({k: v.detach().cpu() for k, v in net.state_dict().items()}, model.config).state_dict()


if __name__ == "__main__":
    main()
