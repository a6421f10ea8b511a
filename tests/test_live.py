"""rnncourse.live: the live loss plot draws in place in Jupyter and stays silent elsewhere."""

from __future__ import annotations

import signal
import sys

import pytest

from rnncourse.live import LivePlot, in_notebook, interruptible


class FakeHandle:
    def __init__(self, log):
        self.log = log

    def update(self, obj):
        self.log.append(("update", obj))


@pytest.fixture
def fake_display(monkeypatch):
    """Replace IPython.display.display by a recorder that returns a fake display handle."""
    import IPython.display

    log = []

    def display(obj, display_id=None):
        log.append(("display", obj))
        assert display_id is True, "LivePlot must ask for a display handle to update in place"
        return FakeHandle(log)

    monkeypatch.setattr(IPython.display, "display", display)
    return log


def test_outside_jupyter_it_only_records(capsys):
    assert not in_notebook()
    live = LivePlot(title="t")
    assert not live.enabled
    for step in range(5):
        live.update(step, train=1.0 / (step + 1), val=None if step % 2 else 2.0 - step)
    live.close()
    assert capsys.readouterr() == ("", "")
    assert live.draws == 0
    assert live.history["train"] == ([0, 1, 2, 3, 4], [1.0, 0.5, 1 / 3, 0.25, 0.2])
    assert live.history["val"] == ([0, 2, 4], [2.0, 0.0, -2.0])


def _pyplot_figures():
    pyplot = sys.modules.get("matplotlib.pyplot")  # other tests may have imported it
    return [] if pyplot is None else pyplot.get_fignums()


def test_render_makes_a_png_without_pyplot():
    before = _pyplot_figures()
    live = LivePlot(logy=True, styles={"val": {"marker": "o"}})
    assert live.render().startswith(b"\x89PNG")  # an empty plot renders too
    live.update(1, train=3.0, val=2.5)
    live.update(2, train=2.0, val=2.2)
    png = live.render()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    live.update(3, train=1.0, extra=4.0)  # the figure is reused: new points and a new curve show
    assert live.render() != png
    assert [line.get_label() for line in live._ax.lines] == ["train: 1", "val: 2.2", "extra: 4"]
    assert _pyplot_figures() == before, "render() must not open pyplot figures"


def test_in_jupyter_it_draws_once_then_updates_in_place(fake_display):
    live = LivePlot(enabled=True, interval=3600)  # the first update draws, later ones wait
    live.update(0, train=4.0)
    live.update(1, train=3.0)
    live.update(2, train=2.0)
    assert [kind for kind, _ in fake_display] == ["display"]
    live.close()  # the last state is always drawn, in the same output
    assert [kind for kind, _ in fake_display] == ["display", "update"]
    assert live.draws == 2
    live.close()  # nothing new: no redraw
    assert live.draws == 2
    image = fake_display[-1][1]
    assert image.data.startswith(b"\x89PNG")


def test_redraws_when_the_time_has_come(fake_display, monkeypatch):
    import rnncourse.live

    # the clock as update() reads it, then at the start and end of each (instant) drawing
    ticks = iter([0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0, 20.0, 20.0])
    monkeypatch.setattr(rnncourse.live.time, "monotonic", lambda: next(ticks))
    with LivePlot(enabled=True, interval=5) as live:
        for step in range(3):
            live.update(step, loss=1.0 + step)
    assert [kind for kind, _ in fake_display] == ["display", "update", "update"]
    assert live.draws == 3


