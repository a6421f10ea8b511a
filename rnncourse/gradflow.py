"""How big is a gradient after it has travelled back d steps in time? Plots and an explorer.

Assignment 4 plots the norm of the Jacobian chain dh_T/dh_k of a vanilla RNN against the distance
d = T - k; the GRU and LSTM assignments reuse the same plots to compare cells side by side. Nothing
here computes a gradient: the numbers always come from the caller (a student's own function, say),
so this module holds no solution.

A *curve* is a 1-D array of norms, ``norms[d - 1]`` for the distances d = 1 .. T, or a pair
``(distances, norms)``. Several curves are a mapping ``{label: curve}``. Norms of 0 (a signal that
has died completely) and non-finite norms are not drawn.

* :func:`plot_gradient_norms` draws curves on a log scale with the vanishing and exploding regions
  shaded; :func:`update_gradient_norms` moves existing lines to new data (cheap redraws);
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

__all__ = [
    "VANISHING",
    "EXPLODING",
    "as_curves",
    "auto_ylim",
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
    """Whole decades around the data and both thresholds, within 1e-200 .. 1e200."""
    values = np.concatenate([_drawable(n) for _, n in as_curves(curves).values()] or [[]])
    values = values[np.isfinite(values)]
    lo = min(values.min(), vanishing) if values.size else vanishing
    hi = max(values.max(), exploding) if values.size else exploding
    lo = max(10.0 ** np.floor(np.log10(lo) - 1), 1e-200)
    hi = min(10.0 ** np.ceil(np.log10(hi) + 1), 1e200)
    return float(lo), float(hi)


def _shade_regions(ax: Axes, vanishing: float, exploding: float) -> None:
    ax.axhspan(_FAR, vanishing, color="tab:blue", alpha=0.12, lw=0, zorder=0, gid="vanishing")
    ax.axhspan(exploding, 1 / _FAR, color="tab:red", alpha=0.12, lw=0, zorder=0, gid="exploding")
    ax.axhline(1.0, color="0.4", lw=0.8, ls=":", zorder=1)
    side = ax.get_yaxis_transform()  # x in axes coordinates, y in data coordinates
    ax.text(0.99, vanishing / 2.5, f"vanishing (< {vanishing:.0e})", transform=side,
            ha="right", va="top", color="tab:blue", fontsize=8, gid="vanishing-label")
    ax.text(0.99, exploding * 2.5, f"exploding (> {exploding:.0e})", transform=side,
            ha="right", va="bottom", color="tab:red", fontsize=8, gid="exploding-label")


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
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    if title is not None:
        ax.set_title(title)
    if legend and any(lines):
        ax.legend(loc="lower left", fontsize=8)
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
    not queue up redraws.
    """
    import ipywidgets as widgets

    style = {"description_width": "initial"}
    return {
        "rho": widgets.FloatSlider(value=rho, min=rho_range[0], max=rho_range[1], step=0.05,
                                   description="spectral radius ρ(W_h)", readout_format=".2f",
                                   continuous_update=False, style=style),
        "T": widgets.IntSlider(value=T, min=T_range[0], max=T_range[1], step=5,
                               description="sequence length T", continuous_update=False,
                               style=style),
        "activation": widgets.Dropdown(options=list(activations), value=activation,
                                       description="activation", style=style),
        "init": widgets.Dropdown(options=list(inits), value=init, description="initialization",
                                 style=style),
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
        row = list(self.controls.values())
        self.widget = widgets.VBox(
            [widgets.HBox(row[:2]), widgets.HBox(row[2:]), self.status]
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
