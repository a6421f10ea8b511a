"""A live loss plot for training loops in Jupyter, and silence everywhere else.

    live = LivePlot(ylabel="loss (nats per character)")
    for step in range(steps):
        ...
        live.update(step, train=loss, val=val_loss)  # a value may be None: nothing to add
    live.close()                                     # the final picture

In a Jupyter kernel the figure is drawn into one output and redrawn *in place* (an IPython display
handle), at most every ``interval`` seconds and never more than a tenth of the time (a drawing
costs about 0.1 s), so a fast loop is not slowed down much by drawing. It is
rendered to PNG with matplotlib's Agg canvas, without pyplot: no window, no backend to choose,
nothing shown twice at the end of the cell. Outside Jupyter (scripts, tests, a plain IPython
shell) nothing is drawn or printed; the values are kept in ``history`` all the same.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping

__all__ = ["LivePlot", "in_notebook"]


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (which can show rich output)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class LivePlot:
    """Curves that grow while a loop runs: ``update(x, name=value, ...)``, then ``close()``.

    title, xlabel, ylabel: the figure's labels;  interval: the least seconds between redraws,
    raised to ten times the time a drawing takes (``close`` always draws the last update);
    logy: a logarithmic y axis;  figsize in inches;
    enabled: draw or not (default: only in a Jupyter kernel);  styles: matplotlib keyword
    arguments per curve name, e.g. ``{"val": {"marker": "o"}}``.
    """

    def __init__(self, *, title: str | None = None, xlabel: str = "step",
                 ylabel: str = "loss", interval: float = 1.0, logy: bool = False,
                 figsize: tuple[float, float] = (6.4, 3.2), enabled: bool | None = None,
                 styles: Mapping[str, Mapping] | None = None):
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self.interval, self.logy, self.figsize = float(interval), logy, figsize
        self.enabled = in_notebook() if enabled is None else bool(enabled)
        self.styles = {name: dict(style) for name, style in (styles or {}).items()}
        self.history: dict[str, tuple[list[float], list[float]]] = {}
        self.draws = 0  # how many times the figure was rendered
        self._handle = None
        self._last_draw = float("-inf")
        self._gap = self.interval
        self._dirty = False

    def update(self, x: float, **values: float | None) -> None:
        """Add one point to each named curve (None: no point) and redraw if it is time."""
        for name, value in values.items():
            if value is None:
                continue
            xs, ys = self.history.setdefault(name, ([], []))
            xs.append(float(x))
            ys.append(float(value))
        self._dirty = True
        if self.enabled and time.monotonic() - self._last_draw >= self._gap:
            self._draw()

    def close(self) -> None:
        """Draw the final state (if anything changed since the last drawing)."""
        if self.enabled and self._dirty:
            self._draw()

    def __enter__(self) -> LivePlot:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def render(self) -> bytes:
        """The figure as PNG bytes (works anywhere, in or out of Jupyter)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=self.figsize, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for name, (xs, ys) in self.history.items():
            style = {"lw": 1.2} | self.styles.get(name, {})
            ax.plot(xs, ys, label=f"{name}: {ys[-1]:.4g}", **style)
        if self.logy:
            ax.set_yscale("log")
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel)
        if self.title:
            ax.set_title(self.title, fontsize=10)
        if self.history:
            ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    def _draw(self) -> None:
        from IPython.display import Image, display

        start = time.monotonic()
        image = Image(data=self.render(), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
        self.draws += 1
        self._last_draw = time.monotonic()
        self._gap = max(self.interval, 10 * (self._last_draw - start))  # drawing: <= 10% of time
        self._dirty = False
