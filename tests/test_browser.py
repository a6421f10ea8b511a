"""The student's JupyterLab, tested end to end in a real browser (issues 7 and 15).

One test, because starting JupyterLab and Chromium is the expensive part. In a throw-away course
folder (the committed ``release/`` and ``notebooks/``, plus a student's working copies of the
solved assignments 2, 4 and 8), it starts JupyterLab with the repository's ``make lab`` (on a free
loopback port with a random token, passed in ``LAB_ARGS``), and in headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright; no browser is downloaded):

1. opens the URL that ``make lab`` printed: the course map, at the course folder's root (the file
   browser shows ``release/`` and ``notebooks/``), with no unsaved-changes marker once its kernel
   has started; runs it and checks its table of released assignments; clicks its link to
   assignment 2, which opens ``release/02_forward_pass`` in a new tab, again with no marker;
2. in that blank released assignment 2, runs all cells and checks the NotImplementedError a
   student sees in the first test cell; types a transposed ``rnn_cell_forward`` into its cell and
   checks the message of rnncourse.testing (which element differs), then the fixed version passes;
3. runs all cells of assignment 4 (solved: the explorer calls the student's ``init_recurrent``,
   ``scale_to_spectral_radius`` and ``jacobian_chain_norms``, so the blank release cannot draw it),
   waits for the gradient-flow explorer widget, moves the spectral-radius slider with the keyboard
   and checks that the plot image changed, then types 1.00 into the slider's readout and checks
   that the plot is back to the first one, pixel for pixel;
4. runs all cells of assignment 8 (solved) and records every frame of the live loss plot of its
   two default training runs: each must show the curve growing (at least three different images
   while the cell runs);
5. opens nbgrader's Assignment List, Course List and Formgrader and checks their content;
6. meanwhile runs ``nbgrader validate`` on the blank release notebook (fails, 11 cells) and on the
   solved one (success);
7. fails on any error in the browser console or uncaught page error during all of it.

The unsaved-changes and live-plot findings are collected and reported together at the end, so that
one run tells the state of each. Screenshots are saved in ``artifacts/browser/``. The test skips
(with the reason) only when ``/usr/bin/chromium`` is missing or Playwright cannot launch it.
``-m "not browser"`` deselects it.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import browser_support as bs
import nbformat
import numpy as np
import pytest

from autograder.config import REPO_ROOT
from autograder.grading import make_course, nbgrader
from autograder.submissions import solution_submission

pytestmark = pytest.mark.browser  # registered in pyproject.toml

ARTIFACTS = REPO_ROOT / "artifacts" / "browser"
EXPLORED = "04_vanishing_gradients"
BLANK = "02_forward_pass"
TRAINED = "08_char_language_model"
COURSE_MAP = "notebooks/00_course_map.ipynb"
# The map's link to BLANK (its text in the map's list of assignments).
BLANK_LINK = "The forward pass"
# Code cells of TRAINED that start a default training run with a live loss plot: the line that
# sets the run's length. The live plot must show at least this many images while the cell runs.
LIVE_RUNS = {"names": r"^NAME_STEPS\s*=", "text": r"^TEXT_STEPS\s*="}
LIVE_FRAMES = 3
# Generous, bounded waits (ms): the machine is shared with other sessions.
LONG = 180_000
SHORT = 60_000

# Console errors that are not the course's or the extensions' fault. Each needs a reason; keep
# this empty unless a message is understood. Patterns are regular expressions on the text.
IGNORED_CONSOLE_ERRORS: dict[str, str] = {}

# A student's first attempt at rnn_cell_forward, with Wh not transposed, and the fixed version.
TRANSPOSED_CELL = '''def rnn_cell_forward(x_t, h_prev, Wx, Wh, b):
    h_next = np.tanh(x_t @ Wx.T + h_prev @ Wh + b)
    cache = (x_t, h_prev, h_next, Wx, Wh)
    return h_next, cache
'''
FIXED_CELL = TRANSPOSED_CELL.replace("h_prev @ Wh + b", "h_prev @ Wh.T + b")
# What rnncourse.testing.check_close says about it in the visible test: on the test's hand-checked
# step only row 1 uses h_prev, and Wh's row 0 instead of its column 0 changes one element,
# tanh(0.15) = 0.148885 instead of tanh(0.25) = 0.244919.
TRANSPOSED_MESSAGE = (
    "AssertionError: h_next differs from the expected value at index (1, 1): got 0.148885, "
    "expected 0.244919 (relative difference 0.39; the tolerance is rtol=1e-05, atol=1e-08). "
    "1 of 4 elements differ; largest difference 0.096. It equals the result with Wh not "
    "transposed (h_prev @ Wh instead of h_prev @ Wh.T)."
)


# --- the course folder ---------------------------------------------------------------------------
def build_course(tmp: Path) -> Path:
    """The course (source/, nbgrader_config.py), the committed release/ and notebooks/ (the
    course map), and three student copies.

    ``work/<a>/<a>.ipynb`` are the release notebooks with the instructor's solutions typed in
    (autograder.submissions.solution_submission), as a student who has finished them has them.
    """
    course = make_course(tmp / "course", REPO_ROOT / "source")
    bs.copy_tree(REPO_ROOT / "release", course / "release")
    bs.copy_tree(REPO_ROOT / "notebooks", course / "notebooks")
    for assignment in (EXPLORED, BLANK, TRAINED):
        name = f"{assignment}.ipynb"
        source = nbformat.read(REPO_ROOT / "source" / assignment / name, as_version=4)
        release = nbformat.read(course / "release" / assignment / name, as_version=4)
        work = course / "work" / assignment
        work.mkdir(parents=True)
        for extra in (course / "release" / assignment).glob("*.py"):  # course_layers.py
            shutil.copy2(extra, work / extra.name)
        nbformat.write(solution_submission(source, release), work / name)
    return course


def configure_exchange(tmp: Path, env: dict[str, str]) -> Path:
    """An nbgrader exchange of our own, set in the test's per-user Jupyter config dir.

    Without one, nbgrader uses /usr/local/share/nbgrader/exchange, which does not exist here.
    """
    exchange = tmp / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)  # nbgrader requires the exchange root to be writable by everybody
    config = Path(env["JUPYTER_CONFIG_DIR"]) / "nbgrader_config.py"
    config.write_text(f"c = get_config()  # noqa: F821\nc.Exchange.root = {str(exchange)!r}\n")
    return exchange


def nbgrader_cli(course: Path, exchange: Path) -> dict[str, tuple[str, float]]:
    """Release assignment 2 to the exchange and validate its blank and solved notebooks.

    Runs in a background thread while the browser works. Returns ``{name: (output, seconds)}``.
    """
    results = {}
    runs = {
        "release": ("release_assignment", BLANK, f"--Exchange.root={exchange}"),
        "validate blank": ("validate", f"release/{BLANK}/{BLANK}.ipynb"),
        "validate solved": ("validate", f"work/{BLANK}/{BLANK}.ipynb"),
    }
    for name, args in runs.items():
        start = time.perf_counter()
        proc = nbgrader(course, *args, timeout=300)
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise AssertionError(f"nbgrader {' '.join(args)} exited {proc.returncode}:\n{output}")
        results[name] = (output, time.perf_counter() - start)
    return results


# --- helpers on PNG data -------------------------------------------------------------------------
def png_pixels(data_url: str) -> np.ndarray:
    import base64

    from PIL import Image

    assert data_url.startswith("data:image/png;base64,"), data_url[:60]
    image = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    return np.asarray(image.convert("RGB"))


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return 1.0
    return float(np.mean(np.any(a != b, axis=-1)))


def wait_for_new_image(page, img, old_src: str, timeout: float = SHORT) -> str:
    """Wait until the image's ``src`` differs from ``old_src`` and then stays put for 1 s.

    ``img`` is a locator: JupyterLab replaces the <img> element when a display is updated.
    """
    deadline = time.monotonic() + timeout / 1000
    src, stable_since = old_src, None
    while True:
        page.wait_for_timeout(250)
        now = img.get_attribute("src")
        if now != src:
            src, stable_since = now, time.monotonic()
        elif src != old_src and time.monotonic() - stable_since >= 1.0:
            bs.wait_kernel_idle(page, timeout=timeout)
            if img.get_attribute("src") == src:
                return src
        if time.monotonic() > deadline:
            raise TimeoutError(
                "the explorer's image " + ("did not change" if src == old_src else
                                           "kept changing") + f" within {timeout / 1000:.0f} s")


# --- the test ------------------------------------------------------------------------------------
def test_student_jupyterlab_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    if not bs.CHROMIUM.exists():
        pytest.skip(f"{bs.CHROMIUM} is missing: `make system-deps` installs Debian's chromium")
    started = time.perf_counter()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()

    course = build_course(tmp_path)
    env = bs.lab_env(tmp_path)
    exchange = configure_exchange(tmp_path, env)

    console = bs.ConsoleLog()
    findings: list[str] = []  # unsaved markers on open, live plots that do not grow
    with sync_playwright() as playwright:
        try:
            context = bs.launch_chromium(playwright, tmp_path / "chromium-profile")
        except bs.BrowserUnavailable as exc:
            pytest.skip(str(exc))
        context.set_default_timeout(SHORT)
        with ThreadPoolExecutor(1) as pool, \
                bs.jupyter_lab(course, tmp_path, env=env, via_make=True) as server:
            extensions = pool.submit(bs.labextensions, env)
            cli = pool.submit(nbgrader_cli, course, exchange)
            page = context.pages[0] if context.pages else context.new_page()
            console.watch(page)
            try:
                laps = {"JupyterLab up": time.perf_counter() - started}

                def lap(name: str) -> None:
                    laps[name] = time.perf_counter() - started

                course_map_from_make_lab(page, server, lap, findings)
                blank_notebook_messages(page, lap)
                explore_gradient_flow(page, lap, findings)
                live_plot_while_training(page, course, lap, findings)
                cli_results = cli.result(timeout=600)
                lap("nbgrader CLI done")
                nbgrader_extensions(page)
                lap("nbgrader panels")
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                if extensions.done() and not extensions.exception():
                    print(f"--- jupyter labextension list ---\n{extensions.result()}")
                print(f"--- JupyterLab log (last 6000 characters) ---\n{server.log()[-6000:]}")
                try:
                    page.screenshot(path=str(ARTIFACTS / "failure.png"))
                except Exception as exc:  # the page may be gone; the original error matters
                    print(f"no failure screenshot: {exc}")
                raise
            finally:
                context.close()

    kinds = Counter(m.kind for m in console.messages)
    warnings_seen = sorted({m.text[:160] for m in console.messages if m.kind == "warning"})
    print(f"\nbrowser console: {dict(kinds)}; warnings: {warnings_seen}")
    print("browser test, seconds since start: "
          + ", ".join(f"{k} {t:.0f}" for k, t in laps.items())
          + f", total {time.perf_counter() - started:.0f}; nbgrader CLI runs (in the background): "
          + ", ".join(f"{k} {t:.0f}" for k, (_, t) in cli_results.items()))
    check_labextensions(extensions.result())
    check_validate(cli_results)
    errors = console.errors(ignore=IGNORED_CONSOLE_ERRORS)
    assert not errors, "errors in the browser console:\n" + "\n".join(
        f"[{m.kind}] {m.text} ({m.url})" for m in errors
    )
    assert not findings, "\n".join(findings)


def check_saved_on_open(page, name: str, findings: list[str]) -> None:
    """No unsaved-changes marker on a notebook just opened, once its kernel has started (the
    kernel's language_info, written into the notebook's metadata, must change nothing)."""
    page.wait_for_timeout(500)  # the kernel's info came before its first idle state
    if bs.unsaved(page, name):
        findings.append(f"{name} shows unsaved changes right after it opened and its kernel "
                        "started")


def check_ran_cleanly(page, assignment: str) -> None:
    """Every code cell of the active notebook ran, and none raised."""
    prompts = [bs.prompt(c) for c in bs.code_cells(page).all()]
    not_run = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
    assert not not_run, f"code cells {not_run} of {assignment} did not run: prompts {prompts}"
    tracebacks = [t for t in bs.active_notebook(page).locator(".jp-OutputArea-output")
                  .all_text_contents() if "Traceback (most recent call last)" in t]
    assert not tracebacks, f"{assignment} raised:\n" + "\n".join(tracebacks)


def course_map_from_make_lab(page, server, lap, findings) -> None:
    """`make lab`: its printed URL opens the course map at the course's root; a link opens 2."""
    log = server.log()
    assert f"Serving notebooks from local directory: {server.root}" in log, log[-3000:]
    notice = "make lab: running as root, so JupyterLab gets --allow-root"
    assert (notice in log) == (os.geteuid() == 0), log[:3000]
    printed = set(server.printed_paths())
    assert printed == {f"/lab/tree/{COURSE_MAP}"}, f"make lab printed the URLs {printed}"

    page.set_viewport_size({"width": 1280, "height": 800})  # the first run
    page.goto(server.url(printed.pop()), timeout=LONG)
    name = COURSE_MAP.rsplit("/", 1)[1]
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current",
                 has_text=name).wait_for(timeout=LONG)
    bs.active_notebook(page).locator(".jp-Cell").first.wait_for(timeout=LONG)
    bs.wait_kernel_idle(page, timeout=LONG)
    lap("map opened")
    check_saved_on_open(page, name, findings)
    bs.screenshot(page, "00_course_map_make_lab.png", ARTIFACTS)
    # The file browser shows the map's folder, notebooks/; its root is the course folder.
    crumbs = page.locator(".jp-FileBrowser .jp-BreadCrumbs")
    assert crumbs.locator(".jp-BreadCrumbs-item", has_text="notebooks").count() == 1, \
        crumbs.inner_html()
    crumbs.locator(".jp-BreadCrumbs-home").click()
    listing = page.locator(".jp-FileBrowser .jp-DirListing-item .jp-DirListing-itemText")
    expected = {"release", "notebooks", "source"}
    bs.wait_until(lambda: expected <= set(listing.all_text_contents()), 30, what="the root listed")
    bs.screenshot(page, "00_course_map_make_lab_root.png", ARTIFACTS)

    # Its table of what is released (a rendered Markdown table: aligned whatever the names).
    bs.run_all(page, timeout=LONG)
    check_ran_cleanly(page, COURSE_MAP)
    table = bs.active_notebook(page).locator(".jp-OutputArea-output table")
    table.wait_for(timeout=SHORT)
    rows = [r.locator("td, th").all_text_contents() for r in table.locator("tr").all()]
    released = sorted(nb.parent.name for nb in (server.root / "release").glob("*/*.ipynb"))
    assert [r[0] for r in rows[1:-1]] == released, f"the map's table has the rows {rows}"
    assert all(len(r) == len(rows[0]) for r in rows), rows
    bs.screenshot(table, "00_course_map_table.png", ARTIFACTS)
    page.set_viewport_size(bs.VIEWPORT)

    # Every link of the map to a file (the list and the table) names one the server has.
    hrefs = bs.active_notebook(page).locator(".jp-RenderedMarkdown a").evaluate_all(
        "els => els.map(e => e.href)")
    targets = [urllib.parse.unquote(urllib.parse.urlsplit(h).path).split("/files/", 1)[1]
               for h in hrefs if "/files/" in h]
    expected = [f"release/{a}/{a}.ipynb" for a in released]
    assert sorted(targets) == sorted(expected * 2), f"the map links to {targets}"
    for target in set(targets):
        assert server.api(f"contents/{urllib.parse.quote(target)}?content=0")["type"] == \
            "notebook", target

    # A student clicks the link to assignment 2: it opens from release/, in a new tab.
    link = bs.active_notebook(page).locator(".jp-RenderedMarkdown a", has_text=BLANK_LINK)
    link.first.click()
    opened = f"{BLANK}.ipynb"
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current",
                 has_text=opened).wait_for(timeout=LONG)
    bs.active_notebook(page).locator(".jp-Cell").first.wait_for(timeout=LONG)
    bs.wait_kernel_idle(page, timeout=LONG)
    sessions = {s["path"] for s in server.api("sessions")}
    assert f"release/{BLANK}/{opened}" in sessions, f"sessions after the click: {sessions}"
    assert not page.locator(".jp-Dialog").count(), page.locator(".jp-Dialog").first.text_content()
    check_saved_on_open(page, opened, findings)
    lap("2 opened from the map")


