import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet.gradcheck import check_gradients
from tinysegnet.models import VARIANTS, build
from tinysegnet.models.decoders import DecoderVariant, storage_multiplier


@pytest.mark.parametrize("variant", VARIANTS)
def test_whole_variant_gradient_check_float64(rng, variant):
    model = build(variant, n_classes=3, width=3, kernel=3, seed=2).astype(np.float64)
    x = rng.standard_normal((2, 3, 9, 10))
    labels = rng.integers(0, 3, (2, 9, 10))
    _, dlogits = F.softmax_cross_entropy(model.forward(x), labels)
    model.backward(dlogits)
    named = dict(model.named_parameters())
    errors = check_gradients(lambda **_: F.softmax_cross_entropy(model.forward(x), labels)[0],
                             {k: p.data for k, p in named.items()}, {k: p.grad for k, p in named.items()})
    assert max(errors.values()) < 1e-6


def test_parameters_follow_the_papers_pattern():
    n = {v: build(v).num_parameters() for v in ("segnet-basic",) + VARIANTS}
    assert n["bilinear"] == n["segnet-basic"] == n["segnet-basic-encoder-addition"]
    assert n["fcn-basic"] < n["fcn-basic-no-dim-reduction"] < n["segnet-basic"]
    assert n["segnet-basic-single-channel-decoder"] < n["segnet-basic"] / 2


def test_storage_multipliers_are_the_papers():
    """Table 1's storage multipliers: bits kept (indices at 2, floats at 32) over SegNet-Basic's."""
    ratio = {v: storage_multiplier(build(v), (360, 480)) for v in ("segnet-basic",) + VARIANTS}
    assert ratio["segnet-basic"] == ratio["segnet-basic-single-channel-decoder"] == 1
    assert ratio["bilinear"] == 0 and ratio["fcn-basic-no-addition"] == 0
    assert ratio["fcn-basic"] == pytest.approx(11, rel=0.02)
    assert ratio["fcn-basic-no-dim-reduction"] == pytest.approx(64, rel=0.02)
    assert ratio["segnet-basic-encoder-addition"] == pytest.approx(65, rel=0.02)


def test_unknown_variant():
    with pytest.raises(ValueError, match="unknown decoder variant"):
        DecoderVariant("fcn-fancy")
