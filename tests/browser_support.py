"""Helpers for the browser test: a throw-away JupyterLab server, headless Chromium, page utilities.

Nothing here downloads a browser: Playwright drives Debian's ``/usr/bin/chromium``. The server
runs from this interpreter's environment (so the venv's JupyterLab, ipywidgets and nbgrader
extensions are the ones a student gets), with every per-user Jupyter/IPython directory and
``HOME`` moved into a temporary folder so that nothing of the machine's own configuration leaks
in or is written to.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium tries to reach Google's services, and the
# closed network answers by refusing the connections (noise, and sometimes slow start-up).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
REPO_ROOT = Path(__file__).resolve().parent.parent
# User settings of the test's JupyterLab: no news pop-up (it would cover the notebook and try to
# reach the network), and no autosave, so that the notebooks the test edits in the browser stay
# as they are on disk (nbgrader validate reads them there).
LAB_SETTINGS = {
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "docmanager-extension/plugin": {"autosave": False},
}


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- JupyterLab ----------------------------------------------------------------------------------
@dataclass
class LabServer:
    root: Path
    port: int
    token: str
    process: subprocess.Popen
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        request = urllib.request.Request(
            f"{self.base}/api/{path.lstrip('/')}", method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def printed_paths(self) -> list[str]:
        """The paths of the URLs JupyterLab printed for the user to open (the token left out)."""
        return re.findall(rf"http://127\.0\.0\.1:{self.port}(/\S*?)\?token=", self.log())

    def shutdown_kernels(self) -> None:
        for kernel in self.api("kernels"):
            try:
                self.api(f"kernels/{kernel['id']}", method="DELETE", timeout=30)
            except (OSError, urllib.error.URLError):
                pass


def lab_env(tmp: Path) -> dict[str, str]:
    """This process's environment with private Jupyter, IPython and home directories under ``tmp``.

    The venv's ``share/jupyter`` and ``etc/jupyter`` (extensions, kernels, server-extension
    switches) stay on the search paths: Jupyter always adds ``sys.prefix``'s folders.
    """
    env = dict(os.environ)
    dirs = {
        "HOME": "home",
        "JUPYTER_CONFIG_DIR": "jupyter_config",
        "JUPYTER_DATA_DIR": "jupyter_data",
        "JUPYTER_RUNTIME_DIR": "jupyter_runtime",
        "IPYTHONDIR": "ipython",
        "MPLCONFIGDIR": "mplconfig",
        "XDG_CACHE_HOME": "cache",
        "XDG_CONFIG_HOME": "config",
        "JUPYTERLAB_SETTINGS_DIR": "lab_settings",
        "JUPYTERLAB_WORKSPACES_DIR": "lab_workspaces",
    }
    for var, name in dirs.items():
        path = tmp / name
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    for var in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_PREFER_ENV_PATH",
                "NBGRADER_EXECUTION", "PYTHONSTARTUP"):
        env.pop(var, None)
    settings = tmp / "lab_settings" / "@jupyterlab"
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH"))
                                        if p)
    # nbgrader (validate, the server extensions) shells out to tools of the venv.
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    return env


def labextensions(env: dict[str, str]) -> str:
    """``jupyter labextension list`` as the server will see it (printed on stdout and stderr)."""
    proc = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], env=env,
                          capture_output=True, text=True, timeout=120)
    return proc.stdout + proc.stderr


def wait_until(check, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Call ``check()`` until it returns something truthy; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(interval)


def make_lab_command(root: Path, lab_args: list[str]) -> list[str]:
    """``make lab`` of the repository's Makefile, run in the course folder ``root``.

    ``-C root`` makes ``root`` the folder JupyterLab is rooted at (the Makefile uses ``$(CURDIR)``),
    ``VENV`` is this interpreter's environment, and ``-o`` keeps make from rebuilding it when
    pyproject.toml or the lock is newer than its stamp. ``lab_args`` go in through ``LAB_ARGS``, as
    a student would pass options (no option may contain a space).
    """
    venv = Path(sys.executable).parent.parent
    assert not any(" " in arg for arg in lab_args), lab_args
    return ["make", "--no-print-directory", "-C", str(root), "-f", str(REPO_ROOT / "Makefile"),
            "-o", str(venv / ".installed"), f"VENV={venv}", "lab",
            "LAB_ARGS=" + " ".join(lab_args)]


@contextmanager
def jupyter_lab(root: Path, tmp: Path, *, env: dict[str, str] | None = None,
                start_timeout: float = 120, via_make: bool = False):
    """Run ``jupyter lab`` on ``root`` on a free loopback port with a random token; always stop it.

    ``via_make``: start it the way students do, with ``make lab`` (``make_lab_command``), which
    roots it at ``root`` and opens the course map; the options below go in through ``LAB_ARGS``.
    Kernels are shut down through the REST API first (they run in process groups of their own),
    then the server (and make) get SIGTERM and, if still running after 20 s, SIGKILL.
    """
    env = env or lab_env(tmp)
    token = secrets.token_hex(24)
    port = free_port()
    log_path = tmp / "jupyterlab.log"
    options = [
        "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--IdentityProvider.token={token}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if via_make:  # make lab adds --ServerApp.root_dir, and --allow-root as root
        cmd = make_lab_command(root, options)
    else:
        cmd = [sys.executable, "-m", "jupyter", "lab", *options, f"--ServerApp.root_dir={root}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            cmd.append("--allow-root")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(root, port, token, process, log_path)
    try:
        def answering():
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {process.returncode}:\n"
                                   f"{server.log()[-4000:]}")
            try:
                return server.api("status", timeout=5) is not None
            except (OSError, urllib.error.URLError, ValueError):
                return False

        wait_until(answering, start_timeout, 0.5, "JupyterLab answering on /api/status")
        yield server
    finally:
        try:
            if process.poll() is None:
                server.shutdown_kernels()
        except (OSError, urllib.error.URLError, ValueError):
            pass
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


# --- Chromium ------------------------------------------------------------------------------------
class BrowserUnavailable(RuntimeError):
    """Chromium is missing or Playwright cannot launch it: the test skips with this message."""


def launch_chromium(playwright, user_data_dir: Path):
    """Debian's Chromium, headless, with a fresh profile and a home of its own.

    A persistent context gives the profile folder ``user_data_dir``; ``HOME`` and the XDG folders
    go next to it, so that Chromium's crash-report and cache folders are not made in the real home.
    """
    if not CHROMIUM.exists():
        raise BrowserUnavailable(
            f"{CHROMIUM} is missing: install Debian's chromium (`make system-deps`)"
        )
    home = Path(user_data_dir).parent / "chromium-home"
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"))
    home.mkdir(parents=True, exist_ok=True)
    try:
        return playwright.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport=VIEWPORT, timeout=60_000, env=env,
        )
    except Exception as exc:  # Playwright raises its own Error for a browser that will not start
        raise BrowserUnavailable(f"Playwright cannot launch {CHROMIUM}: {exc}") from exc


@dataclass
class ConsoleMessage:
    kind: str  # "error", "warning", ..., or "pageerror" for an uncaught exception
    text: str
    url: str


class ConsoleLog:
    """Every console message and uncaught page error of the pages it watches."""

    def __init__(self):
        self.messages: list[ConsoleMessage] = []

    def watch(self, page) -> None:
        page.on("console", lambda m: self.messages.append(
            ConsoleMessage(m.type, m.text, (m.location or {}).get("url", ""))))
        page.on("pageerror", lambda e: self.messages.append(
            ConsoleMessage("pageerror", f"{e.name}: {e.message}", page.url)))

    def errors(self, since: int = 0, ignore: dict[str, str] | None = None) -> list[ConsoleMessage]:
        """Errors after ``since`` that match none of the regexes in ``ignore`` (regex: reason)."""
        patterns = [re.compile(p) for p in (ignore or {})]
        return [m for m in self.messages[since:]
                if m.kind in ("error", "pageerror")
                and not any(p.search(m.text) for p in patterns)]


# --- JupyterLab pages ----------------------------------------------------------------------------
def screenshot(page_or_locator, name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page_or_locator.screenshot(path=str(path))
    return path


def stacked_screenshot(locators, name: str, folder: Path, gap: int = 6) -> Path:
    """One PNG of several elements (say a cell and its test cell), one below the other."""
    from PIL import Image

    images = [Image.open(io.BytesIO(loc.screenshot())).convert("RGB") for loc in locators]
    width = max(im.width for im in images)
    sheet = Image.new("RGB", (width, sum(im.height for im in images) + gap * (len(images) - 1)),
                      "white")
    top = 0
    for im in images:
        sheet.paste(im, (0, top))
        top += im.height + gap
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    sheet.save(path)
    return path


def scroll_to_top(page, locator, attempts: int = 6) -> None:
    """Scroll the notebook so that ``locator`` starts near the top of the view.

    Off-screen cells are laid out lazily (CSS content-visibility), so the first scroll lands on
    estimated heights; repeat until the element stays put.
    """
    last = None
    for _ in range(attempts):
        locator.evaluate("el => el.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
        box = locator.bounding_box()
        top = round(box["y"]) if box else None
        if top is not None and top == last:
            return
        last = top


def open_from_path(page, path: str, timeout: float = 90_000) -> None:
    """File > Open from Path…, as a student would open a notebook without reloading the page."""
    menu(page, "File", "Open from Path…")
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill(path)
    dialog.get_by_role("button", name="Open").click()
    name = path.rsplit("/", 1)[-1]
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current",
                 has_text=name).wait_for(timeout=timeout)
    active_notebook(page).locator(".jp-Cell").first.wait_for(timeout=timeout)
    wait_kernel_idle(page, timeout=timeout)


def tab(page, name: str):
    """The main area's tab of the document called ``name`` (a file name)."""
    return page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab").filter(
        has=page.locator(".lm-TabBar-tabLabel", has_text=re.compile(f"^{re.escape(name)}$")))