def explore_gradient_flow(page, lap, findings) -> None:
    """Assignment 4, solved: run all, then drive the explorer's spectral-radius slider."""
    bs.open_from_path(page, f"work/{EXPLORED}/{EXPLORED}.ipynb", timeout=LONG)
    check_saved_on_open(page, f"{EXPLORED}.ipynb", findings)
    lap("4 opened")
    bs.run_all(page, timeout=LONG)
    lap("4 ran")
    check_ran_cleanly(page, EXPLORED)

    cell = bs.cell_containing(page, "gradient_explorer = explorer(")
    slider = cell.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text="spectral radius"))
    slider.wait_for(timeout=SHORT)
    img = cell.locator(".jp-RenderedImage img").first
    img.wait_for(timeout=SHORT)
    readout = slider.locator(".widget-readout")
    handle = slider.locator(".noUi-handle")
    start = readout.text_content().strip()  # the explorer's default, 1.00
    end = f"{float(handle.get_attribute('aria-valuemax')):.2f}"  # the slider's maximum, 2.00
    assert start != end, f"the explorer starts at the slider's maximum {end}"
    bs.scroll_to_top(page, cell)
    bs.screenshot(page, "01_04_run_all_explorer.png", ARTIFACTS)
    first = img.get_attribute("src")
    bs.screenshot(cell, f"02_04_explorer_rho_{start}.png", ARTIFACTS)

    # A student moves the slider with the keyboard: End on the focused handle (one change, so one
    # redraw; each arrow key would redraw once).
    handle.focus()
    page.keyboard.press("End")
    moved = wait_for_new_image(page, img, first)
    assert readout.text_content().strip() == end, f"End did not move the slider to {end}"
    fraction = changed_fraction(png_pixels(first), png_pixels(moved))
    assert fraction > 0.005, f"the plot barely changed ({fraction:.2%} of its pixels)"
    bs.screenshot(cell, f"03_04_explorer_rho_{end}.png", ARTIFACTS)

    # Back to the start by typing into the readout: the plot must be the first one again.
    readout.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(start)
    page.keyboard.press("Enter")
    back = wait_for_new_image(page, img, moved)
    assert readout.text_content().strip() == start
    assert changed_fraction(png_pixels(first), png_pixels(back)) == 0.0, (
        f"the plot at rho = {start} differs from the first one drawn for rho = {start}"
    )
    status = cell.locator(".widget-label").last.text_content()
    assert status.startswith("redrawn in "), f"explorer status: {status!r}"
    lap("4 slider")


