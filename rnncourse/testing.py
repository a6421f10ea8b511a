"""Checks with helpful failure messages, used by the notebooks' visible and hidden tests.

A bare ``assert np.allclose(a, b)`` tells a student only that *something* is wrong. These helpers
say what: the wrong type, the wrong shape, which element differs and by how much, which time steps
are right and which are not, which block of a fused array, which likely mistake it matches.

Everything a test needs lives here once; notebooks import it (``from rnncourse.testing import
...``) instead of defining their own copies.

Tolerance policy
----------------
One rule, used by every check below unless a test passes ``rtol``/``atol`` itself for a reason it
states in a comment (an exact integer count, a value that is exact by construction):

* **float64 results** (``TOLERANCE["float64"]``: ``rtol=1e-5``, ``atol=1e-8``). Equivalent formulas
  differ by far less: another summation order or einsum instead of ``@`` by about 1e-15 relative;
  the small eps terms PyTorch adds (``clip_grad_norm_`` divides by ``norm + 1e-6``) by about 1e-6
  relative when the norms are of order one. Real mistakes (a transposed weight, a missing term, a
  wrong scale) move results by 1e-2 or more; the buggy fixtures in ``autograder/fixtures`` prove
  each test still catches them at this tolerance.
* **float32 results** (``TOLERANCE["float32"]``: ``rtol=1e-4``, ``atol=1e-6``): a function that
  keeps float32 inputs in float32 (as the course's references do, "float32 in, float32 out") or
  computes in single precision rounds at about 6e-8 per operation; after the few hundred
  operations of a test problem that is a few 1e-6 relative, well inside 1e-4.
* **against central differences** (``numerical_vjp``, ``rnncourse.gradcheck``): float64 with
  ``h = 1e-6`` is accurate to about 1e-9 absolute on the course's test problems, so the float64 row
  applies unchanged.

The tolerance follows the dtype of the *actual* value (the student's), since that is what decides
how exact it can be.

Array arguments
---------------
Functions in this course do not modify their array arguments, but a grade never depends on it:
:func:`call` hands the function deep copies of its arguments, so every expected value is computed
from pristine inputs, and a function that changed an argument in place is named in a printed note
(stdout, not an error), never reported as a wrong value.
"""

from __future__ import annotations

import contextlib
import linecache
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence

import numpy as np

from rnncourse.gradcheck import numerical_gradient_array

__all__ = [
    "TOLERANCE", "TestFailure", "tolerance", "check_close", "check_equal", "check_shape",
    "check_pair", "check_scalar", "check_tuple", "check_grad", "check_grads", "call",
    "numerical_vjp", "replaced", "numerical_twins", "pristine", "find_step",
]

# The tolerance policy (see the module docstring): (rtol, atol) by the dtype of the actual value.
TOLERANCE: dict[str, tuple[float, float]] = {
    "float64": (1e-5, 1e-8),
    "float32": (1e-4, 1e-6),
}


def tolerance(actual) -> tuple[float, float]:
    """``(rtol, atol)`` of the course's tolerance policy for a value of ``actual``'s dtype.

    float16/float32 values (numpy arrays or numpy scalars) get the float32 row, everything else
    (float64, Python floats, integers) the float64 row.
    """
    dtype = getattr(actual, "dtype", None)
    if dtype is None and isinstance(actual, list | tuple) and actual:
        dtype = getattr(actual[0], "dtype", None)
    if dtype is not None and np.issubdtype(dtype, np.floating) and np.finfo(dtype).bits <= 32:
        return TOLERANCE["float32"]
    return TOLERANCE["float64"]


_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep


class TestFailure(AssertionError):
    """A failed check. In a notebook its message comes first, not after a traceback.

    IPython shows an exception through its ``_render_traceback_`` when it has one; this one shows
    the message, then the one line of the test cell that ran the check. The frames inside this
    module, which say nothing to a student, are left out.
    """

    __test__ = False  # not a pytest test class

    def _render_traceback_(self) -> list[str]:
        lines = [f"\x1b[0;31mAssertionError\x1b[0m: {self}"]
        tb = self.__traceback__
        where = None
        while tb is not None:  # the last frame outside rnncourse: the test line that checked
            filename = tb.tb_frame.f_code.co_filename
            if not os.path.abspath(filename).startswith(_HERE):
                where = (filename, tb.tb_lineno)
            tb = tb.tb_next
        if where is not None:
            line = linecache.getline(*where).strip()
            if line:
                lines.append(f"(checked by line {where[1]} of the cell: {line})")
        return lines


