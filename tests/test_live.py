"""rnncourse.live: the live loss plot draws in place in Jupyter and stays silent elsewhere."""

from __future__ import annotations

import sys

import pytest

from rnncourse.live import LivePlot, in_notebook


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


def test_drawing_takes_at_most_a_tenth_of_the_time(fake_display, monkeypatch):
    import rnncourse.live

    ticks = iter([0.0, 0.0, 1.0, 5.0, 10.5, 11.5, 11.5, 11.6])
    monkeypatch.setattr(rnncourse.live.time, "monotonic", lambda: next(ticks))
    live = LivePlot(enabled=True, interval=0)
    live.update(0, loss=3.0)  # draws, from 0.0 to 1.0: the next drawing waits 10 s
    live.update(1, loss=2.0)  # at 5.0
    live.update(2, loss=1.5)  # at 10.5: 9.5 s after the drawing
    assert live.draws == 1
    live.update(3, loss=1.2)  # at 11.5: 10.5 s after it
    assert live.draws == 2
