import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet.gradcheck import check_gradients

from conftest import rel_close

K, VOID = 4, 4


def _case(xp, rng, with_void=True):
    logits = xp.asarray(rng.standard_normal((2, K, 3, 5)))
    labels = rng.integers(0, K, (2, 3, 5))
    if with_void:
        labels[0, 0, :3] = VOID
    return logits, xp.asarray(labels)


@pytest.mark.parametrize("weighted", [False, True])
def test_gradients(xp, rng, weighted):
    logits, labels = _case(xp, rng)
    weights = xp.asarray(rng.random(K) + 0.5) if weighted else None
    loss, dlogits = F.softmax_cross_entropy(logits, labels, weights, VOID)
    errors = check_gradients(lambda logits: F.softmax_cross_entropy(logits, labels, weights, VOID)[0],
                             dict(logits=logits), dict(logits=dlogits))
    assert errors["logits"] < 1e-6
    assert float(abs(dlogits[0, :, 0, :3]).max()) == 0  # void pixels send no gradient


def test_value_by_hand(xp):
    logits = xp.asarray(np.log(np.array([[[[1.0]], [[3.0]]], [[[2.0]], [[2.0]]]])))  # (2, 2, 1, 1)
    labels = xp.asarray(np.array([[[1]], [[7]]]))  # second pixel is void (7)
    weights = xp.asarray(np.array([1.0, 2.0]))
    loss, _ = F.softmax_cross_entropy(logits, labels, weights, ignore_index=7)
    assert float(loss) == pytest.approx(2.0 * -np.log(0.75) / 1)  # one valid pixel


def test_stable_for_huge_logits():
    logits = np.array([[[[1000.0]], [[-1000.0]]]])
    loss, d = F.softmax_cross_entropy(logits, np.array([[[0]]]))
    assert np.isfinite(loss) and loss == pytest.approx(0.0) and np.all(np.isfinite(d))


def test_bad_labels():
    logits = np.zeros((1, 3, 2, 2))
    with pytest.raises(ValueError, match="label 5 is outside \\[0, 3\\)"):
        F.softmax_cross_entropy(logits, np.array([[[0, 5], [1, 11]]]), ignore_index=11)
    with pytest.raises(ValueError, match="labels .* must be"):
        F.softmax_cross_entropy(logits, np.zeros((1, 2, 3), int))


@pytest.mark.parametrize("weighted", [False, True])
def test_agrees_with_torch(rng, weighted):
    torch = pytest.importorskip("torch")
    logits, labels = _case(np, rng)
    logits = logits.astype(np.float32)
    weights = (rng.random(K) + 0.5).astype(np.float32) if weighted else None
    loss, dlogits = F.softmax_cross_entropy(logits, labels, weights, VOID)
    tl = torch.tensor(logits, requires_grad=True)
    tw = torch.tensor(weights) if weighted else None
    tloss = torch.nn.functional.cross_entropy(tl, torch.tensor(labels), weight=tw, ignore_index=VOID)
    # PyTorch divides by the summed weights of valid pixels, we by their number.
    valid = labels != VOID
    factor = (weights[labels[valid]].sum() if weighted else valid.sum()) / valid.sum()
    (tloss * factor).backward()
    rel_close(np.array(loss), (tloss * factor).detach().numpy())
    rel_close(dlogits, tl.grad.numpy())