class FakeClock:
    """time.monotonic for LivePlot: a loop's steps and its drawings advance it by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_gap_between_drawings(fake_display, monkeypatch):
    """At least interval; at most a quarter of the time since the first drawing, ten times the
    cost of the last drawing, and max_interval. The first drawing's cost does not count."""
    import rnncourse.live

    clock = FakeClock()
    monkeypatch.setattr(rnncourse.live.time, "monotonic", clock)
    cost = {"s": 3.0}  # what the next drawing takes

    def render(self):
        clock.now += cost["s"]
        return b"\x89PNG fake"

    monkeypatch.setattr(LivePlot, "render", render)
    live = LivePlot(enabled=True, interval=0.25, max_interval=2.0)

    def drawn_at(t):
        clock.now = t
        before = live.draws
        live.update(t, loss=1.0)
        return live.draws > before

    assert drawn_at(0.0)  # the first update draws; 3 s of start-up, ends at 3.0
    cost["s"] = 0.05
    assert not drawn_at(3.2)  # 0.2 s after it: less than interval
    assert drawn_at(3.3)  # 0.3 s: draws, ends at 3.35; a quarter of 0.35 s < interval
    assert not drawn_at(3.55) and drawn_at(3.65)  # interval again
    assert drawn_at(13.0)  # ends at 13.05, 10 s into the run: ten times 0.05 s = 0.5 s
    assert not drawn_at(13.5) and drawn_at(13.6)  # ends at 13.65
    cost["s"] = 0.5  # a slow drawing, ends at 14.7: ten times 0.5 s, capped at max_interval
    assert drawn_at(14.2)
    assert not drawn_at(16.6) and drawn_at(16.75)
    assert live.drawing_s == pytest.approx(3.0 + 4 * 0.05 + 2 * 0.5)
    with pytest.raises(ValueError, match="interval <= max_interval"):
        LivePlot(interval=3, max_interval=2)


def test_a_loop_of_seconds_shows_its_curve_growing(fake_display, monkeypatch):
    """300 steps of 30 ms (9 s, like the names run of assignment 8): the first drawing takes 2 s
    (matplotlib's start-up: fonts, imports), the later ones 0.2 s. The plot is redrawn several
    times while the loop runs, not only at its start and end, and close() draws the last step."""
    import rnncourse.live

    clock = FakeClock()
    monkeypatch.setattr(rnncourse.live.time, "monotonic", clock)
    drawn = []  # how many points each drawing showed

    def render(self):
        clock.now += 2.0 if not drawn else 0.2
        drawn.append(len(self.history["loss"][0]))
        return b"\x89PNG fake"

    monkeypatch.setattr(LivePlot, "render", render)
    live = LivePlot(enabled=True)
    for step in range(1, 301):
        clock.now += 0.03
        live.update(step, loss=1.0 / step)
    during = list(drawn)
    live.close()
    assert during[0] == 1, "the first update draws at once"
    assert len(during) >= 5, f"only {len(during)} drawings during a 9 s loop: {during}"
    assert max(b - a for a, b in zip(during, during[1:], strict=False)) <= 100, (
        f"more than a third of the loop between two drawings: {during}")
    assert drawn[-1] == 300, "close() draws the final frame"
    assert live.draws == len(drawn)
    assert live.drawing_s <= 0.35 * clock.now, "drawing took more than a third of the time"


def test_the_first_interrupt_asks_the_loop_to_stop_the_second_raises():
    # Python's own handler, as in a Jupyter kernel running a cell (a test runner may have another)
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        done = 0
        with interruptible() as stop:
            for step in range(100):
                if stop.requested:
                    break
                if step == 3:
                    signal.raise_signal(signal.SIGINT)  # what Jupyter's stop button sends
                done += 1
            assert stop.requested and bool(stop)
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)  # a loop that does not check: stopped at once
        assert done == 4, "the step that was running when the interrupt came is finished"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, (
            "the previous handler is put back")
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # and interrupts raise again, as usual
    finally:
        signal.signal(signal.SIGINT, outside)


def test_interruptible_outside_the_main_thread_changes_nothing():
    import threading

    before, seen = signal.getsignal(signal.SIGINT), []

    def work():
        with interruptible() as stop:
            seen.append((stop.requested, signal.getsignal(signal.SIGINT)))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [(False, before)]