def unsaved(page, name: str) -> bool:
    """Whether the tab of ``name`` shows JupyterLab's unsaved-changes marker (``jp-mod-dirty``)."""
    return "jp-mod-dirty" in (tab(page, name).first.get_attribute("class") or "").split()


def active_notebook(page):
    """The notebook panel in the main area that is currently shown."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first


def menu(page, *labels: str, timeout: float = 30_000) -> None:
    """Click through the main menu bar, e.g. ``menu(page, "Run", "Run All Cells")``."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(labels[0])}$")) \
        .first.click(timeout=timeout)
    for label in labels[1:]:
        item = page.locator(".lm-Menu:visible .lm-Menu-item:not(.lm-mod-disabled)").filter(
            has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(label)}$")))
        item.first.click(timeout=timeout)


def run_all(page, timeout: float = 90_000, start_within: float = 20_000) -> None:
    """Run > Run All Cells, and wait until the kernel has run what it was given.

    On a loaded machine JupyterLab can take the click while the notebook's kernel connection is
    still settling and queue nothing: every prompt stays ``[ ]``. The click is then repeated
    (at most twice more) once ``start_within`` ms have passed without the first cell starting.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    first = code_cells(page).first.locator(".jp-InputPrompt").element_handle()
    for attempt in range(3):
        menu(page, "Run", "Run All Cells")
        try:
            page.wait_for_function("el => el.textContent.trim() !== '[ ]:'", arg=first,
                                   timeout=start_within)
            break
        except PlaywrightTimeout:
            print(f"Run All Cells, attempt {attempt + 1}: no cell started in "
                  f"{start_within / 1000:.0f} s (kernel status {kernel_status(page)!r})")
    else:
        raise TimeoutError("Run All Cells started no cell in three attempts")
    wait_kernel_idle(page, timeout=timeout)


def kernel_status(page) -> str:
    """The state of the active notebook's kernel as its toolbar indicator shows it."""
    indicator = active_notebook(page).locator(".jp-Notebook-ExecutionIndicator")
    if not indicator.count():
        return ""
    return indicator.first.get_attribute("data-status") or ""


