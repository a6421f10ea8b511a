"""The opening of every hidden-test region, in one call.

Each hidden-test region of a source notebook starts with::

    from autograder.hidden import begin, substituted
    _ref = begin(globals(), "03_bptt")

``begin`` restores the test environment (:func:`autograder.integrity.protect`) and returns the
reference solution of the assignment (:func:`autograder.reference.load_reference`). Keeping the two
steps behind one name means a change of either (where the reference comes from, what is restored)
is made here, not in the 77 hidden-test regions of the notebooks.
"""

from __future__ import annotations

import types
from collections.abc import MutableMapping

from autograder.integrity import protect
from autograder.reference import load_reference, substituted

__all__ = ["begin", "substituted"]


def begin(namespace: MutableMapping, assignment: str) -> types.ModuleType:
    """Restore the notebook's test environment in ``namespace`` (its ``globals()``) and return the
    reference module of ``assignment``. Raises TamperedEnvironment (an AssertionError) when numpy
    was tampered with, FileNotFoundError when the source notebook is missing."""
    protect(namespace, assignment)
    return load_reference(assignment)