# Shown to students (Jupyter's error name, nbgrader's feedback) as the AssertionError it is.
TestFailure.__name__ = "AssertionError"


def _fail(message: str) -> None:
    __tracebackhide__ = True
    raise TestFailure(message)


def _as_array(value, name: str) -> np.ndarray:
    if value is None:
        _fail(f"{name} is None: did the function forget to `return` its result?")
    if isinstance(value, tuple | list) and len(value) and isinstance(value[0], np.ndarray):
        _fail(f"{name} is a {type(value).__name__} of {len(value)} arrays; expected one array.")
    try:
        return np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic objects
        _fail(f"{name} cannot be converted to an array: {exc}")


def check_shape(value, shape: Sequence[int], name: str = "value") -> None:
    """Fail with a readable message unless ``value`` has exactly ``shape``.

    Raises TestFailure (an AssertionError).
    """
    arr = _as_array(value, name)
    if tuple(arr.shape) != tuple(shape):
        hint = (" It has the shape of the transpose: is it transposed?"
                if arr.ndim == 2 and tuple(arr.shape) == tuple(shape)[::-1] else "")
        _fail(f"{name} has shape {tuple(arr.shape)}, expected {tuple(shape)}.{hint}")


def _plain(value):
    """A numpy scalar as the Python value it holds, so messages read `3`, not `np.int64(3)`."""
    return value.item() if isinstance(value, np.generic) else value


def _first_mismatch(bad: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(bad)[0])


def _digits(a: float, b: float) -> int:
    """Significant digits that show the difference between two close numbers (6 to 17)."""
    scale = max(abs(a), abs(b))
    if not (math.isfinite(a) and math.isfinite(b)) or scale == 0 or a == b:
        return 6
    rel = abs(a - b) / scale
    return int(min(17, max(6, math.ceil(-math.log10(rel)) + 2)))


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}g}"