def blank_notebook_messages(page, lap) -> None:
    """Assignment 2 as released (opened from the map): the messages a student sees before and
    while writing code."""
    bs.run_all(page, timeout=LONG)
    lap("2 ran")
    # Run All stops at the first failing cell: the softmax test, softmax being a stub.
    test = bs.cell_containing(page, '"""softmax: values')
    text = bs.output_text(test)
    assert "NotImplementedError" in text, f"the softmax test cell shows:\n{text}"
    assert "raise NotImplementedError()" in text, "the traceback does not point at the stub"
    bs.screenshot(test, "04_02_blank_softmax_test.png", ARTIFACTS)

    # The student writes rnn_cell_forward with Wh where Wh.T belongs, runs it and its test.
    cell = bs.cell_containing(page, "def rnn_cell_forward(")
    test = bs.cell_containing(page, '"""rnn_cell_forward: a hand-checkable step')
    for code, expected in ((TRANSPOSED_CELL, TRANSPOSED_MESSAGE), (FIXED_CELL, None)):
        before = bs.prompt(test)
        bs.replace_cell_source(page, cell, code)
        typed = cell.locator(".cm-content").text_content()
        assert "h_prev @ Wh" in typed and "raise NotImplementedError" not in typed, typed
        page.keyboard.press("Shift+Enter")  # runs the cell, selects the test cell below
        page.keyboard.press("Shift+Enter")
        page.wait_for_function(
            "([el, before]) => el.textContent.trim() !== before && !el.textContent.includes('*')",
            arg=[test.locator(".jp-InputPrompt").element_handle(), before], timeout=SHORT)
        bs.wait_kernel_idle(page, timeout=SHORT)
        text = bs.output_text(test)
        if expected:
            assert expected in text, f"the rnn_cell_forward test shows:\n{text}"
            shot = "05_02_transposed_rnn_cell_forward.png"
        else:
            assert "Error" not in text, f"the fixed rnn_cell_forward still fails:\n{text}"
            assert re.fullmatch(r"\[\d+\]:", bs.prompt(test)), bs.prompt(test)
            shot = "06_02_fixed_rnn_cell_forward.png"
        bs.stacked_screenshot([cell, test], shot, ARTIFACTS)
    lap("2 typed and tested")


