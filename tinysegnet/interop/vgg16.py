"""The paper's initialisation: SegNet's encoder from VGG16's ImageNet weights.

The weights come from a torchvision ``vgg16`` state_dict the user downloaded (the paper's Caffe
model started from the same VGG16 weights). Its ``features`` hold the 13 convolutions, at
indices 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28 (ReLU and max-pool layers between have no
weights); the fully connected ``classifier`` is not used: SegNet drops it.

As SegNet-Tutorial's Caffe model does, each convolution takes VGG16's weights *and* biases, and
the batch norms after them (which VGG16 does not have) keep their own initialisation: scale 1,
shift 0.001, running statistics 0 and 1, learnt from the first step on. The decoder stays
randomly initialised.
"""

import os

import numpy as np

from ..errors import DataError
from .torch import require_torch

CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def read_vgg16_features(path):
    """[(weight (F, C, 3, 3), bias (F,)) for each of the 13 convolutions] from a torchvision
    vgg16 state_dict file; one line when the file is not one."""
    torch = require_torch()
    if not os.path.isfile(path):
        raise DataError(f"{path}: VGG16 weights not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a file that is not a state_dict
        reason = " ".join(str(e).split())[:120]
        raise DataError(f"{path}: not a PyTorch state_dict ({type(e).__name__}: {reason})") from None
    if not isinstance(state, dict):
        raise DataError(f"{path}: not a state_dict (a {type(state).__name__})")
    expected = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
                (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    layers = []
    for index, (cout, cin) in zip(CONV_INDICES, expected):
        w, b = state.get(f"features.{index}.weight"), state.get(f"features.{index}.bias")
        if w is None or b is None or tuple(w.shape) != (cout, cin, 3, 3) or tuple(b.shape) != (cout,):
            found = "missing" if w is None else f"of shape {tuple(w.shape)}"
            raise DataError(f"{path}: not a torchvision VGG16 state_dict (features.{index}.weight is {found}, "
                            f"VGG16's is {(cout, cin, 3, 3)})")
        layers.append((w.float().numpy(), b.float().numpy()))
    return layers


def load_vgg16_encoder(model, path):
    """Copy VGG16's 13 convolutions (weights and biases) into a SegNet's encoder, in order;
    its batch norms and decoder are left as they are."""
    from .. import nn
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) != 13 or model.config.get("base_width", 64) != 64 or model.config.get("in_channels", 3) != 3:
        raise DataError(f"VGG16 weights fit SegNet's encoder at base width 64 on RGB input; "
                        f"{model.config['name']} is not that")
    for conv, (w, b) in zip(convs, read_vgg16_features(path)):
        conv.weight.data[...] = np.asarray(w, conv.weight.data.dtype)
        conv.bias.data[...] = np.asarray(b, conv.bias.data.dtype)
    return model
