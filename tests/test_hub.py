"""The classroom end to end: `make hub`, nbgrader's exchange, two students and an instructor in
headless Chromium (issue 16).

One test, because starting the hub, three JupyterLab servers and Chromium is the expensive part.
It runs as root (it makes Linux accounts) and uses accounts of its own, ``rnnt-instructor``,
``rnnt-student-a`` and ``rnnt-student-b`` (removed at the end, with their homes), a hub state
folder in ``tmp_path`` and a free port, so it never touches the accounts or the state of a
`make hub` someone runs on the same machine:

1. starts `make hub` (JupyterHub, its proxy from npm, PAM logins, the personal exchange of
   ``hub/rnn_exchange.py``, the MathJax service) and checks the exchange's owners and modes;
2. the instructor releases assignment 2 with the course's command, ``nbgrader release_assignment``
   in their course folder (the committed ``release/``), as they would in their terminal;
3. each student logs in, opens nbgrader's Assignment List (students' Nbgrader menu has no
   Formgrader; the instructor's has) and fetches it. Student A types the
   instructor's solution into the solution cells in JupyterLab and saves; student B's notebook is
   written as student B (the solution with one real mistake, the fixture
   ``softmax_sums_over_axis_0``). Both press Validate (A: success; B: the softmax test fails) and
   Submit in the Assignment List;
4. as student A: B's submission, home and (later) feedback cannot be listed or read, neither
   through the file system nor through nbgrader's exchange (``nbgrader list --inbound``,
   ``nbgrader collect``); a submission A hands in under B's name is not collected as B's; and the
   hub does not let A open B's server;
5. the instructor collects (``nbgrader collect``), grades with ``make grade`` (python -m
   autograder.grade --course), generates the feedback (python -m autograder.feedback) and
   releases it (``nbgrader release_feedback``), all as the instructor; A has 20/20, B loses only
   the softmax test's points;
6. the instructor's formgrader shows B's submission with its math typeset by the hub's local
   MathJax (no request leaves the machine, no console error);
7. each student fetches their feedback in the Assignment List and opens it: their own score,
   the hidden tests replaced by a note, math typeset;
8. `make hub-stop` stops everything: no process of the three accounts is left.

Screenshots of every step land in ``artifacts/hub/``. It skips, with the reason, only where a
piece cannot be installed or run here: not root, no Chromium, no npm, no Python for the hub.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import browser_support as bs
import nbformat
import pytest

from autograder.config import REPO_ROOT
from autograder.submissions import load_variants, solution_submission, variant_submission

pytestmark = pytest.mark.browser  # with the browser test: `-m "not browser"` leaves it out

ARTIFACTS = REPO_ROOT / "artifacts" / "hub"
ASSIGNMENT = "02_forward_pass"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
INSTRUCTOR = "rnnt-instructor"
STUDENT_A = "rnnt-student-a"
STUDENT_B = "rnnt-student-b"
USERS = (INSTRUCTOR, STUDENT_A, STUDENT_B)
BUG = "softmax_sums_over_axis_0"  # autograder/fixtures/02_forward_pass.toml
BUG_CELL = "test_softmax"
HUB_VENV = REPO_ROOT / "build" / "hub-venv"
RNNHUB = REPO_ROOT / "hub" / "rnnhub.py"
LONG = 240_000
SHORT = 60_000
# Console errors that are not the course's or the hub's fault. Each needs a reason.
IGNORED_CONSOLE_ERRORS: dict[str, str] = {
    # JupyterHub answers a page of another user's server with 403, and Chromium logs the
    # failed load of that page (step 4 provokes it on purpose).
    r"Failed to load resource: the server responded with a status of 403": "A opens B's server",
}


# --- the hub -------------------------------------------------------------------------------------
class Hub:
    """A `make hub` running in ``state`` on ``port``, and what it says about itself."""

    def __init__(self, state: Path, port: int, process: subprocess.Popen, log: Path):
        self.state, self.port, self.process, self.log_path = state, port, process, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def settings(self) -> dict:
        return json.loads((self.state / "settings.json").read_text())

    def password(self, user: str) -> str:
        return json.loads(Path(self.settings["passwords"]).read_text())[user]

    @property
    def course(self) -> Path:
        return Path(self.settings["course"])

    @property
    def exchange(self) -> Path:
        return Path(self.settings["exchange"]) / "rnn-course"

    def run(self, user: str, *cmd: str, cwd: Path | None = None, check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess:
        """``cmd`` as ``user``, with their hub environment (hub/rnnhub.py run): what they would
        type in their JupyterLab's terminal."""
        args = [str(HUB_VENV / "bin" / "python"), str(RNNHUB), "run", "--state", str(self.state),
                "--user", user, *(["--cwd", str(cwd)] if cwd else []), "--", *cmd]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} as {user} exited {proc.returncode}:\n"
                                 f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def instructor(self, *cmd: str, **kwargs) -> subprocess.CompletedProcess:
        """A command of the instructor, run in their course folder."""
        return self.run(INSTRUCTOR, *cmd, cwd=self.course, **kwargs)