def live_plot_while_training(page, course: Path, lap, findings) -> None:
    """Assignment 8, solved: every frame of the live loss plots of its default training runs.

    A MutationObserver on the notebook records each new image of the watched cells' first image
    output and whether the cell was running (prompt ``[*]``) when it appeared.
    """
    path = f"work/{TRAINED}/{TRAINED}.ipynb"
    code = [c.source for c in nbformat.read(course / path, as_version=4).cells
            if c.cell_type == "code"]
    watched = {}
    for key, pattern in LIVE_RUNS.items():
        found = [i for i, src in enumerate(code) if re.search(pattern, src, re.M)]
        assert len(found) == 1, f"{len(found)} code cells of {TRAINED} match {pattern!r}"
        watched[key] = found[0]

    bs.open_from_path(page, path, timeout=LONG)
    check_saved_on_open(page, f"{TRAINED}.ipynb", findings)
    lap("8 opened")
    cells = bs.code_cells(page)
    for key, index in watched.items():
        cells.nth(index).evaluate("(el, key) => { el.dataset.live = key; }", key)
    bs.active_notebook(page).evaluate("""nb => {
        const frames = window.liveFrames = {}, last = {};
        new MutationObserver(() => {
            for (const cell of nb.querySelectorAll('.jp-CodeCell[data-live]')) {
                const img = cell.querySelector('.jp-OutputArea-output img');
                const key = cell.dataset.live;
                if (!img || !img.src || img.src === last[key]) continue;
                last[key] = img.src;
                const prompt = cell.querySelector('.jp-InputPrompt').textContent;
                (frames[key] = frames[key] || []).push(
                    {t: performance.now() / 1000, running: prompt.includes('*')});
            }
        }).observe(nb, {subtree: true, childList: true, attributes: true,
                        attributeFilter: ['src']});
    }""")
    bs.run_all(page, timeout=LONG)
    lap("8 ran")
    check_ran_cleanly(page, TRAINED)
    frames = page.evaluate("() => window.liveFrames")
    for key, index in watched.items():
        seen = frames.get(key, [])
        during = [f for f in seen if f["running"]]
        span = during[-1]["t"] - during[0]["t"] if during else 0.0
        print(f"live plot of {TRAINED}'s {key} run: {len(during)} images while the cell ran "
              f"(over {span:.1f} s), {len(seen) - len(during)} after")
        if len(during) < LIVE_FRAMES:
            findings.append(
                f"the live plot of {TRAINED}'s default {key} run (code cell {index}) showed "
                f"{len(during)} image(s) while the cell ran; at least {LIVE_FRAMES} expected")
        bs.scroll_to_top(page, cells.nth(index))
        bs.screenshot(cells.nth(index), f"10_08_live_plot_{key}.png", ARTIFACTS)
    lap("8 live plots")


