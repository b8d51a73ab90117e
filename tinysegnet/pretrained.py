"""The trained models shipped with tinysegnet: ``python -m tinysegnet.pretrained`` lists them
with their val scores; ``python -m tinysegnet.pretrained pack RUN/best.npz --name camvid
--data-dir ../shared/camvid`` (re)makes one from a run trained by its documented command.

Use one with ``python -m tinysegnet.predict --pretrained camvid IMAGE... --out DIR`` or
``engine.load_pretrained("camvid")``.
"""

from . import cli
from .engine import pretrained


def main(argv=None):
    p = cli.ArgumentParser(prog="python -m tinysegnet.pretrained", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="action")
    make = sub.add_parser("pack", help="make a shipped model from a run's checkpoint")
    make.add_argument("checkpoint")
    make.add_argument("--name", required=True, choices=sorted(pretrained.SHIPPED))
    make.add_argument("--data-dir", required=True, type=cli.folder_name, help="the data to score its val split on")
    make.add_argument("--overwrite", action="store_true", help="replace the model the package ships")
    args = p.parse_args(argv)
    cli.run_main("pretrained", lambda: _pack(args) if args.action == "pack" else _list())


def _list():
    for name in sorted(pretrained.SHIPPED):
        info = pretrained.card(name)
        val, full = info["scores"]["val"], info["scores"]["val, full resolution"]
        print(f"{name}: {info['description']}, epoch {info['epoch']} of {info['epochs']}, "
              f"{info['parameters']:,} parameters, {info['bytes'] / 1e6:.1f} MB\n"
              f"  val G {100 * val['G']:.1f}  C {100 * val['C']:.1f}  mIoU {100 * val['mIoU']:.1f}  "
              f"BF {100 * val['BF']:.1f}; at full resolution mIoU {100 * full['mIoU']:.1f}\n"
              f"  trained by: {info['trained_by']}")


def _pack(args):
    info = pretrained.pack(args.checkpoint, args.name, args.data_dir, args.overwrite)
    print(f"wrote {pretrained.FOLDER}/{args.name}.npz ({info['bytes'] / 1e6:.1f} MB) and its card: val mIoU "
          f"{100 * info['scores']['val']['mIoU']:.1f}")


if __name__ == "__main__":
    main()
