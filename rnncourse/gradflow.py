"""How big is a gradient after it has travelled back d steps in time? Plots and an explorer.

Assignment 4 plots the norm of the Jacobian chain dh_T/dh_k of a vanilla RNN against the distance
d = T - k; the GRU and LSTM assignments reuse the same plots to compare cells side by side. Nothing
here computes a gradient: the numbers always come from the caller (a student's own function, say),
so this module holds no solution.

A *curve* is a 1-D array of norms, ``norms[d - 1]`` for the distances d = 1 .. T, or a pair
``(distances, norms)``. Several curves are a mapping ``{label: curve}``. Norms of 0 (a signal that
has died completely) and non-finite norms are not drawn.

* :func:`plot_gradient_norms` draws curves on a log scale (ticks at whole decades,
  :class:`DecadeLocator`) with the vanishing and exploding regions shaded and labelled where no
  curve passes; :func:`update_gradient_norms` moves existing lines to new data (cheap redraws);
* :func:`plot_side_by_side` draws one panel per model (say RNN, GRU, LSTM) with a shared y-axis;
* :func:`explorer` wraps a ``simulate(**params) -> curve(s)`` function in ipywidgets sliders. It
  always displays the figure for the default values as an ordinary image, so the notebook shows a
  plot under nbval or nbconvert, where no widget frontend runs; with a frontend, moving a slider
  redraws that same image in place.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.path import Path as MplPath
from matplotlib.ticker import Locator, NullFormatter
from matplotlib.transforms import Bbox

__all__ = [
    "VANISHING",
    "EXPLODING",
    "as_curves",
    "auto_ylim",
    "DecadeLocator",
    "place_labels",
    "plot_gradient_norms",
    "update_gradient_norms",
    "plot_side_by_side",
    "default_controls",
    "GradientExplorer",
    "explorer",
]

VANISHING = 1e-3  # below this a gradient contribution is (for training purposes) gone
EXPLODING = 1e3  # above this one step of gradient descent is a jump, not a step
DEFAULT_YLIM = (1e-24, 1e24)
DISTANCE_LABEL = "distance $d = T - k$ (steps back in time)"
NORM_LABEL = r"$\|\partial h_T / \partial h_k\|_2$"
_FAR = 1e-200  # the shaded regions reach this far, so they fill any y-limits set later


def as_curves(curves) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{label: (distances, norms)}`` from one curve or a mapping of curves (see module doc)."""
    items = curves.items() if isinstance(curves, Mapping) else [("", curves)]
    out = {}
    for label, curve in items:
        if isinstance(curve, tuple) and len(curve) == 2 and np.ndim(curve[0]) == 1:
            distances = np.asarray(curve[0], dtype=float).ravel()
            norms = np.asarray(curve[1], dtype=float).ravel()
        else:
            norms = np.asarray(curve, dtype=float).ravel()
            distances = np.arange(1, norms.size + 1, dtype=float)
        if distances.shape != norms.shape:
            raise ValueError(
                f"curve {label!r}: {distances.size} distances but {norms.size} norms"
            )
        out[str(label)] = (distances, norms)
    return out


def _drawable(norms: np.ndarray) -> np.ndarray:
    """Norms with zeros and non-finite values replaced by NaN, which a log plot leaves out."""
    return np.where(np.isfinite(norms) & (norms > 0), norms, np.nan)


def auto_ylim(curves, vanishing: float = VANISHING, exploding: float = EXPLODING):
    """Whole decades around the data and both thresholds, within 1e-200 .. 1e200.

    Beyond each threshold there are at least a twelfth of the decades shown (and at least one),
    so that each shaded region is tall enough for its label.
    """
    values = np.concatenate([_drawable(n) for _, n in as_curves(curves).values()] or [[]])
    values = values[np.isfinite(values)]
    lo = min(values.min(), vanishing) if values.size else vanishing
    hi = max(values.max(), exploding) if values.size else exploding
    lo_dec, hi_dec = np.floor(np.log10(lo) - 1), np.ceil(np.log10(hi) + 1)
    room = max(1.0, np.ceil((hi_dec - lo_dec) / 12))
    lo_dec = min(lo_dec, np.floor(np.log10(vanishing)) - room)
    hi_dec = max(hi_dec, np.ceil(np.log10(exploding)) + room)
    return float(max(10.0**lo_dec, 1e-200)), float(min(10.0**hi_dec, 1e200))