def make(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO_ROOT), *args],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def hub_vars(state: Path, port: int) -> list[str]:
    return [f"HUB_DIR={state}", f"HUB_PORT={port}", f"HUB_INSTRUCTOR={INSTRUCTOR}",
            f"HUB_STUDENTS={STUDENT_A} {STUDENT_B}"]


def skip_unless_installable() -> None:
    """Skip, with the reason, where a piece cannot be installed or run here; otherwise make sure
    the hub's pieces are installed (`make hub-deps`, which `make test` runs first anyway)."""
    if os.geteuid() != 0:
        pytest.skip("the hub test makes Linux accounts and runs JupyterHub as root: run it as root")
    for tool in ("useradd", "userdel", "runuser", "chpasswd"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing (Debian's passwd and util-linux)")
    if not bs.CHROMIUM.exists():
        pytest.skip(f"{bs.CHROMIUM} is missing: `make system-deps` installs Debian's chromium")
    node = shutil.which("node")
    if node:  # configurable-http-proxy 5 needs Node.js 20 (Debian 12's own nodejs is 18)
        version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
        major = re.match(r"v(\d+)", version.strip())
        if major and int(major.group(1)) < 20:
            pytest.skip(f"Node.js {version.strip()} is too old for the hub's proxy (needs 20+)")
    deps = make("hub-deps")
    output = deps.stdout + deps.stderr
    assert deps.returncode == 0, f"make hub-deps failed:\n{output[-4000:]}"
    for line in output.splitlines():
        if line.startswith("make hub-deps:"):  # what the recipe could not install, and why
            pytest.skip(line)
    assert (HUB_VENV / "bin" / "jupyterhub-singleuser").is_file(), output[-3000:]


def remove_accounts() -> None:
    """The test's accounts and homes, and any process of theirs a failed run left behind."""
    import psutil

    for proc in psutil.process_iter(["username"]):
        if proc.info["username"] in USERS:
            try:
                proc.kill()
            except psutil.Error:
                pass
    for user in USERS:
        if subprocess.run(["id", user], capture_output=True).returncode == 0:
            subprocess.run(["userdel", "--remove", user], capture_output=True)
        shutil.rmtree(f"/home/{user}", ignore_errors=True)


def processes_of(users) -> list[str]:
    import psutil

    return [f"{p.pid} {p.info['username']} {' '.join(p.info['cmdline'] or [])[:120]}"
            for p in psutil.process_iter(["username", "cmdline"])
            if p.info["username"] in users]


def start_hub(shared: Path) -> Hub:
    state = shared / "hub"
    port = bs.free_port()
    log = shared / "make-hub.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "-C", str(REPO_ROOT), "hub", *hub_vars(state, port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    hub = Hub(state, port, process, log)

    def answering():
        if process.poll() is not None:
            raise RuntimeError(f"make hub exited {process.returncode}:\n{hub.log()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{hub.url}/hub/api", timeout=5) as response:
                return "version" in json.loads(response.read())
        except (OSError, urllib.error.URLError, ValueError):
            return False

    bs.wait_until(answering, 300, 0.5, "JupyterHub answering on /hub/api")
    return hub


def stop_hub(hub: Hub) -> str:
    """`make hub-stop`; the hub's own make process must then end."""
    stopped = make("hub-stop", f"HUB_DIR={hub.state}", timeout=180)
    try:
        hub.process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(hub.process.pid, signal.SIGKILL)
        hub.process.wait(10)
        raise AssertionError(f"make hub still ran after make hub-stop:\n{stopped.stdout}") from None
    return stopped.stdout + stopped.stderr


# --- the browser ---------------------------------------------------------------------------------
class Session:
    """One user's browser context and page, logged in to the hub."""

    def __init__(self, browser, hub: Hub, user: str, console: bs.ConsoleLog):
        self.user, self.hub = user, hub
        self.context = browser.new_context(viewport=bs.VIEWPORT)
        self.context.set_default_timeout(SHORT)
        self.page = self.context.new_page()
        console.watch(self.page)
        self.outside: list[str] = []  # requests to anywhere but the hub: must stay empty
        self.page.on("request", self._request)

    def _request(self, request) -> None:
        url = request.url
        if not url.startswith((self.hub.url, "data:", "blob:", "about:")):
            self.outside.append(url)

    @property
    def server(self) -> str:
        return f"{self.hub.url}/user/{self.user}"

    def login(self, shot: str | None = None) -> None:
        page = self.page
        page.goto(f"{self.hub.url}/hub/login", timeout=LONG)
        page.fill("input[name=username]", self.user)
        page.fill("input[name=password]", self.hub.password(self.user))
        if shot:
            bs.screenshot(page, shot, ARTIFACTS)
        page.locator("#login_submit, input[type=submit], button[type=submit]").first.click()
        page.locator("#jp-main-dock-panel").wait_for(timeout=LONG)  # after the server's spawn
        assert page.url.startswith(f"{self.server}/lab"), page.url

    def nbgrader_menu(self) -> list[str]:
        """The items of the Nbgrader menu this user's JupyterLab shows."""
        page = self.page
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Nbgrader$")).first.click()
        items = page.locator(".lm-Menu:visible .lm-Menu-itemLabel")
        items.first.wait_for()
        labels = items.all_text_contents()
        page.keyboard.press("Escape")
        return labels

    def assignment_list(self):
        bs.menu(self.page, "Nbgrader", "Assignment List")
        panel = self.page.locator("#nbgrader-assignment-list")
        panel.locator("#assignments_toolbar").wait_for()
        return panel


def fetch_assignment(session: Session, shot_prefix: str) -> None:
    page = session.page
    panel = session.assignment_list()
    released = panel.locator("#released_assignments_list .list_item", has_text=ASSIGNMENT)
    released.locator("button", has_text="Fetch").wait_for(timeout=SHORT)
    bs.screenshot(page, f"{shot_prefix}_assignment_list_released.png", ARTIFACTS)
    released.locator("button", has_text="Fetch").click()
    fetched = panel.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT)
    fetched.first.wait_for(timeout=SHORT)
    home = Path(f"/home/{session.user}")
    assert (home / ASSIGNMENT / NOTEBOOK).is_file(), "Fetch put no notebook in the home folder"
    fetched.locator("a.assignment-notebooks-link").first.click()  # show its notebooks
    fetched.locator("button", has_text="Validate").wait_for()
    bs.screenshot(page, f"{shot_prefix}_fetched.png", ARTIFACTS)


def type_solution(session: Session, solved) -> int:
    """Open the fetched notebook from the Assignment List and type the instructor's solution into
    every solution cell, then save (Ctrl+S). Returns the number of cells typed."""
    page = session.page
    panel = page.locator("#nbgrader-assignment-list")
    panel.locator(".nested_list_item a", has_text=ASSIGNMENT).first.click()
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current",
                 has_text=NOTEBOOK).wait_for(timeout=LONG)
    # every cell rendered (the kernel indicator says "idle" before the kernel even starts)
    cells = bs.active_notebook(page).locator(".jp-Cell")
    bs.wait_until(lambda: cells.count() == len(solved.cells), LONG / 1000,
                  what=f"{NOTEBOOK}'s {len(solved.cells)} cells shown")
    page.wait_for_timeout(2000)
    bs.wait_kernel_idle(page, timeout=LONG)
    typed = 0
    for cell in solved.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("solution"):
            continue
        first_line = cell.source.splitlines()[0]
        target = bs.cell_containing(page, first_line)
        bs.replace_cell_source(page, target, cell.source)
        shown = target.locator(".cm-content").text_content()
        assert "NotImplementedError" not in shown, f"{meta['grade_id']}: {shown[:300]}"
        typed += 1
        if typed == 3:  # rnn_cell_forward
            bs.scroll_to_top(page, target)
            bs.screenshot(target, "04_a_types_rnn_cell_forward.png", ARTIFACTS)
    page.keyboard.press("Escape")
    page.keyboard.press("ControlOrMeta+s")
    bs.wait_until(lambda: not bs.unsaved(page, NOTEBOOK), 30, what="the notebook saved")
    return typed


