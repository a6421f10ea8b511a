"""The helpers behind the visible tests must say what is wrong, not just that something is."""

import numpy as np
import pytest

from rnncourse.testing import check_close, check_equal, check_pair, check_scalar, check_shape


def test_check_close_names_the_first_differing_element():
    expected = np.arange(6.0).reshape(2, 3)
    actual = expected.copy()
    actual[1, 2] += 0.5
    with pytest.raises(AssertionError, match=r"h .*index \(1, 2\).*got 5\.5, expected 5.*1 of 6"):
        check_close(actual, expected, "h")


def test_check_close_reports_shape_and_none():
    with pytest.raises(AssertionError, match=r"shape \(3, 2\), expected \(2, 3\)"):
        check_close(np.zeros((3, 2)), np.zeros((2, 3)), "probs")
    with pytest.raises(AssertionError, match="forget to `return`"):
        check_close(None, np.zeros(2), "h")
    with pytest.raises(AssertionError, match="NaN"):
        check_close(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))


def test_check_close_accepts_equal_values():
    check_close(np.ones(3) + 1e-12, np.ones(3))


def test_other_checks():
    check_equal(np.array([1, 2]), [1, 2])
    with pytest.raises(AssertionError, match=r"index \(1,\).*got 3, expected 2"):
        check_equal(np.array([1, 3]), [1, 2], "ids")
    with pytest.raises(AssertionError, match="single number"):
        check_scalar(np.ones(2), 1.0, "loss")
    with pytest.raises(AssertionError, match="is 2, expected 1"):
        check_scalar(2.0, 1.0, "loss")
    with pytest.raises(AssertionError, match=r"pair \(out, cache\).*ndarray"):
        check_pair(np.zeros(2), "rnn_forward")
    check_shape(np.zeros((2, 3)), (2, 3))