def pending_cells(page) -> int:
    """Code cells queued or running: their prompt shows ``[*]``."""
    prompts = active_notebook(page).locator(".jp-CodeCell .jp-InputPrompt")
    return sum(1 for text in prompts.all_text_contents() if "*" in text)


def wait_kernel_idle(page, timeout: float = 90_000, settle: float = 0.5) -> None:
    """Wait until the kernel is idle, no cell is queued, and it stays so for ``settle`` s."""
    deadline = time.monotonic() + timeout / 1000
    quiet_since = None
    while True:
        idle = kernel_status(page) == "idle" and pending_cells(page) == 0
        now = time.monotonic()
        if idle:
            quiet_since = quiet_since or now
            if now - quiet_since >= settle:
                return
        else:
            quiet_since = None
        if now > deadline:
            raise TimeoutError(
                f"kernel not idle after {timeout / 1000:.0f} s (status {kernel_status(page)!r}, "
                f"{pending_cells(page)} cells pending)"
            )
        page.wait_for_timeout(200)


def code_cells(page):
    return active_notebook(page).locator(".jp-CodeCell")


def cell_containing(page, text: str):
    """The one code cell of the active notebook whose source contains ``text``.

    CodeMirror renders only the lines near the view of a long cell: look for text near the top.
    """
    cells = code_cells(page).filter(has=page.locator(".jp-InputArea", has_text=text))
    count = cells.count()
    if count != 1:
        raise AssertionError(f"{count} code cells contain {text!r}; expected exactly one")
    return cells.first


def output_text(cell) -> str:
    """The text of a cell's outputs (from the DOM, so also of cells scrolled out of view)."""
    return "\n".join(cell.locator(".jp-OutputArea-output").all_text_contents())


def prompt(cell) -> str:
    """The execution prompt: ``[3]:`` after a run, ``[*]:`` while queued, ``[ ]:`` never run."""
    return (cell.locator(".jp-InputPrompt").first.text_content() or "").strip()


def replace_cell_source(page, cell, code: str) -> None:
    """Select ``cell``, enter edit mode and replace its source, typed in as one text input.

    ``insert_text`` sends the text the way an input method or a paste does, so CodeMirror adds no
    indentation of its own to the new lines.
    """
    cell.locator(".cm-content").first.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))


# --- several users in one browser (tests/test_hub.py) --------------------------------------------
def launch_chromium_browser(playwright, folder: Path):
    """Debian's Chromium, headless, as a Playwright ``Browser``: ``browser.new_context()`` then
    gives each user logged in at the same time cookies and storage of their own (the student's
    session is not the instructor's). Its home, caches and crash reports go under ``folder``.
    Raises :class:`BrowserUnavailable` as :func:`launch_chromium` does."""
    if not CHROMIUM.exists():
        raise BrowserUnavailable(
            f"{CHROMIUM} is missing: install Debian's chromium (`make system-deps`)"
        )
    home = Path(folder) / "chromium-home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"))
    try:
        return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                          args=CHROMIUM_ARGS, timeout=60_000, env=env)
    except Exception as exc:  # Playwright raises its own Error for a browser that will not start
        raise BrowserUnavailable(f"Playwright cannot launch {CHROMIUM}: {exc}") from exc
