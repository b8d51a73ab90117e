"""Continue in PyTorch: ``python -m tinysegnet.export CKPT OUT.pt``.

Writes the checkpoint's weights and batch-norm statistics as a PyTorch ``state_dict``
(``OUT.pt``) that the PyTorch twin of the model loads, and beside it ``OUT.json``: the
model's config and the input statistics, everything needed to rebuild the network and feed
it images the way tinysegnet did::

    import json, torch
    from tinysegnet.interop.torch import torch_model
    info = json.load(open("OUT.json"))
    net = torch_model(info["model"])
    net.load_state_dict(torch.load("OUT.pt"))
"""

import json
import os

from . import cli, engine
from .files import atomic_path, write_text
from .interop import torch as bridge


def main(argv=None):
    p = cli.ArgumentParser(prog="python -m tinysegnet.export", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="a tinysegnet checkpoint (RUN/best.npz)")
    p.add_argument("out", help="the PyTorch state_dict to write (.pt); OUT.json is written beside it")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.pt and OUT.json if they exist")
    args = p.parse_args(argv)
    cli.run_main("export", lambda: _export(args))


def _export(args):
    sidecar = os.path.splitext(args.out)[0] + ".json"
    if os.path.splitext(args.out)[1].lower() != ".pt":
        raise cli.Misuse(f"{args.out}: OUT is the PyTorch state_dict, a .pt file ({sidecar} is "
                         f"written beside it)")
    cli.check_outputs([args.out, sidecar], [args.checkpoint], args.overwrite)
    torch = bridge.require_torch()
    model, config, progress = engine.load_run(args.checkpoint)
    torch_state = bridge.torch_state_dict(model)
    with atomic_path(args.out) as tmp:
        torch.save(torch_state, tmp)
    info = dict(model=model.config, mean=config.mean, std=config.std, size=list(config.size),
                epoch=progress["epoch"], source=os.path.abspath(args.checkpoint))
    write_text(sidecar, json.dumps(info, indent=2) + "\n")
    print(f"wrote {args.out} ({len(torch_state)} tensors) and {sidecar}")


if __name__ == "__main__":
    main()
