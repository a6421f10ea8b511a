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


# -- the tolerance policy, the messages and call() (issue 12) -------------------------------------

from rnncourse.testing import (  # noqa: E402
    TOLERANCE,
    call,
    check_grad,
    numerical_vjp,
    pristine,
    tolerance,
)


def test_tolerance_follows_the_dtype_of_the_actual_value():
    assert tolerance(np.zeros(2)) == TOLERANCE["float64"]
    assert tolerance(np.zeros(2, np.float32)) == TOLERANCE["float32"]
    assert tolerance(np.float32(1.0)) == TOLERANCE["float32"]
    assert tolerance(1.0) == TOLERANCE["float64"]


def test_an_eps_term_as_in_pytorch_passes_and_a_real_mistake_fails():
    # clip_grad_norm_ scales by max_norm / (norm + 1e-6): 2e-7 relative for a norm of 5
    check_scalar(3.0 / (5.0 + 1e-6), 3.0 / 5.0, "scale")
    with pytest.raises(AssertionError, match=r"is 0\.6006, expected 0\.6\b"):
        check_scalar(0.6006, 0.6, "scale")


def test_float32_results_get_the_float32_tolerance():
    exact = np.linspace(-1, 1, 7)
    check_close((exact * (1 + 3e-6)).astype(np.float32), exact, "h")
    with pytest.raises(AssertionError):
        check_close(exact * (1 + 3e-4), exact, "h")
    with pytest.raises(AssertionError, match="tolerance is rtol=0.0001"):
        check_close((exact + 0.01).astype(np.float32), exact, "h")


def test_messages_print_enough_digits_to_show_the_difference():
    with pytest.raises(AssertionError, match=r"got 0\.60001, expected 0\.6 "):
        check_close(np.array([0.60001]), np.array([0.6]), "scale", rtol=1e-7)


def test_time_steps_blocks_and_likely_mistakes_are_named():
    expected = np.arange(1.0, 25.0).reshape(2, 4, 3)
    only_last = expected.copy()
    only_last[:, :3] *= 0.5
    with pytest.raises(AssertionError, match=r"t = 0-2 differ, t = 3 is right; only the last"):
        check_grad(only_last, expected, "dx", time_axis=1)
    fused = np.arange(1.0, 13.0).reshape(6, 2)
    z_wrong = fused.copy()
    z_wrong[2:4] = 0
    with pytest.raises(AssertionError, match=r"Block z differs; blocks r, n are right"):
        check_grad(z_wrong, fused, "dWx", blocks=("r", "z", "n"))
    Wh = np.array([[1.0, 2.0], [3.0, 4.0]])
    da = np.array([[1.0, -1.0]])
    with pytest.raises(AssertionError, match=r"It equals the result with the transposed weight"):
        check_grad(da @ Wh.T, da @ Wh, "dh_prev",
                   likely={"the result with the transposed weight Wh.T": da @ Wh.T})
    with pytest.raises(AssertionError, match="transpose of the right value"):
        check_grad(Wh.T, Wh, "dWh")


def test_failures_show_the_message_first_in_a_notebook():
    try:
        check_close(np.ones(2), np.zeros(2), "h")
    except AssertionError as err:
        shown = err._render_traceback_()
        assert type(err).__name__ == "AssertionError"
    assert shown[0].endswith("h differs from the expected value at index (0,): got 1, expected 0 "
                             "(the tolerance is rtol=1e-05, atol=1e-08). 2 of 2 elements differ; "
                             "largest difference 1.")
    assert "check_close(np.ones(2), np.zeros(2), \"h\")" in shown[1]


def test_call_hands_copies_and_notes_a_change_in_place(capsys):
    def backward(dh, cache):
        dh[:, 0] += 1.0  # the issue's `dh[:, t - 1] += dh_prev`
        cache[0][1][:] = 0.0
        return dh.sum()

    dh, cache = np.ones((2, 3)), [(np.ones(2), np.ones(2))]
    assert call(backward, dh, cache) == 8.0
    assert np.all(dh == 1.0) and np.all(cache[0][1] == 1.0)
    note = capsys.readouterr().out
    assert "backward changed its arguments `dh`, `cache[0][1]` in place" in note
    call(lambda x: x.sum(), dh)
    assert capsys.readouterr().out == ""


def test_pristine_copies_arrays_through_containers_and_numerical_vjp_is_safe():
    x = {"a": [np.ones(2), (np.zeros(1), 3)]}
    y = pristine(x)
    y["a"][0][0] = 5.0
    assert x["a"][0][0] == 1.0 and y["a"][1][1] == 3

    def scribbling_tanh(z):
        out = np.tanh(z)
        z[:] = np.nan
        return out

    z = np.array([0.1, -0.4])
    (grad,) = numerical_vjp(scribbling_tanh, (z,), np.ones(2))
    check_close(grad, 1 - np.tanh(z) ** 2, "d tanh")
