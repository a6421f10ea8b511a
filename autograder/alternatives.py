"""Generated alternatives: each graded function written the ways a correct student may write it.

A fair test accepts every correct way to write a function. Some of those ways are the same for
every function, so instead of one hand-written fixture per function and per way, each graded
function of every assignment gets these generated alternatives (``autograder/submissions.py``
appends one wrapper line to the solution cell), and ``autograder/fixturecheck.py`` requires full
marks for each:

``scribble``
    calls the correct implementation, then overwrites every array argument (NaN for floats, -1
    for integers, flipped booleans). Proves no test reads an argument after the call, i.e. every
    expected value comes from pristine inputs. Only calls made by the tests scribble, not calls
    from the student's own other functions (the names in ``student_functions``), since a
    function that destroys its caller's weights breaks that caller for real.
``copies``
    returns deep copies of its results: no test relies on a result being a view of an input or
    of another result.
``views``
    returns every result array as a non-contiguous view into a larger buffer: no test relies on a
    result owning its memory or being contiguous.
``float32``
    computes in single precision: float arguments cast to float32, float results returned as
    float32 (as a student who writes ``np.zeros(..., dtype=np.float32)`` would). Proves the
    tolerances follow the policy of ``rnncourse/testing.py`` for float32 results.

A function whose contract is to change an argument (an optimizer step updating parameters in
place) opts out of ``scribble`` and ``float32`` in its fixture file, with the reason.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable

import numpy as np

from rnncourse.testing import pristine

KINDS = ("scribble", "copies", "views", "float32")


def _map_leaves(value, fn):
    """``value`` with every leaf (anything but a tuple, list or dict, through those) replaced by
    ``fn(leaf)``."""
    if isinstance(value, tuple):
        return tuple(_map_leaves(v, fn) for v in value)
    if isinstance(value, list):
        return [_map_leaves(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_leaves(v, fn) for k, v in value.items()}
    return fn(value)


def _scribble_on(value) -> None:
    if isinstance(value, np.ndarray):
        if not value.flags.writeable:
            return
        if np.issubdtype(value.dtype, np.inexact):
            value.fill(np.nan)
        elif value.dtype == bool:
            np.logical_not(value, out=value)
        elif np.issubdtype(value.dtype, np.integer):
            value.fill(-1)
    elif isinstance(value, tuple | list):
        for v in value:
            _scribble_on(v)
    elif isinstance(value, dict):
        for v in value.values():
            _scribble_on(v)


def scribble(function: Callable, student_functions: Iterable[str] = ()) -> Callable:
    """``function`` that overwrites its array arguments after computing its (copied) result."""
    own = set(student_functions)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        result = pristine(function(*args, **kwargs))
        if sys._getframe(1).f_code.co_name not in own:
            _scribble_on(args)
            _scribble_on(kwargs)
        return result

    return wrapper


def copies(function: Callable, student_functions: Iterable[str] = ()) -> Callable:
    """``function`` returning deep copies of its results."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return pristine(function(*args, **kwargs))

    return wrapper


def _strided_view(a):
    if not isinstance(a, np.ndarray):
        return a
    buffer = np.zeros((*a.shape, 2), dtype=a.dtype)
    buffer[..., 0] = a
    return buffer[..., 0]


def views(function: Callable, student_functions: Iterable[str] = ()) -> Callable:
    """``function`` returning every result array as a view into a larger buffer."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return _map_leaves(function(*args, **kwargs), _strided_view)

    return wrapper


def _single(value):
    """A float64 array or a float as float32; any other leaf as it is."""
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value.astype(np.float32)
    if isinstance(value, float | np.float64):
        return np.float32(value)
    return value


def float32(function: Callable, student_functions: Iterable[str] = ()) -> Callable:
    """``function`` computing in float32: float64 arrays in and out become float32."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        # scalar arguments (a max_norm, a temperature) stay as given; arrays, and floats inside
        # containers, become float32
        args = tuple(_map_leaves(a, _single) if isinstance(a, np.ndarray | list | tuple | dict)
                     else a for a in args)
        kwargs = {k: _map_leaves(v, _single) if isinstance(v, np.ndarray | list | tuple | dict)
                  else v for k, v in kwargs.items()}
        return _map_leaves(function(*args, **kwargs), _single)

    return wrapper


WRAPPERS = {"scribble": scribble, "copies": copies, "views": views, "float32": float32}