def validate(session: Session, shot: str) -> str:
    """The Assignment List's Validate button; returns the dialog's text."""
    page = session.page
    panel = session.assignment_list()
    item = panel.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT).first
    if not item.locator("button", has_text="Validate").is_visible():
        item.locator("a.assignment-notebooks-link").first.click()
    item.locator("button", has_text="Validate").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=LONG)
    text = dialog.inner_text()
    bs.screenshot(page, shot, ARTIFACTS)
    dialog.locator("button").last.click()
    dialog.wait_for(state="detached")
    return text


def submit(session: Session, shot: str) -> None:
    page = session.page
    panel = session.assignment_list()
    item = panel.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT).first
    item.locator("button", has_text="Submit").click()
    submitted = panel.locator("#submitted_assignments_list .list_item", has_text=ASSIGNMENT)
    submitted.first.wait_for(timeout=SHORT)
    page.wait_for_timeout(500)
    bs.screenshot(page, shot, ARTIFACTS)


def fetch_feedback(session: Session, shot: str) -> Path:
    """Fetch Feedback in the Assignment List, then "(view feedback)"; the fetched page's path."""
    page = session.page
    panel = session.assignment_list()
    panel.locator("#refresh_assignments_list").click()
    item = panel.locator("#submitted_assignments_list .list_item", has_text=ASSIGNMENT).first
    button = item.locator("button", has_text="Fetch Feedback")
    bs.wait_until(lambda: "(feedback available to fetch)" in item.inner_text(), 60,
                  what="the Assignment List offering the released feedback")
    button.click()
    link = item.locator("a", has_text="view feedback")
    link.wait_for(timeout=SHORT)
    link.click()  # the file browser goes to the feedback folder
    page.wait_for_timeout(1000)
    bs.screenshot(page, shot, ARTIFACTS)
    pages = sorted(Path(f"/home/{session.user}/{ASSIGNMENT}/feedback").glob(f"*/{ASSIGNMENT}.html"))
    assert len(pages) == 1, pages
    listing = page.locator(".jp-FileBrowser .jp-DirListing-item .jp-DirListing-itemText")
    bs.wait_until(lambda: f"{ASSIGNMENT}.html" in listing.all_text_contents(), 30,
                  what="the feedback page in the file browser")
    return pages[0]


