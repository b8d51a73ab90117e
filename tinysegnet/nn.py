"""Thin layer objects: they hold parameters, gradients, running statistics and the cache.

The maths lives in ``tinysegnet.functional``; a layer here only remembers what its
forward pass returned so that ``backward`` can hand it back. Models are trees of
these modules with ``forward(x)`` and ``backward(dout)``.

In ``eval()`` mode no cache is kept, so inference holds no activations for a
backward pass that will never come.
"""

import numpy as np

from . import functional as F
from .backend import device_of, to_device, xp_of
from .functional.activation import relu_forward, relu_inplace
from .functional.batchnorm import batchnorm2d_fold, batchnorm2d_forward
from .functional.upsampling import bilinear_upsample_weights


class Parameter:
    """A trainable array and the gradient the last backward pass left for it.

    Gradients are assigned, not accumulated: each backward pass replaces ``grad``, so there
    is nothing to zero between steps (a parameter used twice in one pass would need
    accumulation; none of SegNet's is).
    """

    def __init__(self, data):
        self.data = data
        self.grad = None

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Module:
    """Base class: finds parameters, buffers and submodules among its attributes.

    Buffers are arrays that are state but not trained (batch-norm running
    statistics); a subclass names them in ``buffers``.
    """

    buffers = ()

    def __init__(self):
        self.training = True
        self._cache = None  # what the last training-mode forward pass left for backward

    def _keep(self, cache):
        """Keep a forward pass's cache for :meth:`backward`, in training mode only (inference
        keeps nothing, so a model in eval mode holds no activations)."""
        self._cache = cache if self.training else None

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def children(self):
        """(name, module) pairs, in the order they were assigned; ``_private`` ones are links, not children."""
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_parameters(self, prefix=""):
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for name in self.buffers:
            yield prefix + name, getattr(self, name)
        for name, child in self.children():
            yield from child.named_buffers(f"{prefix}{name}.")

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module ("" or ``prefix``) and every one below it,
        named as :meth:`state_dict` names their arrays ("encoder.layers.0")."""
        yield prefix, self
        for name, child in self.children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    @property
    def device(self):
        """"cpu" or "gpu": where this module's parameters live (what inference sends its
        inputs to)."""
        for _, p in self.named_parameters():
            return device_of(p.data)
        return "cpu"

    @property
    def dtype(self):
        """The dtype of this module's parameters (float32, or float64 for gradient checks)."""
        for _, p in self.named_parameters():
            return p.data.dtype
        return np.dtype(np.float32)

    def num_parameters(self):
        return sum(int(p.data.size) for p in self.parameters())

    def state_dict(self):
        """name -> array (parameters and buffers), the arrays themselves, not copies."""
        state = {name: p.data for name, p in self.named_parameters()}
        state.update(self.named_buffers())
        return state

    def load_state_dict(self, state):
        """Copy arrays into this module's parameters and buffers (onto their device).

        The names and shapes must match exactly; a ValueError names what differs.
        """
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"load_state_dict: missing {missing[:5]}, unexpected {unexpected[:5]}")
        for name, target in own.items():
            source = state[name]
            if tuple(source.shape) != tuple(target.shape):
                raise ValueError(f"load_state_dict: {name} has shape {tuple(source.shape)}, "
                                 f"the model expects {tuple(target.shape)}")
            target[...] = to_device(source, device_of(target)).astype(target.dtype, copy=False)

    def _map_arrays(self, fn):
        """Replace every parameter's and buffer's array by ``fn(array)``; gradients are dropped
        (they belong to the arrays replaced). The one walker behind :meth:`to` and :meth:`astype`."""
        for m in self.modules():
            for value in vars(m).values():
                if isinstance(value, Parameter):
                    value.data = fn(value.data)
                    value.grad = None
            for name in m.buffers:
                setattr(m, name, fn(getattr(m, name)))
        return self

    def to(self, device):
        """Move every parameter and buffer to ``device`` ("cpu", "gpu" or "auto")."""
        return self._map_arrays(lambda a: to_device(a, device))

    def astype(self, dtype):
        """Convert parameters and buffers to ``dtype`` (float64 for gradient checks)."""
        return self._map_arrays(lambda a: a.astype(dtype))


