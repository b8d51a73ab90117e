"""The networks, by the names the command line uses."""

import functools

from .decoders import VARIANTS, DecoderVariant
from .pixel import PixelClassifier
from .segnet import BayesianSegNet, SegNet
from .segnet_basic import BayesianSegNetBasic, SegNetBasic

MODELS = {m.name: m for m in (SegNetBasic, SegNet, BayesianSegNetBasic, BayesianSegNet)}
MODELS["pixel"] = PixelClassifier
MODELS.update({v: functools.partial(DecoderVariant, v) for v in VARIANTS})


def build(name, **options):
    """A model by name (``MODELS``' keys) with constructor options."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name](**options)


def draws_dropout(name):
    """Whether the model ``name`` (``MODELS``' keys) has dropout layers (the Bayesian ones)."""
    return bool(getattr(MODELS[name], "dropout", 0))


def from_config(config):
    """The model a ``model.config`` dict describes (as saved in checkpoints)."""
    options = dict(config)
    return build(options.pop("name"), **options)