def open_feedback(session: Session, path: Path, shot: str, focus: str | None = None) -> str:
    """The feedback page, opened from the student's server in a tab of its own (as the file
    browser's "Open in New Browser Tab" does); waits for MathJax. Returns its text. ``focus``: a
    graded cell of which a second screenshot is taken."""
    relative = path.relative_to(f"/home/{session.user}")
    url = f"{session.server}/files/{urllib.request.pathname2url(str(relative))}"
    page = session.context.new_page()
    page.on("request", session._request)
    page.goto(url, timeout=LONG)
    wait_for_mathjax(page)
    text = page.locator("body").inner_text()
    page.screenshot(path=str(ARTIFACTS / shot), full_page=False)
    if focus:
        page.locator(f"a[name='{focus}']").evaluate("el => el.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / shot.replace(".png", f"_{focus}.png")))
    page.close()
    return text


def wait_for_mathjax(page) -> int:
    """Wait until MathJax has typeset the page; the number of formulas it rendered."""
    page.wait_for_function(
        "() => window.MathJax && MathJax.Hub && MathJax.Hub.queue && "
        "MathJax.Hub.queue.pending === 0 && document.querySelectorAll('.MathJax_CHTML').length",
        timeout=SHORT)
    return page.locator(".MathJax_CHTML").count()


# --- checks --------------------------------------------------------------------------------------
def check_exchange_layout(hub: Hub) -> None:
    """Owners and modes of hub/rnn_exchange.py's layout, as make hub left them."""
    sys.path.insert(0, str(REPO_ROOT / "hub"))
    import rnn_exchange as rx

    def mode(path: Path) -> int:
        return path.stat().st_mode & 0o7777

    def owner(path: Path) -> tuple[str, str]:
        return path.owner(), path.group()

    root = hub.exchange.parent
    assert mode(root) == rx.EXCHANGE_ROOT_MODE and owner(root) == ("root", "root")
    assert mode(hub.exchange) == rx.COURSE_MODE and owner(hub.exchange)[0] == INSTRUCTOR
    for kind in ("inbound", "feedback"):
        shared = hub.exchange / kind
        assert mode(shared) == rx.SHARED_MODE and owner(shared)[0] == INSTRUCTOR, shared
        for student in (STUDENT_A, STUDENT_B):
            personal = shared / student
            assert mode(personal) == rx.PERSONAL_MODE, (personal, oct(mode(personal)))
            assert owner(personal) == (INSTRUCTOR, student), (personal, owner(personal))
    for user in USERS:
        home = Path(f"/home/{user}")
        assert mode(home) == 0o700 and home.owner() == user, (home, oct(mode(home)))


def denied(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode != 0 and "Permission denied" in proc.stdout + proc.stderr


def check_a_cannot_reach_b(hub: Hub, session_a: Session) -> dict[str, str]:
    """As student A: B's submission, home and work, through the file system and the exchange."""
    b_submission = next((hub.exchange / "inbound" / STUDENT_B).iterdir())  # root knows its name
    b_notebook = b_submission / NOTEBOOK
    tries = {
        "list the inbound folder": ["ls", str(hub.exchange / "inbound")],
        "list B's inbound folder": ["ls", str(hub.exchange / "inbound" / STUDENT_B)],
        "read B's submitted notebook (its exact path)": ["cat", str(b_notebook)],
        "read B's submission timestamp": ["cat", str(b_submission / "timestamp.txt")],
        "list B's home": ["ls", f"/home/{STUDENT_B}"],
        "read B's working notebook": ["cat", f"/home/{STUDENT_B}/{ASSIGNMENT}/{NOTEBOOK}"],
        "read B's nbgrader cache": ["ls", f"/home/{STUDENT_B}/.local/share/jupyter"],
        "list the feedback folder": ["ls", str(hub.exchange / "feedback")],
        "list B's feedback folder": ["ls", str(hub.exchange / "feedback" / STUDENT_B)],
    }
    found = {}
    for what, cmd in tries.items():
        proc = hub.run(STUDENT_A, *cmd, check=False)
        assert denied(proc), f"student A could {what}:\n{proc.stdout[:2000]}{proc.stderr[:2000]}"
        found[what] = (proc.stderr.strip().splitlines() or [""])[-1]
    # Through nbgrader's exchange: listing submissions and collecting are the instructor's.
    listing = hub.run(STUDENT_A, "nbgrader", "list", "--inbound", ASSIGNMENT, check=False)
    assert STUDENT_B not in listing.stdout + listing.stderr, listing.stderr[-3000:]
    found["nbgrader list --inbound"] = "nothing of B listed"
    with tempfile.TemporaryDirectory() as scratch:
        os.chmod(scratch, 0o777)
        collect = hub.run(STUDENT_A, "nbgrader", "collect", ASSIGNMENT,
                          f"--CourseDirectory.root={scratch}", check=False)
        taken = list(Path(scratch).rglob("*.ipynb"))
    assert collect.returncode != 0 and not taken, collect.stderr[-3000:]
    found["nbgrader collect"] = (collect.stderr.strip().splitlines() or [""])[-1]
    # A hands in a notebook under B's name: it can only land in A's own folder.
    forged = hub.run(STUDENT_A, "nbgrader", "submit", ASSIGNMENT, f"--student={STUDENT_B}",
                     cwd=Path(f"/home/{STUDENT_A}"))
    assert f"inbound/{STUDENT_A}/{STUDENT_B}+" in forged.stderr, forged.stderr[-2000:]
    found["nbgrader submit --student B"] = "landed in A's own folder"
    # The hub itself: A's login does not open B's server.
    response = session_a.page.goto(f"{session_a.hub.url}/user/{STUDENT_B}/lab")
    status = response.status if response else None
    assert status == 403, f"A opening B's server got HTTP {status}"
    bs.screenshot(session_a.page, "07_a_opens_b_server_403.png", ARTIFACTS)
    found["open B's server in the browser"] = f"HTTP {status}"
    session_a.page.go_back()
    return found


def raw_tex(text: str) -> list[str]:
    """TeX commands of the assignment's formulas that show as text: MathJax did not typeset them
    (it keeps the source in script elements, which are not part of the page's text)."""
    return sorted(set(re.findall(r"\\(?:tanh|mathrm|sigma|hat|sum|log)\b", text)))


def hidden_markers() -> list[str]:
    """Lines that occur only inside the hidden-test regions of the source notebook."""
    source = nbformat.read(REPO_ROOT / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    hidden, visible = set(), set()
    for cell in source.cells:
        inside = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if "BEGIN HIDDEN TESTS" in stripped:
                inside = True
            elif "END HIDDEN TESTS" in stripped:
                inside = False
            elif stripped:
                (hidden if inside else visible).add(stripped)
    return sorted(h for h in hidden - visible if len(h) > 25)


# --- the test ------------------------------------------------------------------------------------
def test_classroom_on_jupyterhub(tmp_path):
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    laps: dict[str, float] = {}

    def lap(name: str) -> None:
        laps[name] = time.perf_counter() - started

    skip_unless_installable()
    lap("hub-deps")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    remove_accounts()
    # The hub's state (its exchange, the users' Jupyter configuration) must be reachable by every
    # account: not under pytest's tmp_path, whose parent is root's alone.
    shared = Path(tempfile.mkdtemp(prefix="rnnhub-test-"))
    shared.chmod(0o755)

    source = nbformat.read(REPO_ROOT / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    release = nbformat.read(REPO_ROOT / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    solved = solution_submission(source, release)
    bug = next(v for v in load_variants(ASSIGNMENT, generated=False) if v.name == BUG)
    buggy = variant_submission(source, release, bug)

    hub = start_hub(shared)
    console = bs.ConsoleLog()
    sessions: list[Session] = []
    try:
        lap("hub up")
        check_exchange_layout(hub)
        released = hub.instructor("nbgrader", "release_assignment", ASSIGNMENT)
        assert "Released as: rnn-course 02_forward_pass" in released.stderr, released.stderr
        lap("released")
        with sync_playwright() as playwright:
            try:
                browser = bs.launch_chromium_browser(playwright, tmp_path)
            except bs.BrowserUnavailable as exc:
                pytest.skip(str(exc))
            try:
                a = Session(browser, hub, STUDENT_A, console)
                b = Session(browser, hub, STUDENT_B, console)
                sessions += [a, b]
                a.login(shot="01_login.png")
                lap("A logged in")
                fetch_assignment(a, "02_a")
                typed = type_solution(a, solved)
                assert typed == sum(1 for c in solved.cells if c.cell_type == "code" and
                                    c.metadata.get("nbgrader", {}).get("solution"))
                lap("A typed the solution")
                b.login()
                lap("B logged in")
                fetch_assignment(b, "03_b")
                menu = b.nbgrader_menu()  # students get nbgrader's student tools only
                assert "Assignment List" in menu and "Formgrader" not in menu, menu
                # B's work, written as B into the fetched folder (the student user's own file).
                scratch = shared / "b.ipynb"
                nbformat.write(buggy, scratch)
                scratch.chmod(0o644)
                hub.run(STUDENT_B, "cp", str(scratch), f"{ASSIGNMENT}/{NOTEBOOK}")

                text = validate(a, "05_a_validate_success.png")
                assert "Success! Your notebook passes all the tests." in text, text
                text = validate(b, "05_b_validate_fails.png")
                assert "failed" in text and "softmax" in text, text
                lap("validated")
                submit(a, "06_a_submitted.png")
                submit(b, "06_b_submitted.png")
                lap("submitted")

                isolation = check_a_cannot_reach_b(hub, a)
                lap("isolation checked")

                collected = hub.instructor("nbgrader", "collect", ASSIGNMENT)
                assert f"in the folder of {STUDENT_A}" in collected.stderr, collected.stderr
                b_collected = nbformat.read(hub.course / "submitted" / STUDENT_B / ASSIGNMENT /
                                            NOTEBOOK, as_version=4)
                assert bug.replace in "\n".join(c.source for c in b_collected.cells), \
                    "B's collected notebook is not B's own submission"
                # -o: the hub's environment is root's to update (make hub-deps ran above);
                # an edit of pyproject.toml meanwhile must not send the instructor rebuilding it.
                grade = hub.instructor(
                    "make", "-C", str(REPO_ROOT), f"VENV={HUB_VENV}", "-o",
                    str(HUB_VENV / ".installed"), "grade",
                    f"GRADE_ARGS={ASSIGNMENT} --course {hub.course}", timeout=1200)
                assert "STUDENT CODE WAS NOT ISOLATED" not in grade.stdout, grade.stdout
                lap("graded")
                scores = read_scores_as_root(hub.course)
                check_scores(scores)
                feedback = hub.instructor("python", "-m", "autograder.feedback", ASSIGNMENT,
                                          "--course", str(hub.course))
                assert STUDENT_A in feedback.stdout and STUDENT_B in feedback.stdout
                hub.instructor("nbgrader", "release_feedback", ASSIGNMENT)
                lap("feedback released")
                b_feedback = next((hub.exchange / "feedback" / STUDENT_B).glob("*.html"))
                proc = hub.run(STUDENT_A, "cat", str(b_feedback), check=False)
                assert denied(proc), "student A could read B's released feedback"
                isolation["read B's released feedback (its exact path)"] = \
                    proc.stderr.strip().splitlines()[-1]

                teacher = Session(browser, hub, INSTRUCTOR, console)
                sessions.append(teacher)
                teacher.login()
                menu = teacher.nbgrader_menu()
                assert "Formgrader" in menu, menu
                formulas = formgrader(teacher, hub)
                lap("formgrader")

                pages = {}
                for session, prefix in ((a, "09_a"), (b, "09_b")):
                    path = fetch_feedback(session, f"{prefix}_feedback_fetched.png")
                    pages[session.user] = open_feedback(
                        session, path, f"{prefix}_feedback.png",
                        focus=BUG_CELL if session is b else None)
                lap("feedback read")
                check_feedback(pages, scores)
            except BaseException:
                for session in sessions:
                    try:
                        session.page.screenshot(path=str(ARTIFACTS / f"failure-{session.user}.png"))
                    except Exception as exc:  # the page may be gone; the original error matters
                        print(f"no failure screenshot of {session.user}: {exc}")
                print(f"--- make hub (last 6000 characters) ---\n{hub.log()[-6000:]}")
                raise
            finally:
                browser.close()
    finally:
        stop_output = stop_hub(hub)
        lap("hub stopped")
        left = processes_of(USERS)
        remove_accounts()
        shutil.rmtree(shared, ignore_errors=True)
    assert "make hub-stop: stopped" in stop_output, stop_output
    assert not left, "processes of the hub's accounts left after make hub-stop:\n" + "\n".join(left)
    print("\nhub test, seconds since start: "
          + ", ".join(f"{k} {t:.0f}" for k, t in laps.items()))
    print("student A trying to reach student B's work: "
          + "; ".join(f"{k}: {v}" for k, v in isolation.items()))
    print(f"formgrader: {formulas} formulas typeset by the local MathJax")
    outside = [u for s in sessions for u in s.outside]
    assert not outside, f"requests that left the hub: {outside[:10]}"
    errors = console.errors(ignore=IGNORED_CONSOLE_ERRORS)
    assert not errors, "errors in the browser console:\n" + "\n".join(
        f"[{m.kind}] {m.text} ({m.url})" for m in errors)


def read_scores_as_root(course: Path):
    from autograder.grading import read_scores

    return read_scores(course, ASSIGNMENT)


def check_scores(scores) -> None:
    a, b = scores[STUDENT_A], scores[STUDENT_B]
    total = sum(c.max_score for c in a.values())
    assert sum(c.score for c in a.values()) == total, {k: c.score for k, c in a.items()}
    lost = {k: c.max_score - c.score for k, c in b.items() if c.score != c.max_score}
    assert set(lost) == {BUG_CELL}, lost


def formgrader(teacher: Session, hub: Hub) -> int:
    """The instructor's formgrader in a tab of its own (JupyterHub 4.1+ blocks its iframe in
    JupyterLab, nbgrader #1870): the assignment's submissions, then B's, with math typeset."""
    from nbgrader.api import Gradebook

    from autograder.config import db_url_of

    page = teacher.page
    page.goto(f"{teacher.server}/formgrader/gradebook/{ASSIGNMENT}/{ASSIGNMENT}", timeout=LONG)
    rows = page.locator("table tbody tr")
    rows.first.wait_for(timeout=SHORT)
    bs.wait_until(lambda: rows.count() == 2, 30, what="two submissions in the formgrader")
    bs.screenshot(page, "08_instructor_formgrader_submissions.png", ARTIFACTS)
    with Gradebook(db_url_of(hub.course)) as gb:
        submission = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, STUDENT_B).id
    page.goto(f"{teacher.server}/formgrader/submissions/{submission}/?index=0", timeout=LONG)
    formulas = wait_for_mathjax(page)
    assert formulas > 10, f"only {formulas} formulas typeset in the formgrader"
    loaded = page.evaluate("() => MathJax.loaded === true")
    assert loaded, "the formgrader's MathJax start-up hook did not run"
    scripts = page.locator("script[src*='MathJax.js']").evaluate_all("els => els.map(e => e.src)")
    assert scripts and all(s.startswith(f"{hub.url}/services/mathjax/") for s in scripts), scripts
    raw = page.locator("body").inner_text()
    assert not raw_tex(raw), f"raw LaTeX left in the formgrader: {raw_tex(raw)}"
    page.wait_for_timeout(500)
    bs.screenshot(page, "08_instructor_formgrade_b_mathjax.png", ARTIFACTS)
    return formulas


def check_feedback(pages: dict[str, str], scores) -> None:
    hidden = hidden_markers()
    assert hidden, "no hidden-test line found in the source notebook"
    for student, text in pages.items():
        got = sum(c.score for c in scores[student].values())
        out_of = sum(c.max_score for c in scores[student].values())
        own = f"{ASSIGNMENT} (Score: {got:.1f} / {out_of:.1f})"
        assert own in text, f"{student}'s feedback does not say {own!r}:\n{text[:2000]}"
        assert "hidden tests: not shown" in text, f"{student}'s feedback shows no hidden note"
        shown = [h for h in hidden if h in text]
        assert not shown, f"{student}'s feedback shows hidden-test lines: {shown[:5]}"
        assert "BEGIN HIDDEN TESTS" not in text
        assert not raw_tex(text), f"raw LaTeX in {student}'s feedback: {raw_tex(text)}"
    assert re.search(r"softmax", pages[STUDENT_B]) and pages[STUDENT_A] != pages[STUDENT_B]