class Conv2d(Module):
    """k x k convolution, stride 1, 'same' zero padding; He-initialised weights.

    ``input_grad=False`` makes ``backward`` skip the input's gradient and return None
    (for a network's first layer, whose input is the image).
    """

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, rng=None,
                 dtype=np.float32, input_grad=True):
        super().__init__()
        self.input_grad = input_grad
        rng = np.random.default_rng() if rng is None else rng
        fan_in = in_channels * kernel_size * kernel_size
        w = rng.standard_normal((out_channels, in_channels, kernel_size, kernel_size))
        self.weight = Parameter((w * np.sqrt(2.0 / fan_in)).astype(dtype))
        self.bias = Parameter(np.zeros(out_channels, dtype)) if bias else None

    def forward(self, x):
        b = self.bias.data if self.bias is not None else None
        out, cache = F.conv2d_forward(x, self.weight.data, b, backward=self.training)
        self._keep(cache)
        return out

    def forward_folded(self, x, bn):
        """Inference: this convolution and batch norm ``bn`` after it, as one convolution."""
        w, b = batchnorm2d_fold(self.weight.data, self.bias.data if self.bias is not None else None,
                                bn.gamma.data, bn.beta.data, bn.running_mean, bn.running_var, bn.eps)
        self._keep(None)
        bn._keep(None)
        return F.conv2d_forward(x, w, b, backward=False)[0]

    def backward(self, dout):
        dx, dw, db = F.conv2d_backward(dout, _take(self), need_dx=self.input_grad)
        self.weight.grad = dw
        if self.bias is not None:
            self.bias.grad = db
        return dx


class BatchNorm2d(Module):
    """Per-channel batch normalisation with running statistics for inference."""

    buffers = ("running_mean", "running_var")

    def __init__(self, channels, momentum=0.1, eps=1e-5, beta_init=0.0, dtype=np.float32):
        super().__init__()
        self.gamma = Parameter(np.ones(channels, dtype))
        self.beta = Parameter(np.full(channels, beta_init, dtype))
        self.running_mean = np.zeros(channels, dtype)
        self.running_var = np.ones(channels, dtype)
        self.momentum, self.eps = momentum, eps

    def forward(self, x):
        out, cache = F.batchnorm2d_forward(x, self.gamma.data, self.beta.data, self.running_mean,
                                           self.running_var, self.training, self.momentum, self.eps)
        self._keep(cache)
        return out

    def backward(self, dout):
        dx, self.gamma.grad, self.beta.grad = F.batchnorm2d_backward(dout, _take(self))
        return dx


