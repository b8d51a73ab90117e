import numpy as np
import pytest

from tinysegnet import functional as F
from tinysegnet.gradcheck import (GradientCheckError, assert_gradients_close, check_gradients,
                                  numerical_gradient, relative_error)


def test_numerical_gradient_of_known_function(xp):
    x = xp.asarray(np.array([1.0, -2.0, 0.5]))
    grad = numerical_gradient(lambda: (x ** 3).sum(), x)
    np.testing.assert_allclose(grad.tolist(), (3 * x ** 2).tolist(), rtol=1e-8)
    assert x.tolist() == [1.0, -2.0, 0.5]  # restored


def test_relative_error():
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0
    assert relative_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0


def test_a_deliberately_wrong_backward_is_caught(rng):
    """The conv backward with its kernel left unflipped: the check must name dx and an element."""
    x = rng.standard_normal((1, 2, 5, 5))
    w = rng.standard_normal((2, 2, 3, 3))
    out, cache = F.conv2d_forward(x, w)
    dout = rng.standard_normal(out.shape)
    wrong_dx, _ = F.conv2d_forward(dout, np.ascontiguousarray(w.transpose(1, 0, 2, 3)))
    with pytest.raises(GradientCheckError, match=r"x: relative error .* at index \(0, \d, \d, \d\)"):
        check_gradients(lambda x: F.conv2d_forward(x, w)[0], dict(x=x), dict(x=wrong_dx), dout)


def test_a_single_wrong_element_is_located():
    numeric = np.ones((2, 3))
    analytic = numeric.copy()
    analytic[1, 2] = 1.01
    with pytest.raises(GradientCheckError, match=r"dgamma: .* at index \(1, 2\): analytic 1.01, numeric 1"):
        assert_gradients_close("dgamma", analytic, numeric)


def test_float32_is_refused():
    with pytest.raises(ValueError, match="float64"):
        numerical_gradient(lambda: 0.0, np.zeros(2, np.float32))


def test_shape_mismatch_is_reported():
    with pytest.raises(GradientCheckError, match="shape"):
        assert_gradients_close("w", np.zeros(3), np.zeros(4))
