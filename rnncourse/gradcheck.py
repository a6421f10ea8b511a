"""Central-difference gradient checks in float64, shared by every assignment with a backward pass.

``numerical_gradient(f, x)`` estimates d f / d x for a scalar function; ``numerical_gradient_array
(f, x, dout)`` estimates the vector-Jacobian product sum(dout * f(x)) / d x for an array-valued f,
which is exactly what a ``*_backward(dout, cache)`` returns. Both perturb ``x`` in place and put
it back, so ``f`` may close over ``x``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["numerical_gradient", "numerical_gradient_array", "rel_error"]


def _check_float64(x: np.ndarray) -> None:
    if x.dtype != np.float64:
        raise TypeError(
            f"gradient checks need float64 arrays (got {x.dtype}): float32 central differences "
            "are too noisy to tell a bug from round-off"
        )


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f() / d x by central differences; ``f`` takes no argument and reads ``x``."""
    _check_float64(x)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = float(f())
        x[i] = old - h
        minus = float(f())
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def numerical_gradient_array(
    f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-6
) -> np.ndarray:
    """d sum(dout * f()) / d x: the gradient a backward pass computes for upstream ``dout``."""
    return numerical_gradient(lambda: np.sum(np.asarray(f()) * dout), x, h)


def rel_error(a, b, eps: float = 1e-12) -> float:
    """Largest elementwise relative error, the usual yardstick: < 1e-7 is right in float64."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(eps, np.abs(a) + np.abs(b))))
