"""Checks with helpful failure messages, used by the notebooks' visible and hidden tests.

A bare ``assert np.allclose(a, b)`` tells a student only that *something* is wrong.
These helpers say what: the wrong type, the wrong shape, or which element differs and by how much.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["check_close", "check_equal", "check_shape", "check_pair", "check_scalar"]


def _as_array(value, name: str) -> np.ndarray:
    if value is None:
        raise AssertionError(
            f"{name} is None: did the function forget to `return` its result?"
        )
    if isinstance(value, tuple | list) and len(value) and isinstance(value[0], np.ndarray):
        raise AssertionError(
            f"{name} is a {type(value).__name__} of {len(value)} arrays; expected one array."
        )
    try:
        return np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise AssertionError(f"{name} cannot be converted to an array: {exc}") from None


def check_shape(value, shape: Sequence[int], name: str = "value") -> None:
    """Fail with a readable message unless ``value`` has exactly ``shape``."""
    arr = _as_array(value, name)
    if tuple(arr.shape) != tuple(shape):
        raise AssertionError(
            f"{name} has shape {tuple(arr.shape)}, expected {tuple(shape)}."
        )


def _plain(value):
    """A numpy scalar as the Python value it holds, so messages read `3`, not `np.int64(3)`."""
    return value.item() if isinstance(value, np.generic) else value


def _first_mismatch(bad: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(bad)[0])


def check_close(
    actual,
    expected,
    name: str = "value",
    *,
    rtol: float = 1e-7,
    atol: float = 1e-10,
) -> None:
    """Fail unless ``actual`` matches ``expected`` elementwise within ``rtol``/``atol``.

    The message names the first element that differs, the largest difference, and how many
    elements are off, which is usually enough to tell a transposed matrix from a missing bias.
    """
    exp = np.asarray(expected, dtype=float)
    act = _as_array(actual, name)
    if act.dtype == object or not np.issubdtype(act.dtype, np.number):
        raise AssertionError(f"{name} has dtype {act.dtype}; expected numbers.")
    check_shape(act, exp.shape, name)
    act = act.astype(float)
    if np.isnan(act).any() and not np.isnan(exp).any():
        idx = _first_mismatch(np.isnan(act))
        raise AssertionError(
            f"{name} contains NaN (first at index {idx}): an overflow or a 0/0 somewhere?"
        )
    bad = ~np.isclose(act, exp, rtol=rtol, atol=atol)
    if bad.any():
        idx = _first_mismatch(bad)
        where = f" at index {idx}" if idx else ""
        diff = np.abs(act - exp)
        raise AssertionError(
            f"{name} differs from the expected value{where}: got {act[idx]:.6g}, "
            f"expected {exp[idx]:.6g}. {int(bad.sum())} of {bad.size} elements differ; "
            f"largest difference {np.nanmax(diff):.3g}."
        )


def check_equal(actual, expected, name: str = "value") -> None:
    """Exact comparison for integer, boolean or string arrays (indices, masks, tokens)."""
    exp = np.asarray(expected)
    act = _as_array(actual, name)
    check_shape(act, exp.shape, name)
    bad = act != exp
    if np.any(bad):
        bad = np.asarray(bad)
        idx = _first_mismatch(bad) if bad.ndim else ()
        where = f" at index {idx}" if idx else ""
        raise AssertionError(
            f"{name} differs{where}: got {_plain(act[idx])!r}, expected {_plain(exp[idx])!r} "
            f"({int(bad.sum())} of {bad.size} elements differ)."
        )


def check_scalar(actual, expected: float, name: str = "value", *, rtol=1e-7, atol=1e-10):
    """A float result, compared with a tolerance; arrays of shape () are accepted."""
    arr = _as_array(actual, name)
    if arr.shape not in ((), (1,)):
        raise AssertionError(f"{name} should be a single number, got shape {arr.shape}.")
    value = float(arr.reshape(()))
    if not np.isclose(value, expected, rtol=rtol, atol=atol):
        raise AssertionError(f"{name} is {value:.6g}, expected {expected:.6g}.")


def check_pair(result, name: str):
    """Unpack the course's ``out, cache = *_forward(...)`` contract with a clear error."""
    if not isinstance(result, tuple) or len(result) != 2:
        kind = type(result).__name__
        raise AssertionError(
            f"{name} must return a pair (out, cache); it returned a {kind}"
            + (f" of length {len(result)}" if isinstance(result, tuple | list) else "")
            + "."
        )
    return result
