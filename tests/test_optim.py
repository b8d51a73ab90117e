import numpy as np
import pytest

from tinysegnet.nn import Parameter
from tinysegnet.optim import SGD


def test_one_step_by_hand():
    p = Parameter(np.array([1.0, -2.0]))
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    p.grad = np.array([0.2, 0.4])
    opt.step()  # v = g + wd*p = [0.7, -0.6]; p -= 0.1 v
    np.testing.assert_allclose(p.data, [0.93, -1.94])
    p.grad = np.array([0.0, 0.0])
    opt.step()  # v = 0.9 v + wd*p = [0.63 + 0.465, -0.54 - 0.97]
    np.testing.assert_allclose(p.data, [0.93 - 0.1 * 1.095, -1.94 + 0.1 * 1.51])


def test_agrees_with_torch_sgd(rng):
    torch = pytest.importorskip("torch")
    w0 = rng.standard_normal((3, 4)).astype(np.float32)
    grads = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(5)]
    p = Parameter(w0.copy())
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4)
    tp = torch.nn.Parameter(torch.tensor(w0))
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9, weight_decay=5e-4)
    for g in grads:
        p.grad = g.copy()
        opt.step()
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="lr"):
        SGD([], lr=0)


def test_state_dict_roundtrip():
    p = Parameter(np.ones(2))
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(2)
    opt.step()
    other = SGD([Parameter(np.ones(2))], lr=0.1, momentum=0.9)
    other.load_state_dict(opt.state_dict())
    np.testing.assert_array_equal(other.velocity[0], opt.velocity[0])
    assert other.velocity[0] is not opt.velocity[0]