def _ranges(indices: Sequence[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    out, start, prev = [], None, None
    for i in list(indices) + [None]:
        if start is None:
            start = prev = i
        elif i is not None and i == prev + 1:
            prev = i
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = i
    return ", ".join(out)


def _describe_axes(bad: np.ndarray, time_axis: int | None, blocks: Sequence[str] | None,
                   block_axis: int, recurrent: bool = True) -> str:
    """Which time steps and which blocks of a fused array hold the differences."""
    parts = []
    if time_axis is not None and bad.ndim > time_axis:
        axes = tuple(a for a in range(bad.ndim) if a != time_axis)
        wrong = np.flatnonzero(bad.any(axis=axes))
        right = np.flatnonzero(~bad.any(axis=axes))
        T = bad.shape[time_axis]
        if len(right) == 0:
            parts.append(f"every time step differs (t = 0-{T - 1})")
        else:
            verb = "is" if len(right) == 1 else "are"
            parts.append(f"time steps t = {_ranges(wrong)} differ, t = {_ranges(right)} {verb} "
                         "right")
            if recurrent and list(right) == [T - 1]:
                parts.append("only the last step is right: is the gradient carried back from "
                             "step t + 1 (dh_prev of the step after) missing?")
            elif recurrent and list(right) == [0] and T > 1:
                parts.append("only the first step is right: is the state carried forward from "
                             "step t - 1 used?")
    if blocks and bad.ndim > block_axis and bad.shape[block_axis] % len(blocks) == 0:
        size = bad.shape[block_axis] // len(blocks)
        axes = tuple(a for a in range(bad.ndim) if a != block_axis)
        per_row = bad.any(axis=axes)
        wrong = [b for i, b in enumerate(blocks) if per_row[i * size:(i + 1) * size].any()]
        right = [b for b in blocks if b not in wrong]
        plural = len(wrong) > 1
        what = f"block{'s' if plural else ''} {', '.join(wrong)} differ{'' if plural else 's'}"
        if right:
            what += f"; block{'s' if len(right) > 1 else ''} {', '.join(right)} "
            what += "is right" if len(right) == 1 else "are right"
        rows = ", ".join(f"{b} = [{i * size}:{(i + 1) * size}]" for i, b in enumerate(blocks))
        parts.append(f"{what} (along axis {block_axis}: {rows})")
    return "; ".join(parts)


def check_close(
    actual,
    expected,
    name: str = "value",
    *,
    rtol: float | None = None,
    atol: float | None = None,
    time_axis: int | None = None,
    blocks: Sequence[str] | None = None,
    block_axis: int = 0,
    likely: Mapping[str, object] | None = None,
    recurrent: bool = True,
) -> None:
    """Fail unless ``actual`` matches ``expected`` elementwise within the tolerance policy.

    actual, expected: arrays (or numbers) of the same shape; ``expected`` is computed in float64.
    rtol, atol: override the policy's (:func:`tolerance`) for this check only.
    time_axis: the axis of time steps, to say which steps are right and which are not.
    recurrent: with ``time_axis``, whether the steps are linked through time (a recurrence), so
        "only the last step is right" points at a missing carried gradient; False for per-step
        arrays that are independent across time (a masked loss).
    blocks: the names of the equal blocks a fused array is made of along ``block_axis`` (for
        example ``("r", "z", "n")`` for the GRU's stacked weights), to say which block differs.
    likely: ``{description: value}`` of likely mistakes: if ``actual`` matches one of them, the
        message names it ("it equals the result with the transposed weight Wh.T").
    Raises TestFailure (an AssertionError) naming the first element that differs, the largest
    difference, how many elements are off, and the steps/blocks/mistake above when given.
    """
    __tracebackhide__ = True
    exp = np.asarray(expected, dtype=float)
    act = _as_array(actual, name)
    if act.dtype == object or not np.issubdtype(act.dtype, np.number):
        _fail(f"{name} has dtype {act.dtype}; expected numbers.")
    if np.iscomplexobj(act):
        _fail(f"{name} is complex ({act.dtype}); expected real numbers.")
    policy_rtol, policy_atol = tolerance(act)
    rtol = policy_rtol if rtol is None else rtol
    atol = policy_atol if atol is None else atol
    if (act.ndim == 2 and act.shape != exp.shape and act.shape == exp.shape[::-1]
            and np.allclose(act.T.astype(float), exp, rtol, atol)):
        _fail(f"{name} has shape {tuple(act.shape)}, expected {tuple(exp.shape)}: it is the "
              "transpose of the right value.")
    check_shape(act, exp.shape, name)
    actf = act.astype(float)
    if np.isnan(actf).any() and not np.isnan(exp).any():
        idx = _first_mismatch(np.isnan(actf))
        _fail(f"{name} contains NaN (first at index {idx}): an overflow or a 0/0 somewhere?")
    bad = ~np.isclose(actf, exp, rtol=rtol, atol=atol)
    if not bad.any():
        return
    idx = _first_mismatch(bad)
    where = f" at index {idx}" if idx else ""
    got, want = float(actf[idx]), float(exp[idx])
    digits = _digits(got, want)
    diff = np.abs(actf - exp)
    rel = f"relative difference {abs(got - want) / abs(want):.2g}; " if want else ""
    message = (f"{name} differs from the expected value{where}: got {_number(got, digits)}, "
               f"expected {_number(want, digits)} ({rel}the tolerance is rtol={rtol:g}, "
               f"atol={atol:g}). {int(bad.sum())} of {bad.size} elements differ; largest "
               f"difference {np.nanmax(diff):.3g}.")
    located = _describe_axes(bad, time_axis, blocks, block_axis, recurrent)
    if located:
        message += f" {located[0].upper()}{located[1:]}"
        message += "" if located.endswith("?") else "."
    hint = _diagnose(actf, exp, rtol, atol, likely)
    if hint:
        message += f" {hint}"
    _fail(message)


def _diagnose(a: np.ndarray, e: np.ndarray, rtol: float, atol: float,
              likely: Mapping[str, object] | None) -> str:
    """A sentence naming the likely mistake, or ''."""
    for description, value in (likely or {}).items():
        value = np.asarray(value, dtype=float)
        if value.shape == a.shape and np.allclose(a, value, rtol, atol):
            return f"It equals {description}."
    if a.ndim == 2 and a.shape == e.shape[::-1] and np.allclose(a.T, e, rtol, atol):
        return "It is the transpose of the right value."
    if a.shape == e.shape and np.any(e) and np.allclose(a, -e, rtol, atol):
        return "It has the wrong sign."
    if a.shape == e.shape and np.any(e):
        ratio = float(np.sum(a * e) / np.sum(e * e))
        if ratio and np.allclose(a, ratio * e, rtol, atol):
            return f"It is {ratio:.4g} times the right value."
    return ""


def check_equal(actual, expected, name: str = "value") -> None:
    """Exact comparison for integer, boolean or string arrays (indices, masks, tokens).

    Raises TestFailure (an AssertionError) naming the first element that differs.
    """
    __tracebackhide__ = True
    exp = np.asarray(expected)
    act = _as_array(actual, name)
    check_shape(act, exp.shape, name)
    bad = act != exp
    if np.any(bad):
        bad = np.asarray(bad)
        idx = _first_mismatch(bad) if bad.ndim else ()
        where = f" at index {idx}" if idx else ""
        _fail(f"{name} differs{where}: got {_plain(act[idx])!r}, expected {_plain(exp[idx])!r} "
              f"({int(bad.sum())} of {bad.size} elements differ).")


def check_scalar(actual, expected: float, name: str = "value", *, rtol: float | None = None,
                 atol: float | None = None) -> None:
    """A float result against ``expected`` within the tolerance policy; shape () and (1,) accepted.

    Raises TestFailure (an AssertionError) with enough digits to show the difference.
    """
    __tracebackhide__ = True
    arr = _as_array(actual, name)
    if arr.shape not in ((), (1,)):
        _fail(f"{name} should be a single number, got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        _fail(f"{name} should be a real number, got {type(actual).__name__} ({arr.dtype}).")
    policy_rtol, policy_atol = tolerance(arr)
    rtol = policy_rtol if rtol is None else rtol
    atol = policy_atol if atol is None else atol
    value = float(arr.reshape(()))
    if not np.isclose(value, expected, rtol=rtol, atol=atol):
        digits = _digits(value, float(expected))
        _fail(f"{name} is {_number(value, digits)}, expected {_number(float(expected), digits)} "
              f"(the tolerance is rtol={rtol:g}, atol={atol:g}).")


def check_tuple(result, names: Sequence[str], function: str) -> tuple:
    """Unpack the tuple ``function`` returned, or say clearly what it returned instead.

    names: the names of the entries, e.g. ``("dx_t", "dh_prev", "dWx", "dWh", "db")``.
    Returns ``result`` (a tuple of ``len(names)`` entries); raises TestFailure otherwise.
    """
    __tracebackhide__ = True
    if not isinstance(result, tuple) or len(result) != len(names):
        kind = type(result).__name__
        if isinstance(result, tuple | list):
            kind += f" of length {len(result)}"
        _fail(f"{function} must return the tuple ({', '.join(names)}); it returned a {kind}.")
    return result


def check_pair(result, name: str):
    """Unpack the course's ``out, cache = *_forward(...)`` contract with a clear error."""
    __tracebackhide__ = True
    if not isinstance(result, tuple) or len(result) != 2:
        kind = type(result).__name__
        _fail(f"{name} must return a pair (out, cache); it returned a {kind}"
              + (f" of length {len(result)}" if isinstance(result, tuple | list) else "") + ".")
    return result


def check_grad(actual, expected, name: str, **kwargs) -> None:
    """A gradient against its expected (reference or central-difference) value.

    Same arguments as :func:`check_close` (``time_axis``, ``blocks``, ``likely`` say where and
    why it is wrong); the message also says when the gradient is transposed, of the wrong sign or
    a multiple of the right one. Raises TestFailure.
    """
    __tracebackhide__ = True
    check_close(actual, expected, name, **kwargs)


def check_grads(grads, expected: Mapping[str, object], name: str, **kwargs) -> None:
    """A dict of gradients: the keys of ``expected``, each gradient checked with check_grad."""
    __tracebackhide__ = True
    if not isinstance(grads, dict) or set(grads) != set(expected):
        got = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
        _fail(f"{name} must be a dict with the keys {sorted(expected)}; got {got}.")
    for key in expected:
        head, sep, rest = name.partition(" ")
        label = f'{head}["{key}"]' + (f" {rest}" if sep else "")
        check_grad(grads[key], expected[key], label, **kwargs)


# --- calling a student's function --------------------------------------------------------------


def pristine(value):
    """A deep copy of ``value``: arrays copied, through tuples, lists and dicts; other objects
    kept. What :func:`call` hands a student's function, and what a test keeps for itself."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(pristine(v) for v in value)
    if isinstance(value, list):
        return [pristine(v) for v in value]
    if isinstance(value, dict):
        return {k: pristine(v) for k, v in value.items()}
    return value


def _arrays(value, path: str) -> Iterator[tuple[str, np.ndarray]]:
    if isinstance(value, np.ndarray):
        yield path, value
    elif isinstance(value, tuple | list):
        for i, v in enumerate(value):
            yield from _arrays(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _arrays(v, f"{path}[{k!r}]")


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


# (function, changed arguments) already noted in this kernel: one note each, not one per call.
# Kept across importlib.reload (autograder.integrity.protect reloads this module before hidden
# tests), so the hidden part does not repeat the visible part's note.
_NOTED: set[tuple[str, tuple[str, ...]]] = globals().get("_NOTED", set())


def call(function: Callable, *args, **kwargs):
    """``function(*args, **kwargs)`` with deep copies of the array arguments (see :func:`pristine`).

    The caller's arrays stay as they were, so expected values computed from them afterwards are
    right whatever the function did. If the function changed one of the copies in place, a note
    says which argument (printed, so it never costs a point: the course's convention is not to
    modify arguments, but no grade depends on it), once per function and set of arguments.
    Returns what ``function`` returned.
    """
    __tracebackhide__ = True
    given_args, given_kwargs = pristine(args), pristine(kwargs)
    result = function(*given_args, **given_kwargs)
    label = getattr(function, "__name__", "the function")
    params = _parameter_names(function, len(args))
    changed = [params[i] + path for i, a in enumerate(args)
               for (path, x), (_, y) in zip(_arrays(a, ""), _arrays(given_args[i], ""),
                                            strict=False) if not _same(x, y)]
    changed += [k + path for k, a in kwargs.items()
                for (path, x), (_, y) in zip(_arrays(a, ""), _arrays(given_kwargs[k], ""),
                                             strict=False) if not _same(x, y)]
    if changed and (label, tuple(changed)) not in _NOTED:
        _NOTED.add((label, tuple(changed)))
        print(f"Note: {label} changed its argument{'s' if len(changed) > 1 else ''} "
              f"{', '.join(f'`{c}`' for c in changed[:4])}{' ...' if len(changed) > 4 else ''} "
              "in place. It costs no points (the tests give it copies), but a caller that uses "
              "its arrays after the call would be surprised: work on a copy.", file=sys.stdout)
    return result


def _parameter_names(function: Callable, n: int) -> list[str]:
    import inspect

    try:
        names = [p.name for p in inspect.signature(function).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"argument {i + 1}" for i in range(n)]


def find_step(step_cache, caches: Sequence, function: str = "the function") -> int:
    """The t for which ``step_cache`` holds the values of ``caches[t]``.

    Compared by value within the tolerance of its dtype, never by identity, so a copy of
    ``caches[t]``, a rebuilt tuple or a float32 version of it is found too. Stand-ins for a
    student's cell backward use it to know which step they are called for.
    Raises TestFailure when it is none of them.
    """
    __tracebackhide__ = True
    for t, expected in enumerate(caches):
        if isinstance(step_cache, tuple | list) and len(step_cache) == len(expected) and all(
                np.shape(a) == np.shape(e) and np.allclose(a, e, *tolerance(np.asarray(a)))
                for a, e in zip(step_cache, expected, strict=True)):
            return t
    _fail(f"{function} was called with a cache that is none of the step caches cache[t]: hand "
          "it the cache of the step, as the forward pass made it")


# --- numerical twins ---------------------------------------------------------------------------


def numerical_vjp(forward: Callable, args: Sequence, dout) -> tuple[np.ndarray, ...]:
    """Central-difference gradients of ``sum(dout * forward(*args))`` w.r.t. every argument.

    args: the arrays ``forward`` takes, copied to float64 first (the caller's stay untouched).
    dout: the upstream gradient, of the shape of ``forward``'s result.
    Returns one float64 array per argument, of its shape (``rnncourse.gradcheck``).
    """
    args = [np.array(a, dtype=float) for a in args]
    # forward gets copies: one that changed its arguments would corrupt the perturbed ones
    return tuple(numerical_gradient_array(lambda: forward(*pristine(args)), a, dout)
                 for a in args)


@contextlib.contextmanager
def replaced(namespace: MutableMapping, **stand_ins):
    """While the block runs, ``namespace[name]`` is ``stand_ins[name]``; then it is put back.

    namespace: a notebook's ``globals()``. A visible test of ``rnn_backward`` runs it with a
    stand-in for ``rnn_cell_backward``, so a bug in one function costs the points of that one.
    """
    missing = object()
    saved = {name: namespace.get(name, missing) for name in stand_ins}
    namespace.update(stand_ins)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value


def numerical_twins(namespace: MutableMapping, *names: str):
    """:func:`replaced` with each of ``names`` replaced by ``namespace["numerical_" + name]``,
    its numerical twin (central differences of the forward pass: slow, but surely right)."""
    return replaced(namespace, **{name: namespace["numerical_" + name] for name in names})

