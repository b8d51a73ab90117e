"""Trained models shipped with the package, to try without training one.

``camvid``: SegNet-Basic trained on CamVid's train split at the README's protocol (90x120,
60 epochs, batch 12, SGD lr 0.1, momentum 0.9, weight decay 5e-4, median-frequency weights,
flips), its best val epoch. Each lives in ``tinysegnet/weights/`` as ``NAME.npz`` (a
checkpoint without optimiser state: weights, batch-norm statistics and the run's metadata)
beside ``NAME.json``, its card: the training command, the val scores measured when it was
packed, the file's SHA-256. :func:`pack` writes both from a run's checkpoint; nothing there
is edited by hand.
"""

import hashlib
import os

from .. import checkpoint
from ..data import camvid
from ..errors import DataError, Misuse
from ..files import strict_json, write_text
from .inference import evaluate_split, load_eval_data, load_run

FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
# name -> (what it is, the command that trains it): pack checks a run against its protocol
SHIPPED = {
    "camvid": ("SegNet-Basic, CamVid (11 classes), trained at 90x120",
               "python -m tinysegnet.train --data-dir ../shared/camvid --size 90 120 --epochs 60 --batch-size 12"),
}
PROTOCOL = {"camvid": dict(model="segnet-basic", size=[90, 120], batch_size=12, epochs=60, lr=0.1,
                           momentum=0.9, weight_decay=5e-4, class_weighting="median", flip=True)}


def _check_name(name):
    if name not in SHIPPED:
        raise Misuse(f"no pretrained model {name!r}: the package ships {', '.join(sorted(SHIPPED))}")


def pretrained_path(name="camvid"):
    """The shipped checkpoint ``name`` (Misuse for a name not shipped)."""
    _check_name(name)
    path = os.path.join(FOLDER, f"{name}.npz")
    if not os.path.isfile(path):
        raise DataError(f"{path}: the pretrained model {name!r} is missing from this installation; "
                        f"reinstall tinysegnet")
    return path


def load_pretrained(name="camvid", device="cpu"):
    """(model in eval mode on ``device``, RunConfig, progress) of a shipped model, as
    :func:`load_run` gives them: ``engine.predict(model, image, config.mean, config.std,
    config.size)`` segments a street picture."""
    return load_run(pretrained_path(name), device)


def card(name="camvid"):
    """The shipped model's card (a dict): what it is, how it was trained, its val scores."""
    import json
    pretrained_path(name)
    with open(os.path.join(FOLDER, f"{name}.json")) as f:
        return json.load(f)


def pack(source, name, data_dir, overwrite=False, folder=FOLDER):
    """Write ``folder/name.npz`` and ``folder/name.json`` from the run checkpoint ``source``,
    after checking that the run followed the protocol of ``name`` (its command in SHIPPED),
    and scoring it on ``data_dir``'s val split (at the training size and at full resolution).
    Returns the card."""
    _check_name(name)
    target, card_path = os.path.join(folder, f"{name}.npz"), os.path.join(folder, f"{name}.json")
    run = checkpoint.load_meta(source)["run"]
    differs = {k: (run.get(k), v) for k, v in PROTOCOL[name].items() if run.get(k) != v}
    if differs:
        raise Misuse(f"{source} was not trained by {name!r}'s protocol ({SHIPPED[name][1]}): "
                     + ", ".join(f"{k} {got} where it is {want}" for k, (got, want) in differs.items()))
    for path in (target, card_path):
        if os.path.exists(path) and not overwrite:
            raise Misuse(f"{path} already exists: add --overwrite to replace the shipped model")
    state, _, meta = checkpoint.load(source)
    model, config, progress = load_run(source)
    scores = {}
    for key, full in (("val", False), ("val, full resolution", True)):
        split, full_split = load_eval_data(config, "val", data_dir)
        result, _ = evaluate_split(model, split, config.mean, config.std, 8, boundary_f1=True,
                                   full_res=full_split if full else None)
        scores[key] = {k: result[k] for k in ("G", "C", "mIoU", "BF")}
        scores[key]["class_iou"] = dict(zip(camvid.CLASSES, result["class_iou"]))
    checkpoint.save(target, state, meta)  # the run's metadata, no optimiser state
    with open(target, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    info = dict(name=name, description=SHIPPED[name][0], trained_by=SHIPPED[name][1],
                packed_by=f"python -m tinysegnet.pretrained pack RUN/best.npz --name {name} --data-dir "
                          f"../shared/camvid", model=config.model, parameters=model.num_parameters(),
                epoch=progress["epoch"], epochs=config.epochs, classes=list(camvid.CLASSES),
                scores=scores, bytes=os.path.getsize(target), sha256=digest)
    write_text(card_path, strict_json(info, indent=2) + "\n")
    return info