def nbgrader_extensions(page) -> None:
    """nbgrader's JupyterLab panels, opened from its menu as a student or an instructor would."""
    bs.menu(page, "Nbgrader", "Assignment List")
    panel = page.locator("#nbgrader-assignment-list")
    released = panel.locator("#released_assignments_list")
    released.get_by_text(BLANK).first.wait_for(timeout=SHORT)
    assert "Error" not in panel.text_content()
    bs.screenshot(page, "07_nbgrader_assignment_list.png", ARTIFACTS)

    bs.menu(page, "Nbgrader", "Course List")
    courses = page.locator("#nbgrader-course-list")
    courses.get_by_text("rnn-course").first.wait_for(timeout=SHORT)
    bs.screenshot(page, "08_nbgrader_course_list.png", ARTIFACTS)

    bs.menu(page, "Nbgrader", "Formgrader")
    frame = page.frame_locator("#formgrader iframe")
    for assignment in (EXPLORED, BLANK):
        frame.get_by_text(assignment, exact=True).first.wait_for(timeout=LONG)
    row = frame.locator("tr").filter(has=frame.get_by_text(BLANK, exact=True))
    status = row.first.text_content()
    assert "released" in status, f"formgrader's row of {BLANK}: {status!r}"
    page.wait_for_timeout(1000)
    bs.screenshot(page, "09_nbgrader_formgrader.png", ARTIFACTS)


def check_labextensions(listing: str) -> None:
    """The lab extensions the students need, as `jupyter labextension list` saw them."""
    for name in ("@jupyter/nbgrader", "@jupyter-widgets/jupyterlab-manager"):
        assert re.search(rf"{re.escape(name)} v\S+ \S*enabled\S* \S*OK", listing), (
            f"JupyterLab extension {name} is not enabled and OK:\n{listing}"
        )


def check_validate(results) -> None:
    """`nbgrader validate`: the blank release fails (a cell per unanswered task), solved passes."""
    blank, _ = results["validate blank"]
    solved, _ = results["validate solved"]
    assert re.search(r"VALIDATION FAILED ON \d+ CELL\(S\)!", blank), blank[-3000:]
    assert "NotImplementedError" in blank, blank[-3000:]
    assert "Success! Your notebook passes all the tests." in solved, solved[-3000:]
    assert "VALIDATION FAILED" not in solved, solved[-3000:]
