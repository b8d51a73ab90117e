"""The networks, by the names the command line uses."""

from .segnet import SegNet
from .segnet_basic import SegNetBasic

MODELS = {"segnet-basic": SegNetBasic, "segnet": SegNet}


def build(name, **options):
    """A model by name ("segnet-basic", "segnet") with constructor options."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name](**options)


def from_config(config):
    """The model a ``model.config`` dict describes (as saved in checkpoints)."""
    options = dict(config)
    return build(options.pop("name"), **options)
