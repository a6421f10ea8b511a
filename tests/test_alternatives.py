"""The generated alternatives (autograder/alternatives.py) are what they claim: correct functions
written in the ways a fair test must accept, so that a lost point on one is a bug in the tests."""

from __future__ import annotations

import numpy as np

from autograder.alternatives import KINDS, copies, float32, scribble, views
from autograder.config import ASSIGNMENTS
from autograder.submissions import answer_cells, load_variants


def forward(x, cache):
    return 2 * x, (x, cache)


def test_scribble_overwrites_the_arguments_of_a_test_call_but_not_its_result():
    f = scribble(forward, ["student_loop"])
    x, flags, ids = np.ones(3), np.array([True, False]), np.array([4, 5])
    out, (x_kept, _) = f(x, [flags, ids])
    assert np.all(np.isnan(x)) and flags.tolist() == [False, True] and ids.tolist() == [-1, -1]
    assert out.tolist() == [2, 2, 2] and x_kept.tolist() == [1, 1, 1]


def test_scribble_spares_the_students_own_callers():
    f = scribble(forward, ["student_loop"])

    def student_loop(x):
        return f(x, None)[0]

    x = np.ones(2)
    student_loop(x)
    assert x.tolist() == [1, 1]


def test_copies_views_and_float32_keep_the_values():
    x = np.arange(6.0).reshape(2, 3)
    out, (kept, _) = copies(forward)(x, None)
    assert not np.shares_memory(kept, x) and out.tolist() == (2 * x).tolist()
    out, _ = views(forward)(x, None)
    assert not out.flags.owndata and not out.flags.c_contiguous and out.tolist() == (2 * x).tolist()
    out, (kept, _) = float32(forward)(x, None)
    assert out.dtype == kept.dtype == np.float32 and out.tolist() == (2 * x).tolist()
    assert float32(lambda v: float(v.sum()))(x).dtype == np.float32


def test_every_graded_function_gets_every_kind_unless_it_opts_out_with_a_reason():
    for assignment in ASSIGNMENTS:
        generated = {v.name for v in load_variants(assignment) if v.extra.get("generated")}
        for cell, _, names in answer_cells(assignment):
            kinds = {k for k in KINDS if f"{cell}~{k}" in generated}
            if not names:
                assert not kinds, f"{assignment}:{cell} is a quiz answer"
            else:
                assert kinds >= {"copies", "views"}, f"{assignment}:{cell} lacks {kinds}"