class DecadeLocator(Locator):
    """Ticks at powers of ten, every 1, 2, 3, 5, 10, 20, 50 or 100 decades: the smallest step
    that gives at most ``most`` ticks, and always one at 10^0 when it is in view. With
    ``minor=True``, a tick at every decade (none when there are more than 120 of them)."""

    STEPS = (1, 2, 3, 5, 10, 20, 50, 100)

    def __init__(self, most: int = 8, minor: bool = False):
        self.most, self.minor = most, minor

    def __call__(self):
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin, vmax):
        vmin, vmax = sorted((float(vmin), float(vmax)))
        if not (np.isfinite(vmin) and np.isfinite(vmax)) or vmax <= 0:
            return np.array([])
        lo = np.ceil(np.log10(max(vmin, 1e-300)) - 1e-9)
        hi = np.floor(np.log10(vmax) + 1e-9)
        decades = np.arange(lo, hi + 1)
        if self.minor:
            return 10.0 ** decades if decades.size <= 120 else np.array([])
        step = next((k for k in self.STEPS if np.sum(decades % k == 0) <= self.most),
                    self.STEPS[-1])
        return 10.0 ** decades[decades % step == 0]


def _shade_regions(ax: Axes, vanishing: float, exploding: float) -> None:
    ax.axhspan(_FAR, vanishing, color="tab:blue", alpha=0.12, lw=0, zorder=0, gid="vanishing")
    ax.axhspan(exploding, 1 / _FAR, color="tab:red", alpha=0.12, lw=0, zorder=0, gid="exploding")
    ax.axhline(1.0, color="0.4", lw=0.8, ls=":", zorder=1, gid="one")
    box = {"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.7, "lw": 0}
    for name, color, sign, value in (("vanishing", "tab:blue", "<", vanishing),
                                     ("exploding", "tab:red", ">", exploding)):
        label = ax.text(1.0, 0.5, f"{name} ({sign} {value:.0e})", transform=ax.transAxes,
                        color=color, fontsize=8, zorder=4, bbox=box, gid=f"{name}-label")
        label.threshold = value  # where its region starts, for place_labels


def _curves_in_axes_fraction(ax: Axes) -> list[np.ndarray]:
    """The data lines of ``ax`` (not the line at 1), as (n, 2) arrays in axes coordinates, split
    where a value is missing."""
    (x0, x1), (y0, y1) = ax.get_xlim(), np.log10(ax.get_ylim())
    runs = []
    for line in ax.lines:
        if line.get_gid() == "one":
            continue
        x = (np.asarray(line.get_xdata(), float) - x0) / ((x1 - x0) or 1.0)
        y = np.asarray(line.get_ydata(), float)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = (np.log10(np.where(y > 0, y, np.nan)) - y0) / ((y1 - y0) or 1.0)
        ok = np.isfinite(x) & np.isfinite(y)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
        runs += [np.column_stack([x[a:b], y[a:b]]) for a, b in zip(edges[::2], edges[1::2],
                                                                   strict=True)]
    return runs


def _crossings(box: Bbox, runs: list[np.ndarray], margin: float = 0.015) -> int:
    """How many of the runs (curves in axes coordinates) pass through ``box`` or within
    ``margin`` of it."""
    box = Bbox.from_extents(box.x0 - margin, box.y0 - margin, box.x1 + margin, box.y1 + margin)
    hits = 0
    for run in runs:
        if len(run) == 1:
            hits += bool(box.contains(*run[0]))
        else:
            hits += MplPath(run).intersects_bbox(box, filled=False)
    return hits


def _renderer(figure):
    """Something that measures text: the figure's own renderer, or an Agg one of its size."""
    get = getattr(figure.canvas, "get_renderer", None)
    if get is not None:
        return get()
    from matplotlib.backends.backend_agg import RendererAgg

    return RendererAgg(int(figure.bbox.width), int(figure.bbox.height), figure.dpi)


_LEGEND_PLACES = ("lower left", "upper right", "upper left", "lower right", "center right",
                  "center left", "lower center", "upper center", "center")


def place_labels(ax: Axes) -> None:
    """Move the legend and the "vanishing" and "exploding" labels of ``ax`` where no curve passes.

    The legend goes first, to the first corner or side that no curve crosses (the least crossed
    one if all are). Then each region label, inside its shaded region: next to the threshold if
    it can, else in the middle or at the far end of the region; on the right, the left or in the
    middle of the plot: the first of these places that no curve crosses and the legend does not
    cover. Called by :func:`plot_gradient_norms` and :func:`update_gradient_norms`; call it
    again after changing the limits of the axes by hand.
    """
    runs = _curves_in_axes_fraction(ax)
    figure = ax.figure
    renderer = _renderer(figure)
    axes_px = ax.get_position().size * np.array([figure.bbox.width, figure.bbox.height])
    taken = []
    legend = ax.get_legend()
    if legend is not None:
        extent = legend.get_window_extent(renderer)
        w, h = np.array([extent.width, extent.height]) / axes_px
        gap = legend.borderaxespad * legend.prop.get_size_in_points() * figure.dpi / 72 / axes_px

        def box_at(place):
            vertical, _, horizontal = place.partition(" ")
            horizontal = horizontal or "center"
            x = {"left": gap[0], "right": 1 - gap[0] - w, "center": 0.5 - w / 2}[horizontal]
            y = {"lower": gap[1], "upper": 1 - gap[1] - h, "center": 0.5 - h / 2}[vertical]
            return Bbox.from_bounds(x, y, w, h)

        place = min(_LEGEND_PLACES, key=lambda place: _crossings(box_at(place), runs))
        legend.set_loc(place)
        taken.append(box_at(place))
    (y0, y1) = np.log10(ax.get_ylim())
    pad = 0.02
    for text in ax.texts:
        if text.get_gid() not in ("vanishing-label", "exploding-label"):
            continue
        extent = text.get_window_extent(renderer)
        w, h = (np.array([extent.width, extent.height]) + 4) / axes_px
        edge = (np.log10(text.threshold) - y0) / ((y1 - y0) or 1.0)
        if text.get_gid() == "exploding-label":  # the region is [edge, 1]: bottoms of boxes
            lo, hi = max(edge, 0.0) + pad, 1.0 - pad - h
            ys = [lo, (lo + hi) / 2, hi] if hi > lo else [min(lo, 1.0 - h)]
        else:  # the region is [0, edge]
            lo, hi = pad, min(edge, 1.0) - pad - h
            ys = [hi, (lo + hi) / 2, lo] if hi > lo else [max(hi, 0.0)]
        boxes = [Bbox.from_bounds(x, y, w, h) for y in ys for x in (1 - pad - w, pad, 0.5 - w / 2)]
        box = min(boxes, key=lambda b: _crossings(b, runs)  # the first of the least crossed
                  + 3 * sum(b.overlaps(t) for t in taken))
        text.set_position((box.x0 + 2 / axes_px[0], box.y0 + 2 / axes_px[1]))
        text.set_horizontalalignment("left")
        text.set_verticalalignment("bottom")
        taken.append(box)


def _set_xlim(ax: Axes, curves: dict) -> None:
    ends = [d.max() for d, _ in curves.values() if d.size]
    if ends:
        ax.set_xlim(0, max(ends) * 1.02 or 1)


def plot_gradient_norms(
    ax: Axes,
    curves,
    *,
    vanishing: float = VANISHING,
    exploding: float = EXPLODING,
    ylim: tuple[float, float] | None = None,
    title: str | None = None,
    xlabel: str = DISTANCE_LABEL,
    ylabel: str = NORM_LABEL,
    legend: bool = True,
    **line_kw,
) -> dict[str, Line2D]:
    """Draw gradient norms against distance on a log y-axis, with both danger zones shaded.

    ax:      a matplotlib Axes
    curves:  one curve or ``{label: curve}`` (see the module doc), e.g. ``{"RNN": norms_rnn,
             "LSTM": norms_lstm}``
    ylim:    fixed y-limits; by default whole decades around the data and both thresholds
    line_kw: passed to ``ax.plot`` for every line
    Returns ``{label: Line2D}``, to move with :func:`update_gradient_norms`. The shaded regions are
    the patches with gid ``"vanishing"`` (below ``vanishing``) and ``"exploding"`` (above).
    """
    curves = as_curves(curves)
    ax.set_yscale("log", nonpositive="mask")
    # Fix the y-limits first: autoscaling to the far-reaching shaded regions would overflow.
    ax.set_ylim(ylim or auto_ylim(curves, vanishing, exploding))
    ax.set_autoscaley_on(False)
    _shade_regions(ax, vanishing, exploding)
    lines = {}
    for label, (distances, norms) in curves.items():
        (line,) = ax.plot(distances, _drawable(norms), label=label or None, zorder=3,
                          **{"lw": 1.6, **line_kw})
        lines[label] = line
    _set_xlim(ax, curves)
    ax.yaxis.set_major_locator(DecadeLocator())
    ax.yaxis.set_minor_locator(DecadeLocator(minor=True))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    if title is not None:
        ax.set_title(title)
    if legend and any(lines):
        ax.legend(fontsize=8)
    place_labels(ax)
    return lines


def update_gradient_norms(
    ax: Axes, lines: Mapping[str, Line2D], curves, *, ylim: tuple[float, float] | None = None
) -> None:
    """Move the lines drawn by :func:`plot_gradient_norms` to new curves with the same labels."""
    curves = as_curves(curves)
    if set(curves) != set(lines):
        raise ValueError(f"curves {sorted(curves)} do not match the lines {sorted(lines)}")
    for label, (distances, norms) in curves.items():
        lines[label].set_data(distances, _drawable(norms))
    _set_xlim(ax, curves)
    if ylim is not None:
        ax.set_ylim(ylim)
    place_labels(ax)


def plot_side_by_side(
    panels: Mapping[str, object],
    *,
    axes=None,
    ylim: tuple[float, float] | None = None,
    panel_size: tuple[float, float] = (4.2, 3.6),
    **kw,
):
    """One panel per model, ``{title: curves}``, sharing the y-axis, for comparing cells.

    Example: ``plot_side_by_side({"RNN": {"rho=1": n1}, "LSTM": {"f=0.9": n2}})``.
    ``axes`` (a sequence of Axes, one per panel) is made with pyplot when not given.
    Returns ``(figure, {title: {label: Line2D}})``.
    """
    if axes is None:
        import matplotlib.pyplot as plt

        width, height = panel_size
        fig, grid = plt.subplots(1, len(panels), figsize=(width * len(panels), height),
                                 sharey=True, squeeze=False, layout="constrained")
        axes = list(grid[0])
    else:
        axes = list(axes)
        fig = axes[0].figure
    if len(axes) != len(panels):
        raise ValueError(f"{len(panels)} panels but {len(axes)} axes")
    if ylim is None:
        merged = {f"{t}/{k}": c for t, cs in panels.items() for k, c in as_curves(cs).items()}
        ylim = auto_ylim(merged, kw.get("vanishing", VANISHING), kw.get("exploding", EXPLODING))
    lines = {}
    for i, (ax, (title, curves)) in enumerate(zip(axes, panels.items(), strict=True)):
        panel_kw = {**kw, "ylabel": ""} if i else kw  # the shared y-axis is labelled once
        lines[title] = plot_gradient_norms(ax, curves, ylim=ylim, title=title, **panel_kw)
    return fig, lines


def default_controls(
    rho: float = 1.0,
    T: int = 100,
    activation: str = "tanh",
    init: str = "orthogonal",
    *,
    rho_range: tuple[float, float] = (0.1, 2.0),
    T_range: tuple[int, int] = (5, 200),
    activations=("tanh", "relu", "identity"),
    inits=("gaussian", "orthogonal", "identity"),
) -> dict:
    """The explorer's widgets: spectral radius, sequence length, activation and initialization.

    Sliders report a new value only when released (``continuous_update=False``), so dragging does
    not queue up redraws. Each slider has a row of its own, as wide as the notebook up to 640 px
    (a track of about 400 px, some 10 px per step); the two menus share a row below them. All
    descriptions have the same width, so the controls line up.
    """
    import ipywidgets as widgets

    style = {"description_width": "170px"}
    row = widgets.Layout(width="100%", max_width="640px")
    half = widgets.Layout(width="320px")
    return {
        "rho": widgets.FloatSlider(value=rho, min=rho_range[0], max=rho_range[1], step=0.05,
                                   description="spectral radius ρ(W_h)", readout_format=".2f",
                                   continuous_update=False, style=style, layout=row),
        "T": widgets.IntSlider(value=T, min=T_range[0], max=T_range[1], step=5,
                               description="sequence length T", continuous_update=False,
                               style=style, layout=row),
        "activation": widgets.Dropdown(options=list(activations), value=activation,
                                       description="activation", style=style, layout=half),
        "init": widgets.Dropdown(options=list(inits), value=init, description="initialization",
                                 style=style, layout=half),
    }


def _format_params(params: Mapping) -> str:
    return ", ".join(
        f"{k} = {v:.2f}" if isinstance(v, float) else f"{k} = {v}" for k, v in params.items()
    )


class GradientExplorer:
    """One figure of gradient norms, recomputed and redrawn whenever a control changes.

    simulate: a function called as ``simulate(**params)`` that returns one curve or
              ``{label: curve}``; ``params`` holds the current value of every control.
    controls: ``{param name: ipywidget}``; by default :func:`default_controls` built from
              ``defaults`` (rho, T, activation, init and their ranges).
    The figure is a plain :class:`matplotlib.figure.Figure` (no pyplot, no ipympl): it is shown as
    a PNG image, and a redraw replaces that image in place. The figure and its lines are made once
    and reused; a redraw only moves the lines and renders the PNG again.
    """

    def __init__(
        self,
        simulate: Callable[..., object],
        *,
        controls: Mapping | None = None,
        ylim: tuple[float, float] = DEFAULT_YLIM,
        figsize: tuple[float, float] = (7.5, 4.2),
        dpi: int = 90,
        vanishing: float = VANISHING,
        exploding: float = EXPLODING,
        **defaults,
    ):
        import ipywidgets as widgets

        if controls is not None and defaults:
            raise TypeError("give either controls or default values for the default controls")
        self.simulate = simulate
        self.controls = dict(controls if controls is not None else default_controls(**defaults))
        self.params = {name: w.value for name, w in self.controls.items()}
        self.ylim = ylim
        self._plot_kw = {"vanishing": vanishing, "exploding": exploding, "ylim": ylim}
        self.figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
        FigureCanvasAgg(self.figure)
        self.ax = self.figure.add_subplot()
        self.lines = plot_gradient_norms(self.ax, self.simulate(**self.params), **self._plot_kw)
        self.ax.set_title(_format_params(self.params), fontsize=10)
        # Lay the figure out once, then keep that layout: constrained layout on every redraw
        # would double the drawing time.
        self.figure.canvas.draw()
        self.figure.set_layout_engine("none")
        self.status = widgets.Label(value="")
        self.last_redraw_s: float | None = None
        self._handle = None
        self._syncing = False
        for widget in self.controls.values():
            widget.observe(self._on_change, names="value")
        # Sliders one per row (a slider needs length), other controls side by side below them.
        kinds = (widgets.FloatSlider, widgets.IntSlider, widgets.FloatLogSlider,
                 widgets.SelectionSlider, widgets.FloatRangeSlider, widgets.IntRangeSlider)
        sliders = [w for w in self.controls.values() if isinstance(w, kinds)]
        others = [w for w in self.controls.values() if w not in sliders]
        self.widget = widgets.VBox(
            [*sliders, *([widgets.HBox(others, layout=widgets.Layout(flex_flow="row wrap"))]
                         if others else []), self.status]
        )

    # --- drawing ----------------------------------------------------------------------------------
    def png(self) -> bytes:
        """The figure as PNG bytes, as it is displayed."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def pixels(self) -> np.ndarray:
        """The rendered figure as an (height, width, 4) uint8 RGBA array."""
        self.figure.canvas.draw()
        return np.asarray(self.figure.canvas.buffer_rgba()).copy()

    def update(self, **params) -> float:
        """Set some parameters (and their controls), recompute, redraw; returns the seconds taken.

        The time covers the simulation, moving the lines and rendering the PNG that is displayed.
        """
        unknown = set(params) - set(self.controls)
        if unknown:
            raise TypeError(f"unknown parameters {sorted(unknown)}; have {sorted(self.controls)}")
        start = time.perf_counter()
        self.params.update(params)
        self._syncing = True
        try:
            for name, value in params.items():
                self.controls[name].value = value
        finally:
            self._syncing = False
        curves = as_curves(self.simulate(**self.params))
        if set(curves) == set(self.lines):
            update_gradient_norms(self.ax, self.lines, curves, ylim=self.ylim)
        else:  # the labels changed: draw the axes again
            self.ax.clear()
            self.lines = plot_gradient_norms(self.ax, curves, **self._plot_kw)
        self.ax.set_title(_format_params(self.params), fontsize=10)
        image = self.png()
        if self._handle is not None:
            from IPython.display import Image

            self._handle.update(Image(data=image, format="png"))
        self.last_redraw_s = time.perf_counter() - start
        self.status.value = f"redrawn in {1000 * self.last_redraw_s:.0f} ms"
        return self.last_redraw_s

    def _on_change(self, change) -> None:
        if self._syncing:
            return
        name = next(k for k, w in self.controls.items() if w is change["owner"])
        try:
            self.update(**{name: change["new"]})
        except Exception as exc:  # a callback's traceback would go to the kernel log, unseen
            self.status.value = f"error: {type(exc).__name__}: {exc}"

    # --- display ----------------------------------------------------------------------------------
    def show(self) -> None:
        """Display the controls and the figure for the current values.

        The figure is an ordinary image output, so it is saved in the notebook (and shown by nbval,
        nbconvert or GitHub) even where the widgets cannot be rendered.
        """
        from IPython.display import Image, display

        display(self.widget)
        self._handle = display(Image(data=self.png(), format="png"), display_id=True)


def explorer(simulate: Callable[..., object], *, show: bool = True, **kwargs) -> GradientExplorer:
    """Build a :class:`GradientExplorer` and (by default) display it.

    Example: ``explorer(simulate, rho=1.0, T=100, activation="tanh", init="orthogonal")`` with
    ``simulate(rho, T, activation, init)`` returning the norms for distances 1 .. T.
    """
    ex = GradientExplorer(simulate, **kwargs)
    if show:
        ex.show()
    return ex
