"""rnncourse.gradflow: the gradient-norm plots and the explorer work headless (Agg, no widget
frontend), shade both danger zones, and redraw different pictures for different control values."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from rnncourse.gradflow import (  # noqa: E402
    EXPLODING,
    VANISHING,
    DecadeLocator,
    GradientExplorer,
    as_curves,
    auto_ylim,
    explorer,
    plot_gradient_norms,
    plot_side_by_side,
    update_gradient_norms,
)


def fake_simulate(rho=1.0, T=50, activation="tanh", init="orthogonal"):
    """Distinct, cheap curves for every combination of the default controls."""
    slope = {"tanh": 0.8, "relu": 1.0, "identity": 1.2}[activation]
    offset = {"gaussian": 3.0, "orthogonal": 1.0, "identity": 0.3}[init]
    return offset * (rho * slope) ** np.arange(1, T + 1)


def _axes():
    return Figure().add_subplot()


def _span(ax, gid):
    patches = [p for p in ax.patches if p.get_gid() == gid]
    assert len(patches) == 1, f"expected one shaded {gid!r} region, found {len(patches)}"
    rect = patches[0]
    return rect.get_y(), rect.get_y() + rect.get_height()


def test_as_curves_accepts_arrays_pairs_and_mappings():
    one = as_curves(np.array([1.0, 0.5, 0.25]))
    np.testing.assert_array_equal(one[""][0], [1, 2, 3])
    pair = as_curves({"a": (np.array([0, 2, 4]), [1.0, 2.0, 3.0]), "b": [4.0, 5.0]})
    np.testing.assert_array_equal(pair["a"][0], [0, 2, 4])
    np.testing.assert_array_equal(pair["b"][0], [1, 2])
    with pytest.raises(ValueError, match="3 distances but 2 norms"):
        as_curves({"bad": (np.arange(3), np.ones(2))})


def test_plot_draws_log_scale_lines_and_both_regions():
    ax = _axes()
    curves = {"rnn": 0.5 ** np.arange(1, 31), "lstm": np.ones(30)}
    lines = plot_gradient_norms(ax, curves, title="demo")
    assert set(lines) == {"rnn", "lstm"}
    assert ax.get_yscale() == "log"
    np.testing.assert_allclose(lines["rnn"].get_ydata(), curves["rnn"])
    np.testing.assert_array_equal(lines["rnn"].get_xdata(), np.arange(1, 31))
    low, high = _span(ax, "vanishing")
    assert low <= ax.get_ylim()[0] and high == VANISHING
    low, high = _span(ax, "exploding")
    assert low == EXPLODING and high >= ax.get_ylim()[1]
    ymin, ymax = ax.get_ylim()
    assert ymin <= 0.5**30 and ymax >= EXPLODING
    labels = [t.get_text() for t in ax.texts]
    assert any("vanishing" in t for t in labels) and any("exploding" in t for t in labels)
    ax.figure.savefig(io.BytesIO(), format="png")


def test_zero_and_infinite_norms_are_left_out():
    ax = _axes()
    lines = plot_gradient_norms(ax, {"dead": [1.0, 0.0, np.inf, 0.5]})
    y = lines["dead"].get_ydata()
    assert np.isnan(y[1]) and np.isnan(y[2]) and y[3] == 0.5
    assert np.isfinite(auto_ylim({"dead": [0.0, np.inf]})).all()


def test_custom_thresholds_move_the_regions():
    ax = _axes()
    plot_gradient_norms(ax, np.ones(5), vanishing=1e-2, exploding=1e2, ylim=(1e-5, 1e5))
    assert _span(ax, "vanishing")[1] == 1e-2
    assert _span(ax, "exploding")[0] == 1e2
    assert ax.get_ylim() == pytest.approx((1e-5, 1e5))


def test_update_moves_lines_and_rejects_new_labels():
    ax = _axes()
    lines = plot_gradient_norms(ax, {"a": np.ones(10)})
    update_gradient_norms(ax, lines, {"a": 2.0 ** np.arange(1, 21)})
    np.testing.assert_allclose(lines["a"].get_ydata(), 2.0 ** np.arange(1, 21))
    assert ax.get_xlim()[1] >= 20
    with pytest.raises(ValueError, match="do not match"):
        update_gradient_norms(ax, lines, {"b": np.ones(3)})


def test_side_by_side_shares_the_y_limits():
    panels = {
        "RNN": {"rho=0.9": 0.9 ** np.arange(1, 101)},
        "LSTM": {"f=0.99": 0.99 ** np.arange(1, 101), "f=1": np.ones(100)},
    }
    fig, lines = plot_side_by_side(panels)
    axes = fig.axes
    assert len(axes) == 2 and set(lines) == {"RNN", "LSTM"}
    assert set(lines["LSTM"]) == {"f=0.99", "f=1"}
    assert axes[0].get_ylim() == axes[1].get_ylim()
    assert axes[0].get_ylim()[0] <= 0.9**100
    assert [ax.get_title() for ax in axes] == ["RNN", "LSTM"]
    for ax in axes:
        _span(ax, "vanishing")
        _span(ax, "exploding")
    with pytest.raises(ValueError, match="2 panels but 1 axes"):
        plot_side_by_side(panels, axes=[_axes()])


def test_explorer_draws_the_defaults_without_a_frontend(capsys):
    ex = explorer(fake_simulate, rho=0.9, T=40, activation="relu", init="identity")
    capsys.readouterr()  # outside IPython, display() prints reprs: nothing to render them
    line = ex.lines[""]
    np.testing.assert_allclose(line.get_ydata(), fake_simulate(0.9, 40, "relu", "identity"))
    assert ex.params == {"rho": 0.9, "T": 40, "activation": "relu", "init": "identity"}
    assert ex.png().startswith(b"\x89PNG")
    assert ex.pixels().shape[2] == 4
    _span(ex.ax, "vanishing")
    _span(ex.ax, "exploding")


@pytest.mark.parametrize(
    "control,value",
    [("rho", 1.5), ("T", 120), ("activation", "identity"), ("init", "gaussian")],
)
def test_moving_a_control_redraws_a_different_image(control, value):
    ex = GradientExplorer(fake_simulate, rho=1.0, T=60, activation="tanh", init="orthogonal")
    before_pixels, before_png = ex.pixels(), ex.png()
    ex.controls[control].value = value  # what a slider or menu does: the observer redraws
    params = {"rho": 1.0, "T": 60, "activation": "tanh", "init": "orthogonal", control: value}
    assert ex.params == params
    np.testing.assert_allclose(ex.lines[""].get_ydata(), fake_simulate(**params))
    assert ex.last_redraw_s is not None and "redrawn" in ex.status.value
    assert ex.png() != before_png
    after = ex.pixels()
    assert after.shape == before_pixels.shape and not np.array_equal(after, before_pixels)


def test_update_syncs_the_controls_and_returns_its_time():
    ex = GradientExplorer(fake_simulate, rho=1.0, T=30)
    seconds = ex.update(rho=0.5, T=80)
    assert seconds >= 0 and seconds == ex.last_redraw_s
    assert ex.controls["rho"].value == 0.5 and ex.controls["T"].value == 80
    np.testing.assert_allclose(ex.lines[""].get_ydata(), fake_simulate(0.5, 80))
    with pytest.raises(TypeError, match="unknown parameters"):
        ex.update(width=3)


def test_changing_labels_redraws_the_axes():
    def several(rho=1.0, T=20, activation="tanh", init="orthogonal"):
        curves = {"RNN": rho ** np.arange(1, T + 1)}
        if activation == "identity":
            curves["linear"] = np.ones(T)
        return curves

    ex = GradientExplorer(several)
    assert set(ex.lines) == {"RNN"}
    ex.controls["activation"].value = "identity"
    assert set(ex.lines) == {"RNN", "linear"}
    _span(ex.ax, "vanishing")


def test_a_failing_simulation_is_reported_in_the_status_line():
    def fragile(rho=1.0, T=20, activation="tanh", init="orthogonal"):
        if rho > 1.5:
            raise NotImplementedError("not yet")
        return rho ** np.arange(1, T + 1)

    ex = GradientExplorer(fragile)
    ex.controls["rho"].value = 1.8
    assert "NotImplementedError" in ex.status.value


def test_custom_controls():
    import ipywidgets as widgets

    gate = widgets.FloatSlider(value=0.9, min=0.0, max=1.0)
    ex = GradientExplorer(lambda forget: forget ** np.arange(1, 11), controls={"forget": gate})
    gate.value = 0.5
    np.testing.assert_allclose(ex.lines[""].get_ydata(), 0.5 ** np.arange(1, 11))
    with pytest.raises(TypeError, match="either controls or default values"):
        GradientExplorer(fake_simulate, controls={"forget": gate}, rho=1.0)


# --- labels, ticks and controls that stay readable (issue 15) ------------------------------------
def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _label_problems(ax):
    """What is wrong with the region labels of ``ax`` as drawn: a curve through a label's box, a
    label outside the axes or its region, the legend over a label."""
    renderer = _drawn(ax.figure)
    frame = ax.get_window_extent(renderer)
    to_data = ax.transData.inverted()
    problems = []
    labels = [t for t in ax.texts if t.get_gid() in ("vanishing-label", "exploding-label")]
    assert len(labels) == 2
    for text in labels:
        patch = text.get_bbox_patch()  # the label's white box, if it has one
        box = (patch or text).get_window_extent(renderer)
        name = text.get_text()
        for line in ax.lines:
            if line.get_gid() != "one":
                path = line.get_transform().transform_path(line.get_path())
                if path.intersects_bbox(box, filled=False):
                    problems.append(f"the curve {line.get_label()!r} crosses {name!r}")
        if not (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
                and box.y1 <= frame.y1):
            problems.append(f"{name!r} is not inside the axes")
        low, high = sorted(to_data.transform([[0, box.y0], [0, box.y1]])[:, 1])
        if (text.get_gid() == "exploding-label" and low < EXPLODING) or (
                text.get_gid() == "vanishing-label" and high > VANISHING):
            problems.append(f"{name!r} reaches out of its region ({low:.2g} .. {high:.2g})")
        legend = ax.get_legend()
        if legend is not None and legend.get_window_extent(renderer).overlaps(box):
            problems.append(f"the legend covers {name!r}")
    return problems


def test_region_labels_stay_clear_of_the_curves_in_the_explorer():
    """The issue's case: identity matrices, rho = 1.05, T = 200 (1.05^200 = 1.7e4 crosses the
    exploding threshold near the right edge), on the explorer's fixed y-limits; and after a
    redraw with other values the labels move again."""
    def linear(rho=1.05, T=200, activation="identity", init="identity"):
        return rho ** np.arange(1, T + 1)

    ex = GradientExplorer(linear, rho=1.05, T=200, activation="identity", init="identity")
    assert _label_problems(ex.ax) == []
    ex.update(rho=0.95, T=200)  # 0.95^200 = 3.5e-5: now the vanishing label is in the way
    assert _label_problems(ex.ax) == []
    ex.update(rho=1.2, T=150)
    assert _label_problems(ex.ax) == []


@pytest.mark.parametrize("T", [100, 200])
def test_region_labels_stay_clear_of_the_curves_side_by_side(T):
    """Assignment 4's figures: rho^d for five radii (up to 1.5^200 = 1e35) beside a panel where
    everything decays (to 1e-48), so that one region is a thin strip."""
    d = np.arange(1, T + 1)
    panels = {"linear": {f"$\\rho = {rho}$": rho**d for rho in (0.5, 0.9, 1.0, 1.1, 1.5)},
              "decaying": {"a": 0.6**d, "b": 0.7**d, "c": 0.95**d}}
    fig, _ = plot_side_by_side(panels)
    for ax in fig.axes:
        assert _label_problems(ax) == [], ax.get_title()


def test_the_y_axis_has_ticks_at_evenly_spaced_whole_decades():
    ax = _axes()
    d = np.arange(1, 101)
    plot_gradient_norms(ax, {"a": 1.5**d, "b": 0.5**d})  # 4e17 .. 8e-31
    _drawn(ax.figure)
    low, high = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if low <= t <= high]
    exponents = np.log10(ticks)
    np.testing.assert_allclose(exponents, np.round(exponents))
    steps = set(np.diff(np.round(exponents)).astype(int))
    assert len(steps) == 1 and steps.pop() in DecadeLocator.STEPS, exponents
    assert 4 <= len(ticks) <= 8 and 0 in np.round(exponents), exponents
    np.testing.assert_allclose(DecadeLocator().tick_values(1e-5, 1e5), 10.0 ** np.arange(-4, 5, 2))
    np.testing.assert_allclose(DecadeLocator().tick_values(1e-2, 1e3), 10.0 ** np.arange(-2, 4))
    np.testing.assert_allclose(DecadeLocator(minor=True).tick_values(1e-2, 1e3),
                               10.0 ** np.arange(-2, 4))


def test_auto_ylim_leaves_room_for_the_labels_beyond_both_thresholds():
    low, high = auto_ylim({"a": 0.6 ** np.arange(1, 201)})  # 1 .. 1.6e-45
    decades = np.log10(high) - np.log10(low)
    assert np.log10(high) - np.log10(EXPLODING) >= decades / 12
    assert np.log10(VANISHING) - np.log10(low) >= decades / 12
    assert auto_ylim(np.ones(3)) == pytest.approx((1e-4, 1e4))


def test_explorer_sliders_get_a_row_each_and_room_to_move():
    import ipywidgets as widgets

    ex = GradientExplorer(fake_simulate)
    rows = ex.widget.children
    sliders = [ex.controls["rho"], ex.controls["T"]]
    assert list(rows[:2]) == sliders, "each slider on a row of its own"
    for slider in sliders:
        assert slider.layout.width == "100%" and slider.layout.max_width == "640px"
    assert isinstance(rows[2], widgets.HBox)
    assert list(rows[2].children) == [ex.controls["activation"], ex.controls["init"]]
    widths = {w.style.description_width for w in ex.controls.values()}
    assert widths == {"170px"}, "descriptions of one width: the controls line up"
