"""The PyTorch twin of SegNet-Basic and SegNet, and weights carried both ways.

PyTorch is never a dependency of tinysegnet's maths: this module imports it only when one
of its functions is called. It serves three users: the tests (an independent oracle for
whole models), the bench (the same networks timed in PyTorch) and anyone who outgrows NumPy
and wants to continue a run in PyTorch (``python -m tinysegnet.export``).

The twin is built from a tinysegnet model config, so its layers come in the same order as
ours: every convolution and batch norm of ours has one counterpart, matched by position,
and the Bayesian models' dropout layers sit where ours do (``enc_drop`` / ``dec_drop``).
Parameter names map as ``weight``/``bias`` (convolution), ``gamma -> weight``,
``beta -> bias``, ``running_mean``, ``running_var`` (batch norm).
"""

import numpy as np

from .. import nn
from ..backend import to_numpy
from ..errors import MissingDependency
from ..models import MODELS, from_config

TWINS = ("segnet-basic", "segnet", "bayesian-segnet-basic", "bayesian-segnet")


def require_torch():
    try:
        import torch
    except ImportError:
        raise MissingDependency("PyTorch is not installed (pip install torch)") from None
    return torch


def torch_model(config):
    """The PyTorch network for a tinysegnet model ``config`` (a model's ``.config`` dict, or
    just its name): conv, batch norm, ReLU, ceil-mode indexed pooling, sized unpooling."""
    torch = require_torch()
    from torch import nn as tnn

    config = {"name": config} if isinstance(config, str) else dict(config)
    name = config["name"]
    if name not in TWINS:
        raise ValueError(f"no PyTorch twin for model {name!r}: only {', '.join(TWINS)}")

    class Net(tnn.Module):
        """Encoder blocks, each followed by indexed pooling and then ``enc_drop``; decoder
        blocks (deepest first), each after sized unpooling and followed by ``dec_drop``."""

        def __init__(self, encoder_blocks, decoder_blocks, classifier, dropout, deep):
            super().__init__()
            self.enc = tnn.ModuleList(encoder_blocks)
            self.dec = tnn.ModuleList(decoder_blocks)
            self.classifier = classifier
            n = len(encoder_blocks)
            drop = lambda on: tnn.Dropout(dropout) if on else tnn.Identity()
            self.enc_drop = tnn.ModuleList(drop(i >= n - deep) for i in range(n))
            self.dec_drop = tnn.ModuleList(drop(j < deep) for j in range(n))

        def forward(self, x):
            saved = []
            for block, drop in zip(self.enc, self.enc_drop):
                x = block(x)
                size = x.shape[2:]
                x, idx = torch.nn.functional.max_pool2d(x, 2, 2, ceil_mode=True, return_indices=True)
                saved.append((idx, size))
                x = drop(x)
            for block, drop, (idx, size) in zip(self.dec, self.dec_drop, reversed(saved)):
                x = drop(block(torch.nn.functional.max_unpool2d(x, idx, 2, 2, output_size=size)))
            return self.classifier(x)

    def cbr(cin, cout, k, bias, relu=True):
        layers = [tnn.Conv2d(cin, cout, k, padding=k // 2, bias=bias), tnn.BatchNorm2d(cout)]
        return layers + [tnn.ReLU()] if relu else layers

    n_classes, cin = config.get("n_classes", 11), config.get("in_channels", 3)
    ours = MODELS[name]
    dropout = ours.dropout
    if name.endswith("segnet-basic"):
        width, k = config.get("width", 64), config.get("kernel", 7)
        enc = [tnn.Sequential(*cbr(cin if i == 0 else width, width, k, False)) for i in range(4)]
        dec = [tnn.Sequential(*cbr(width, width, k, False, relu=False)) for _ in range(4)]
        return Net(enc, dec, tnn.Conv2d(width, n_classes, 1), dropout,
                   ours.dropout_depth if dropout else 0)
    base = config.get("base_width", 64)
    widths = [[base] * 2, [2 * base] * 2, [4 * base] * 3, [8 * base] * 3, [8 * base] * 3]
    enc, channels = [], cin
    for block in widths:
        layers = []
        for cout in block:
            layers += cbr(channels, cout, 3, True)
            channels = cout
        enc.append(tnn.Sequential(*layers))
    dec, inputs = [], [cin] + [block[-1] for block in widths[:-1]]
    for block, block_in in reversed(list(zip(widths, inputs))):
        outs = block[1:][::-1] + ([block_in] if block_in != cin else [])
        layers = []
        for cout in outs:
            layers += cbr(channels, cout, 3, True)
            channels = cout
        dec.append(tnn.Sequential(*layers))
    return Net(enc, dec, tnn.Conv2d(channels, n_classes, 3, padding=1), dropout,
               ours.dropout_blocks if dropout else 0)


def _pairs(model, net):
    """(our layer, its PyTorch counterpart) for every convolution and batch norm, in order."""
    from torch import nn as tnn
    ours = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    theirs = [m for m in net.modules() if isinstance(m, (tnn.Conv2d, tnn.BatchNorm2d))]
    kinds = [type(m).__name__ for m in ours], [type(m).__name__ for m in theirs]
    if kinds[0] != kinds[1]:
        raise ValueError("the PyTorch network's layers do not match the model's")
    return list(zip(ours, theirs))


def _names(layer):
    """(our attribute, PyTorch attribute) pairs of one layer's arrays."""
    if isinstance(layer, nn.Conv2d):
        return [("weight", "weight")] + ([("bias", "bias")] if layer.bias is not None else [])
    return [("gamma", "weight"), ("beta", "bias"), ("running_mean", "running_mean"),
            ("running_var", "running_var")]


def _array(layer, attribute):
    value = getattr(layer, attribute)
    return value.data if isinstance(value, nn.Parameter) else value


def to_torch(model):
    """The PyTorch twin of ``model`` (a tinysegnet model) holding a copy of its weights and
    batch-norm statistics, in float32 on the CPU."""
    torch = require_torch()
    net = torch_model(model.config)
    with torch.no_grad():
        for ours, theirs in _pairs(model, net):
            for mine, its in _names(ours):
                getattr(theirs, its).copy_(torch.from_numpy(to_numpy(_array(ours, mine)).astype(np.float32)))
    return net


def torch_state_dict(model):
    """``to_torch(model).state_dict()``: what ``python -m tinysegnet.export`` saves."""
    return to_torch(model).state_dict()


def torch_parameter_names(model):
    """The PyTorch twin's name of each of ``model.parameters()``, in order."""
    net = torch_model(model.config)
    torch_prefix = {id(layer): f"{name}." if name else "" for name, layer in net.named_modules()}
    names = {}
    for ours, theirs in _pairs(model, net):
        for mine, its in _names(ours):
            value = getattr(ours, mine)
            if isinstance(value, nn.Parameter):
                names[id(value)] = torch_prefix[id(theirs)] + its
    return [names[id(p)] for p in model.parameters()]


def torch_momentum(model, optim_state):
    """{PyTorch parameter name: momentum buffer} from a tinysegnet SGD state (``velocity.i``
    for the model's i-th parameter): our SGD's rule is PyTorch's, so these are the buffers
    ``torch.optim.SGD`` keeps as ``state[p]["momentum_buffer"]``."""
    torch = require_torch()
    names = torch_parameter_names(model)
    return {names[int(key.split(".")[1])]: torch.from_numpy(to_numpy(v).astype(np.float32))
            for key, v in optim_state.items()}


def momentum_from_torch(model, buffers):
    """The inverse of :func:`torch_momentum`: a tinysegnet SGD state from PyTorch's buffers."""
    return {f"velocity.{i}": buffers[name].detach().cpu().numpy()
            for i, name in enumerate(torch_parameter_names(model)) if name in buffers}


def export_onnx(model, path):
    """Write the model as ONNX (opset of torch.onnx's dynamo exporter) through its PyTorch twin
    in eval mode (dropout off, batch norm's running statistics): input ``x`` (N, 3, H, W)
    float32, standardised as the run did, output ``logits`` (N, K, H, W); batch and size dynamic."""
    torch = require_torch()
    try:
        import onnx  # noqa: F401  (torch.onnx's dynamo exporter writes through these two)
        import onnxscript  # noqa: F401
    except ImportError:
        raise MissingDependency("ONNX export needs onnx and onnxscript: pip install 'tinysegnet[onnx]'") from None
    net = to_torch(model).eval()
    h, w = (45, 60)
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height", min=2), 3: torch.export.Dim("width", min=2)}
    program = torch.onnx.export(net, (torch.zeros(1, model.config.get("in_channels", 3), h, w),), dynamo=True,
                                input_names=["x"], output_names=["logits"], dynamic_shapes=(dims,),
                                verbose=False)
    program.save(path)


def from_torch(net_or_state, config):
    """A tinysegnet model built from ``config`` with the weights of a PyTorch twin (a network
    or its state_dict)."""
    torch = require_torch()
    net = torch_model(config)
    if not isinstance(net_or_state, torch.nn.Module):
        net.load_state_dict(net_or_state)
        net_or_state = net
    model = from_config(config)
    state = {}
    prefix = {id(layer): f"{name}." if name else "" for name, layer in model.named_modules()}
    for ours, theirs in _pairs(model, net_or_state):
        for mine, its in _names(ours):
            state[prefix[id(ours)] + mine] = getattr(theirs, its).detach().cpu().numpy()
    model.load_state_dict(state)
    return model