class ReLU(Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        out, cache = F.relu_forward(x)
        self._keep(cache)
        return out

    def backward(self, dout):
        return F.relu_backward(dout, _take(self))


class MaxPool2x2(Module):
    """2x2/2 ceil-mode max pooling; keeps ``indices`` and the input size for its unpool."""

    def __init__(self):
        super().__init__()
        self.indices = None
        self.input_shape = None

    def forward(self, x):
        out, self.indices = F.maxpool2x2_forward(x)
        self.input_shape = x.shape
        return out

    def backward(self, dout):
        return F.maxpool2x2_backward(dout, self.indices, self.input_shape)


class Unpool2x2(Module):
    """SegNet's upsampling: places values at the positions its paired ``pool`` recorded.

    The pool is a reference, not a child: its indices are read at forward time, so
    the encoder that owns the pool must run first.
    """

    def __init__(self, pool):
        super().__init__()
        self._pool = pool  # private: a link to the encoder's pool, not a child of this module

    def forward(self, x):
        return F.unpool2x2_forward(x, self._pool.indices, self._pool.input_shape)

    def backward(self, dout):
        return F.unpool2x2_backward(dout, self._pool.indices)


class ConvTranspose2d(Module):
    """Learned x2 upsampling (4x4 filters, stride 2, padding 1) to the size of a linked pool's
    input, initialised to bilinear interpolation as FCN does."""

    def __init__(self, channels, pool, dtype=np.float32):
        super().__init__()
        self.weight = Parameter(bilinear_upsample_weights(channels, 4, dtype))
        self._pool = pool  # a link to the encoder pool whose input size to restore

    def forward(self, x):
        out, cache = F.conv_transpose2d_forward(x, self.weight.data, self._pool.input_shape[2:])
        self._keep(cache)
        return out

    def backward(self, dout):
        dx, self.weight.grad = F.conv_transpose2d_backward(dout, _take(self))
        return dx


class DepthwiseConv2d(Module):
    """k x k convolution of each channel with its own filter, no bias; He-initialised."""

    def __init__(self, channels, kernel_size, rng=None, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        w = rng.standard_normal((channels, kernel_size, kernel_size)) * np.sqrt(2.0 / kernel_size ** 2)
        self.weight = Parameter(w.astype(dtype))

    def forward(self, x):
        out, cache = F.depthwise_conv2d_forward(x, self.weight.data)
        self._keep(cache)
        return out

    def backward(self, dout):
        dx, self.weight.grad = F.depthwise_conv2d_backward(dout, _take(self))
        return dx


class BilinearUpsample(Module):
    """Fixed bilinear upsampling to the size of a linked pool's input (nothing to learn)."""

    def __init__(self, pool):
        super().__init__()
        self._pool = pool

    def forward(self, x):
        out, cache = F.bilinear_upsample_forward(x, self._pool.input_shape)
        self._keep(cache)
        return out

    def backward(self, dout):
        return F.bilinear_upsample_backward(dout, _take(self))


class Dropout(Module):
    """Inverted dropout with drop probability ``p``: masks are drawn in training mode, and in
    eval mode too while ``sampling`` is on (Bayesian SegNet's Monte Carlo inference: batch
    norm uses its running statistics while dropout keeps drawing). Outside those it is the
    identity. The masks come from ``rng``, which :func:`seed_dropout` sets for every dropout
    layer of a model, so a seed fixes every mask of a run or of a Monte Carlo estimate.
    """

    def __init__(self, p=0.5):
        super().__init__()
        self.p = p
        self.sampling = False
        self.rng = None

    def forward(self, x):
        drawing = self.training or self.sampling
        if drawing and self.rng is None:
            raise RuntimeError("Dropout.forward: no random generator to draw masks with "
                               "(call tinysegnet.nn.seed_dropout(model, seed) first)")
        out, cache = F.dropout_forward(x, self.p, drawing, self.rng)
        self._keep(cache)
        return out

    def backward(self, dout):
        return F.dropout_backward(dout, _take(self))


def dropout_layers(model):
    """The model's :class:`Dropout` layers, in the order its forward pass meets them."""
    return [m for m in model.modules() if isinstance(m, Dropout)]


def seed_dropout(model, seed):
    """Give every dropout layer of ``model`` one generator, ``xp.random.default_rng(seed)`` on
    the device of the model's parameters, shared so the layers draw one stream in turn.
    A model without dropout is left as it is."""
    layers = dropout_layers(model)
    if layers:
        rng = xp_of(model.parameters()[0].data).random.default_rng(seed)
        for layer in layers:
            layer.rng = rng


def set_sampling(model, on):
    """Keep dropout drawing masks in eval mode (``on=True``: Monte Carlo dropout) or not."""
    for layer in dropout_layers(model):
        layer.sampling = on


class Sequential(Module):
    """Runs its layers in order; backward runs them in reverse. In inference, a convolution
    followed by batch norm runs as one convolution with the normalisation folded into its
    weights (``functional.batchnorm.batchnorm2d_fold``), and a ReLU after them rectifies that
    convolution's new output in place: the same function, two passes and two arrays less."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)

    def forward(self, x):
        layers, i = self.layers, 0
        while i < len(layers):
            if _foldable(self, layers, i):
                x = layers[i].forward_folded(x, layers[i + 1])
                i += 2
                if i < len(layers) and _rectifies_in_place(layers[i]):
                    x = relu_inplace(x)  # the folded convolution's output is a new array of ours
                    i += 1
            else:
                x = layers[i].forward(x)
                i += 1
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


def _foldable(sequence, layers, i):
    """Whether layers i and i + 1 are a convolution and batch norm to fold: in inference only,
    and only while batch norm's forward is the library's (``functional.use`` may replace it)."""
    return (not sequence.training and i + 1 < len(layers) and isinstance(layers[i], Conv2d)
            and isinstance(layers[i + 1], BatchNorm2d)
            and F.batchnorm2d_forward is batchnorm2d_forward)


def _rectifies_in_place(layer):
    """Whether a ReLU after a folded convolution may run in place: while ReLU's forward is the
    library's (``functional.use`` may replace it)."""
    return isinstance(layer, ReLU) and F.relu_forward is relu_forward


def _take(layer):
    """The cache of the last training-mode forward pass, or a clear error."""
    if layer._cache is None:
        raise RuntimeError(f"{type(layer).__name__}.backward: no forward pass in training mode "
                           "to go back through (call model.train() before forward)")
    return layer._cache
