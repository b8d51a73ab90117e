"""Continue in PyTorch or deploy: ``python -m tinysegnet.export CKPT OUT.pt`` (or ``OUT.onnx``).

``OUT.pt``: the checkpoint's weights and batch-norm statistics as a PyTorch ``state_dict``
that the PyTorch twin of the model loads, with ``OUT.momentum.pt`` (the optimiser's momentum
buffers by parameter name, so SGD continues where it stopped). ``OUT.onnx``: the network in
eval mode for ONNX runtimes, batch and size dynamic. Beside either, ``OUT.json``: the model's
config, the input statistics, the classes and void, the loss's normalisation and the whole run
config (class weights and SGD settings), everything needed to go on as tinysegnet did::

    import json, torch
    from tinysegnet.interop.torch import torch_model
    info = json.load(open("OUT.json"))
    net = torch_model(info["model"])
    net.load_state_dict(torch.load("OUT.pt"))
"""

import json
import os

from . import checkpoint, cli, engine
from .data.classes import config_classes
from .files import atomic_path, write_text
from .interop import torch as bridge


def main(argv=None):
    p = cli.ArgumentParser(prog="python -m tinysegnet.export", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="a tinysegnet checkpoint (RUN/best.npz)")
    p.add_argument("out", help="OUT.pt (a PyTorch state_dict) or OUT.onnx; OUT.json is written beside it")
    p.add_argument("--format", choices=["pt", "onnx"],
                   help="pt: the state_dict, and OUT.momentum.pt with the optimiser's momentum buffers; "
                        "onnx: the network for deployment (default: from OUT's suffix)")
    p.add_argument("--overwrite", action="store_true", help="replace the files if they exist")
    args = p.parse_args(argv)
    suffix = os.path.splitext(args.out)[1].lower()
    args.format = args.format or {".pt": "pt", ".onnx": "onnx"}.get(suffix)
    if args.format is None or suffix != f".{args.format}":
        p.error(f"{args.out}: OUT must end in .pt (the PyTorch state_dict) or .onnx (--format onnx)")
    cli.run_main("export", lambda: _export(args))


def _export(args):
    stem = os.path.splitext(args.out)[0]
    sidecar, momentum = stem + ".json", stem + ".momentum.pt"
    outputs = [args.out, sidecar] + ([momentum] if args.format == "pt" else [])
    cli.check_outputs(outputs, [args.checkpoint], args.overwrite)
    torch = bridge.require_torch()
    state, optim_state, meta = checkpoint.load(args.checkpoint)
    model, config, progress = engine.load_run(args.checkpoint)
    if args.format == "onnx":
        with atomic_path(args.out) as tmp:
            bridge.export_onnx(model, tmp)
        what = f"{args.out} (ONNX: input x (N, 3, H, W) standardised, output logits)"
    else:
        torch_state = bridge.torch_state_dict(model)
        with atomic_path(args.out) as tmp:
            torch.save(torch_state, tmp)
        with atomic_path(momentum) as tmp:
            torch.save(bridge.torch_momentum(model, optim_state), tmp)
        what = f"{args.out} ({len(torch_state)} tensors), {momentum} ({len(optim_state)} momentum buffers)"
    classes = config_classes(config)
    info = dict(model=model.config, mean=config.mean, std=config.std, input_norm=config.input_norm,
                size=list(config.size),
                classes=list(classes.names), void=classes.void, ignore_index=classes.ignore,
                loss="sum over valid pixels of class_weights[y] * cross-entropy, divided by the number of "
                     "valid pixels (PyTorch: cross_entropy(..., weight=w, ignore_index=ignore_index, "
                     "reduction='sum') / (y != ignore_index).sum())",
                run=config.to_json(), epoch=progress["epoch"], source=os.path.abspath(args.checkpoint))
    write_text(sidecar, json.dumps(info, indent=2) + "\n")
    print(f"wrote {what} and {sidecar}")


if __name__ == "__main__":
    main()
