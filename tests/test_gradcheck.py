"""The shared gradient checker agrees with gradients known in closed form, and refuses float32."""

import numpy as np
import pytest

from rnncourse.gradcheck import numerical_gradient, numerical_gradient_array, rel_error


def test_scalar_function_gradient():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    A = rng.standard_normal((3, 4))
    grad = numerical_gradient(lambda: np.sum(A * np.sin(x)), x)
    assert rel_error(grad, A * np.cos(x)) < 1e-8


def test_vector_jacobian_product_of_a_matrix_product():
    rng = np.random.default_rng(1)
    x, W = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))
    dout = rng.standard_normal((2, 4))
    before = x.copy()
    grad = numerical_gradient_array(lambda: x @ W.T, x, dout)
    assert rel_error(grad, dout @ W) < 1e-8
    np.testing.assert_array_equal(x, before)  # x is put back exactly


def test_a_wrong_gradient_is_visible():
    x = np.linspace(-1, 1, 5)
    grad = numerical_gradient(lambda: np.sum(np.tanh(x)), x)
    assert rel_error(grad, 1 - np.tanh(x) ** 2) < 1e-8
    assert rel_error(grad, 1 - np.tanh(x)) > 1e-2  # forgetting the square is caught


def test_float32_is_refused():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: 0.0, np.zeros(3, dtype=np.float32))
