"""What every model shares: it takes any input size (the rules a command line used to add
about smallest sizes were wrong)."""

import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet import nn
from tinysegnet.models import MODELS, build


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_takes_any_size_down_to_one_pixel(name):
    """Ceil-mode pooling never reaches an empty map, so no model needs a smallest input: a
    training step at 1x2 and 3x4 gives logits of the input's size and finite gradients."""
    for h, w in ((1, 2), (3, 4)):
        model = build(name, seed=0).train()
        nn.seed_dropout(model, 0)
        x = np.random.default_rng(0).standard_normal((2, 3, h, w)).astype(np.float32)
        logits = model.forward(x)
        assert logits.shape == (2, 11, h, w)
        _, dlogits = F.softmax_cross_entropy(logits, np.zeros((2, h, w), np.uint8), None, 11)
        model.backward(dlogits)
        assert all(np.isfinite(p.grad).all() for p in model.parameters())
