"""A live loss plot for training loops in Jupyter, silence everywhere else, and a clean stop.

    live = LivePlot(ylabel="loss (nats per character)")
    with interruptible() as stop:                    # Jupyter's stop button ends the loop cleanly
        for step in range(steps):
            if stop.requested:
                break
            ...
            live.update(step, train=loss, val=val_loss)  # a value may be None: nothing to add
    live.close()                                     # the final picture

In a Jupyter kernel the figure is drawn into one output and redrawn *in place* (an IPython display
handle). The gap between two drawings is the shortest of: a quarter of the time since the first
drawing (so that a run of a second or two is redrawn several times), ten times what the last
drawing took (drawing takes at most a tenth of a long run), and ``max_interval`` (a slow drawing
still shows the curve growing); and never less than ``interval``. The first drawing is left out
of these rules: it pays for matplotlib's start-up (fonts, imports), up to ten times a later one,
and the run is timed from its end. The figure is made once and
rendered to PNG with matplotlib's Agg canvas, without pyplot: no window, no backend to choose,
nothing shown twice at the end of the cell. Outside Jupyter (scripts, tests, a plain IPython
shell) nothing is drawn or printed; the values are kept in ``history`` all the same.
"""

from __future__ import annotations

import io
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

__all__ = ["LivePlot", "Interrupt", "in_notebook", "interruptible"]


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

    title, xlabel, ylabel: the figure's labels;
    interval, max_interval: the least and the most seconds between two redraws (default 0.25 and
        the larger of 2 and interval); in between, the gap is a quarter of the time since the
        first drawing or ten times what the last drawing took, whichever is shorter (see the
        module doc); ``close`` always draws the last update;
    logy: a logarithmic y axis;  figsize in inches;
    enabled: draw or not (default: only in a Jupyter kernel);  styles: matplotlib keyword
    arguments per curve name, e.g. ``{"val": {"marker": "o"}}``.
    ``draws`` counts the drawings, ``drawing_s`` the seconds they took.
    """

    def __init__(self, *, title: str | None = None, xlabel: str = "step",
                 ylabel: str = "loss", interval: float = 0.25, max_interval: float | None = None,
                 logy: bool = False, figsize: tuple[float, float] = (6.4, 3.2),
                 enabled: bool | None = None, styles: Mapping[str, Mapping] | None = None):
        max_interval = max(2.0, interval) if max_interval is None else max_interval
        if not 0 <= interval <= max_interval:
            raise ValueError(f"need 0 <= interval <= max_interval; got {interval}, {max_interval}")
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self.interval, self.max_interval = float(interval), float(max_interval)
        self.logy, self.figsize = logy, figsize
        self.enabled = in_notebook() if enabled is None else bool(enabled)
        self.styles = {name: dict(style) for name, style in (styles or {}).items()}
        self.history: dict[str, tuple[list[float], list[float]]] = {}
        self.draws = 0  # how many times the figure was rendered
        self.drawing_s = 0.0  # and the seconds that took
        self._handle = None
        self._figure = self._ax = None
        self._lines = {}
        self._last_draw = self._first_draw = float("-inf")
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
        """The figure as PNG bytes (works anywhere, in or out of Jupyter).

        One figure is made at the first call and reused: later calls move its lines to the new
        data, which costs about a third of drawing a new figure. Its margins are fixed (room for
        the labels and the title), not recomputed at every drawing.
        """
        if self._figure is None:
            self._figure, self._ax = self._new_figure()
        ax = self._ax
        for name, (xs, ys) in self.history.items():
            if name not in self._lines:
                (self._lines[name],) = ax.plot([], [], **({"lw": 1.2} | self.styles.get(name, {})))
            self._lines[name].set_data(xs, ys)
            self._lines[name].set_label(f"{name}: {ys[-1]:.4g}")
        if self.history:
            ax.relim()
            ax.autoscale_view()
            ax.legend(fontsize=8, loc="upper right")  # made again: it shows the last values
        buffer = io.BytesIO()
        self._figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def _new_figure(self):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        width, height = self.figsize
        fig = Figure(figsize=self.figsize, dpi=80)
        FigureCanvasAgg(fig)
        # Margins in inches: tick labels and the y label on the left, the x label below.
        fig.subplots_adjust(left=0.85 / width, right=1 - 0.15 / width, bottom=0.55 / height,
                            top=1 - (0.35 if self.title else 0.15) / height)
        ax = fig.add_subplot()
        if self.logy:
            ax.set_yscale("log")
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel)
        if self.title:
            ax.set_title(self.title, fontsize=10)
        ax.grid(alpha=0.3)
        return fig, ax

    def _draw(self) -> None:
        from IPython.display import Image, display

        start = time.monotonic()
        image = Image(data=self.render(), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
        self._last_draw = time.monotonic()
        seconds = self._last_draw - start
        self.draws += 1
        self.drawing_s += seconds
        if self.draws == 1:
            # The first drawing is slow once (matplotlib's fonts and caches): it says nothing
            # about the next ones, and the run is timed from its end.
            self._first_draw = self._last_draw
            self._gap = self.interval
        else:
            running = self._last_draw - self._first_draw
            self._gap = max(self.interval, min(running / 4, 10 * seconds, self.max_interval))
        self._dirty = False


class Interrupt:
    """What :func:`interruptible` hands out: ``requested`` turns True on the first interrupt."""

    def __init__(self) -> None:
        self.requested = False

    def __bool__(self) -> bool:
        return self.requested


@contextmanager
def interruptible() -> Iterator[Interrupt]:
    """Within the block, an interrupt (Ctrl-C, Jupyter's stop button) asks the loop to stop.

    The first interrupt only sets ``requested`` on the object the block gets, so a loop that
    checks it at the top of each step ends after a whole step, without a traceback; a second
    interrupt raises KeyboardInterrupt at once, as usual (for a loop that does not check).
    The previous handler is put back when the block ends. Outside the main thread, where Python
    cannot catch signals, interrupts behave as usual.
    """
    stop = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else
                      signal.default_int_handler)
