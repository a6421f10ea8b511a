"""`make hub` and `make hub-stop`: the course on a local JupyterHub with nbgrader's exchange.

``python hub/rnnhub.py start`` (as root; ``make hub`` passes the options):

1. makes the Linux accounts of the instructor and the students if they are missing (each with a
   private group and a home only its owner can open, mode 0700) and gives each account it made a
   random password (JupyterHub logs in with PAM: the accounts' own passwords);
2. makes the instructor's course folder ``~instructor/rnn-course`` if it is missing: the course's
   ``source/`` and the committed ``release/``, and an ``nbgrader_config.py`` with the course's
   settings (:func:`autograder.config.configure`), owned by the instructor. An existing folder
   (gradebook, submissions, feedback) is never touched;
3. lays out nbgrader's exchange for the course, with a personal inbound and feedback folder per
   student (``hub/rnn_exchange.py`` says why and how), and fixes the owners and modes of what
   exists;
4. writes the hub users' Jupyter configuration (``<state>/jupyter/``): nbgrader's course id and
   exchange for everybody (a global ``/etc/jupyter/nbgrader_config.py`` in nbgrader's
   documentation: here a folder on ``JUPYTER_CONFIG_PATH``), the course folder for the instructor
   (``~/.jupyter/nbgrader_config.py`` in the documentation), the formgrader and the instructor's
   tools switched off for students, and the MathJax of ``hub/node_modules`` for nbgrader's
   formgrader and feedback pages (:data:`MATHJAX_TEMPLATE`);
5. runs JupyterHub (``hub/jupyterhub_config.py``) in the foreground until Ctrl-C (or
   ``rnnhub.py stop``, which ``make hub-stop`` runs), then stops it, its proxy, the users'
   servers and their kernels: every process it started.

``python hub/rnnhub.py run --state DIR --user NAME -- COMMAND...`` runs a command as a hub user,
in the folder and with the environment their JupyterLab's terminal has (the tests use it to run
the instructor's commands, and to try to read a classmate's work as a student).

Settings live in ``<state>/settings.json`` (``jupyterhub_config.py`` reads them); the hub's own
files (database, cookie secret, the passwords of the accounts it made) in ``<state>/private``
(root only).
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HUB = Path(__file__).resolve().parent
REPO = HUB.parent
COURSE_ID = "rnn-course"  # autograder.course.COURSE_ID; not imported: this runs before any check
COURSE_FOLDER = "rnn-course"  # in the instructor's home
PROXY = HUB / "node_modules" / ".bin" / "configurable-http-proxy"
MATHJAX = HUB / "node_modules" / "mathjax"
MATHJAX_URL_PATH = "services/mathjax/"  # the hub's MathJax service (jupyterhub_config.py)
ACCOUNT_COMMENT = "rnn-course hub account (make hub)"

# nbconvert's own base/mathjax.html.j2 with the local MathJax as the default URL. nbgrader's
# formgrader and feedback templates call ``mathjax()`` without an argument, so the default is
# what they load: from a CDN, unless this template comes first on the template path (a
# ``nbconvert/templates/base`` folder in a directory of ``JUPYTER_PATH``). The configuration is
# nbconvert's (MathJax 2, which nbgrader's formgrade.js calls).
MATHJAX_TEMPLATE = """{%- macro mathjax(url="@URL@") -%}
    <!-- Load mathjax: the hub's local copy (hub/rnnhub.py) -->
    <script src="{{url}}"> </script>
    <script type="text/x-mathjax-config">
    init_mathjax = function() {
        if (window.MathJax) {
            MathJax.Hub.Config({
                TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
                tex2jax: {
                    inlineMath: [ ['$','$'], ["\\\\(","\\\\)"] ],
                    displayMath: [ ['$$','$$'], ["\\\\[","\\\\]"] ],
                    processEscapes: true,
                    processEnvironments: true
                },
                displayAlign: 'center',
                messageStyle: 'none',
                CommonHTML: {linebreaks: {automatic: true}}
            });
            MathJax.Hub.Queue(["Typeset", MathJax.Hub]);
        }
    }
    init_mathjax();
    </script>
{%- endmacro %}
"""


# --- settings ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_settings(state: Path) -> dict:
    path = Path(state) / "settings.json"
    if not path.is_file():
        sys.exit(f"no hub in {state}: {path} is missing (start one with `make hub`)")
    return json.loads(path.read_text())


def home_of(user: str) -> Path:
    return Path(pwd.getpwnam(user).pw_dir)


def user_environment(settings: dict, user: str) -> dict[str, str]:
    """The environment a hub user's server (and so their terminal and kernels) gets, on top of
    what JupyterHub sets (``HOME``, ``USER``, ``JUPYTERHUB_*``)."""
    jupyter = Path(settings["state"]) / "jupyter"
    role = "instructor" if user == settings["instructor"] else "students"
    venv_bin = Path(settings["venv"]) / "bin"
    return {
        "PATH": os.pathsep.join((str(venv_bin), "/usr/local/bin", "/usr/bin", "/bin")),
        "VIRTUAL_ENV": settings["venv"],
        "JUPYTER_CONFIG_PATH": os.pathsep.join((str(jupyter / role), str(jupyter / "common"))),
        "JUPYTER_PATH": str(jupyter / "data"),
        "LANG": "C.UTF-8",
    }


# --- accounts ------------------------------------------------------------------------------------
def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True)


def ensure_account(user: str) -> bool:
    """The Linux account ``user`` with a private group and a home of mode 0700; True if made now."""
    made = False
    try:
        pwd.getpwnam(user)
    except KeyError:
        run("useradd", "--create-home", "--user-group", "--shell", "/bin/bash",
            "--comment", ACCOUNT_COMMENT, user)
        made = True
    entry = pwd.getpwnam(user)
    home = Path(entry.pw_dir)
    if not home.is_dir():
        home.mkdir(parents=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o700)  # Debian's useradd makes homes 0755: classmates could read each other's work
    return made


def made_by_hub(user: str) -> bool:
    """Whether ``user`` is an account `make hub` made (its comment says so)."""
    return pwd.getpwnam(user).pw_gecos == ACCOUNT_COMMENT


def ensure_passwords(users: list[str], path: Path) -> dict[str, str]:
    """A random password for each account `make hub` made, kept in ``path`` (root only) and set
    with chpasswd when the account has none from this file yet. Other accounts keep theirs."""
    known = json.loads(path.read_text()) if path.is_file() else {}
    for user in users:
        if made_by_hub(user) and user not in known:
            known[user] = secrets.token_urlsafe(9)
            subprocess.run(["chpasswd"], input=f"{user}:{known[user]}\n", text=True, check=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(known, indent=2) + "\n")
    return known


def private_group(user: str) -> int:
    """The gid of ``user``'s own group (Debian: a group of the same name, only them in it)."""
    entry = pwd.getpwnam(user)
    group = grp.getgrgid(entry.pw_gid)
    if group.gr_name != user or any(m != user for m in group.gr_mem):
        raise SystemExit(f"{user}'s primary group {group.gr_name} is not a private group of "
                         "their own; the personal exchange folders need one (useradd --user-group)")
    return entry.pw_gid


def chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
    os.chown(path, entry.pw_uid, entry.pw_gid)


# --- the instructor's course folder ------------------------------------------------------------
COURSE_CONFIG = '''"""nbgrader config of the course folder on the hub (made by hub/rnnhub.py): the
course's settings, autograder/config.py of the repository at {repo}."""
from autograder.config import configure

c = get_config()  # noqa: F821
configure(c, {root!r})
'''


def ensure_course(instructor: str) -> Path:
    """``~instructor/rnn-course``: source/, the committed release/ and nbgrader_config.py."""
    course = home_of(instructor) / COURSE_FOLDER
    if course.exists():
        return course
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    course.mkdir()
    shutil.copytree(REPO / "source", course / "source", ignore=ignore)
    shutil.copytree(REPO / "release", course / "release", ignore=ignore)
    (course / "nbgrader_config.py").write_text(COURSE_CONFIG.format(repo=REPO, root=str(course)))
    chown_tree(course, instructor)
    course.chmod(0o700)
    return course


# --- the exchange --------------------------------------------------------------------------------
def _folder(path: Path, mode: int, uid: int, gid: int) -> None:
    path.mkdir(exist_ok=True)
    os.chown(path, uid, gid)
    path.chmod(mode)  # after chown, which clears the setgid bit


def _layout():
    """hub/rnn_exchange.py (it imports nbgrader: only where the hub's environment runs this)."""
    sys.path.insert(0, str(HUB))
    import rnn_exchange

    return rnn_exchange


def personal_folders(exchange: Path, instructor: str, student: str) -> list[Path]:
    """``inbound/<student>`` and ``feedback/<student>``: the instructor's, in the student's own
    group, mode 2770 (see hub/rnn_exchange.py)."""
    rx = _layout()
    uid = pwd.getpwnam(instructor).pw_uid
    gid = private_group(student)
    made = []
    for kind in (rx.INBOUND, rx.FEEDBACK):
        path = exchange / COURSE_ID / kind / student
        _folder(path, rx.PERSONAL_MODE, uid, gid)
        made.append(path)
    return made


def ensure_exchange(exchange: Path, instructor: str, students: list[str]) -> None:
    rx = _layout()
    entry = pwd.getpwnam(instructor)
    uid, gid = entry.pw_uid, entry.pw_gid
    _folder(exchange, rx.EXCHANGE_ROOT_MODE, 0, 0)
    course = exchange / COURSE_ID
    _folder(course, rx.COURSE_MODE, uid, gid)
    _folder(course / "outbound", rx.COURSE_MODE, uid, gid)
    for kind in (rx.INBOUND, rx.FEEDBACK):
        _folder(course / kind, rx.SHARED_MODE, uid, gid)
    for student in students:
        personal_folders(exchange, instructor, student)


# --- the users' Jupyter configuration -----------------------------------------------------------
COMMON_NBGRADER = '''"""nbgrader settings of every hub user (written by hub/rnnhub.py at each start:
edit that)."""
import sys

sys.path.insert(0, {hub!r})  # rnn_exchange

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
c.Exchange.root = {exchange!r}
# nbgrader's exchange with a personal inbound and feedback folder per student (hub/rnn_exchange.py)
c.ExchangeFactory.submit = "rnn_exchange.PersonalSubmit"
c.ExchangeFactory.collect = "rnn_exchange.PersonalCollect"
c.ExchangeFactory.list = "rnn_exchange.PersonalList"
c.ExchangeFactory.release_feedback = "rnn_exchange.PersonalReleaseFeedback"
c.ExchangeFactory.fetch_feedback = "rnn_exchange.PersonalFetchFeedback"
# Validate (the Assignment List's button) skips the demonstration cells autograde skips
# (autograder/config.py sets the same for the instructor's course).
from autograder.preprocessors import SKIP_TAG  # noqa: E402

c.Validator.Execute.skip_cells_with_tag = SKIP_TAG
'''

INSTRUCTOR_NBGRADER = '''"""nbgrader settings of the instructor (written by hub/rnnhub.py at each
start: edit that): the course folder, with its own nbgrader_config.py, for the formgrader."""
from traitlets.config.loader import PyFileConfigLoader

c = get_config()  # noqa: F821
c.merge(PyFileConfigLoader("nbgrader_config.py", path={course!r}).load_config())
c.CourseDirectory.root = {course!r}
'''

# Students get nbgrader's Assignment List and Validate, not the instructor's tools.
STUDENT_SERVER = {"ServerApp": {"jpserver_extensions": {
    "nbgrader.server_extensions.formgrader": False,
    "nbgrader.server_extensions.course_list": False,
}}}
STUDENT_LAB = {"disabledExtensions": {
    "@jupyter/nbgrader:formgrader": True,
    "@jupyter/nbgrader:course-list": True,
    "@jupyter/nbgrader:create-assignment": True,
}}
# No news pop-up and no update check (both would reach for the internet).
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {
    "fetchNews": "false", "checkForUpdates": False}}


def write_jupyter_config(settings: dict) -> None:
    jupyter = Path(settings["state"]) / "jupyter"
    if jupyter.exists():
        shutil.rmtree(jupyter)
    lab_settings = jupyter / "lab-settings"
    files = {
        jupyter / "common" / "nbgrader_config.py": COMMON_NBGRADER.format(
            hub=str(HUB), course_id=COURSE_ID, exchange=settings["exchange"]),
        jupyter / "common" / "jupyter_server_config.json": json.dumps({"LabApp": {
            "app_settings_dir": str(lab_settings),
            "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}}, indent=2),
        lab_settings / "overrides.json": json.dumps(LAB_OVERRIDES, indent=2),
        jupyter / "instructor" / "nbgrader_config.py": INSTRUCTOR_NBGRADER.format(
            course=settings["course"]),
        jupyter / "students" / "jupyter_server_config.json": json.dumps(STUDENT_SERVER, indent=2),
        jupyter / "students" / "labconfig" / "page_config.json": json.dumps(STUDENT_LAB, indent=2),
        jupyter / "data" / "nbconvert" / "templates" / "base" / "mathjax.html.j2":
            MATHJAX_TEMPLATE.replace("@URL@", settings["mathjax_url"]),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for root, _dirs, names in os.walk(jupyter):
        os.chmod(root, 0o755)
        for name in names:
            os.chmod(os.path.join(root, name), 0o644)


# --- start and stop ------------------------------------------------------------------------------
def check_ready(venv: Path) -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("make hub makes Linux accounts and starts servers as them: run it as root")
    for tool in ("useradd", "runuser"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is missing (Debian: passwd, util-linux)")
    if not (venv / "bin" / "jupyterhub-singleuser").is_file():
        problems.append(f"{venv} has no JupyterHub: run `make hub-deps` (needs python3-venv)")
    if not PROXY.is_file() or not (MATHJAX / "MathJax.js").is_file():
        problems.append("hub/node_modules lacks configurable-http-proxy or mathjax: run "
                        "`make hub-deps` (needs npm: `make system-deps`)")
    if problems:
        sys.exit("make hub cannot start:\n  " + "\n  ".join(problems))


def check_reachable(*paths: Path) -> None:
    """Every hub user reads the exchange and the Jupyter configuration under the state folder,
    and runs Python from the venv: each folder above them must let others through (o+x);
    nbgrader would otherwise skip an unreadable configuration without a word."""
    closed = []
    for path in paths:
        for folder in [path, *path.parents]:
            if folder.exists() and not folder.stat().st_mode & 0o001:
                closed.append(str(folder))
    if closed:
        sys.exit("make hub: the hub's users cannot pass through " + ", ".join(sorted(set(closed)))
                 + " (mode o+x missing): put HUB_DIR and HUB_VENV where every user can reach "
                 "them")


def prepare(args) -> dict:
    state = Path(args.state).resolve()
    venv = Path(args.venv).resolve()
    check_ready(venv)
    check_reachable(state.parent, venv, HUB)
    for user in (args.instructor, *args.students):
        if ensure_account(user):
            print(f"made the account {user}", flush=True)
    course = ensure_course(args.instructor)
    exchange = state / "exchange"
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)
    ensure_exchange(exchange, args.instructor, args.students)
    private = state / "private"
    private.mkdir(exist_ok=True)
    private.chmod(0o700)
    passwords = private / "passwords.json"
    ensure_passwords([args.instructor, *args.students], passwords)
    settings = {
        "state": str(state), "port": args.port, "hub_port": free_port(),
        "proxy_api_port": free_port(), "venv": str(venv), "instructor": args.instructor,
        "students": list(args.students), "course": str(course), "course_id": COURSE_ID,
        "exchange": str(exchange), "passwords": str(passwords), "proxy": str(PROXY),
        "mathjax": str(MATHJAX), "mathjax_port": free_port(), "repo": str(REPO),
        "mathjax_url": f"/{MATHJAX_URL_PATH}MathJax.js?config=TeX-AMS_CHTML-full,Safe",
    }
    write_jupyter_config(settings)
    (state / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    return settings


def _descendants(pid: int) -> dict[int, float]:
    """``{pid: start time}`` of every process below ``pid`` (the proxy, the users' servers and
    their kernels, each in a session of its own)."""
    import psutil

    try:
        return {p.pid: p.create_time() for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return {}


def _kill(known: dict[int, float]) -> list[int]:
    """SIGKILL what is left of ``known`` (the same processes: same pid and start time)."""
    import psutil

    killed = []
    for pid, started in known.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == started:
                proc.kill()
                killed.append(pid)
        except psutil.Error:
            pass
    return killed


def running_hub(state: Path) -> int | None:
    """The pid of the `make hub` of ``state`` if it runs (its pid file names a live rnnhub.py:
    a pid left by a crash may belong to another process by now)."""
    try:
        pid = int((state / "rnnhub.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if any(part.endswith(b"rnnhub.py") for part in cmdline) else None


def start(args) -> int:
    running = running_hub(Path(args.state).resolve())
    if running:
        sys.exit(f"a hub of {args.state} is already running (pid {running}): `make hub-stop` "
                 "stops it")
    settings = prepare(args)
    state = Path(settings["state"])
    pid_file = state / "rnnhub.pid"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
    env["RNNHUB_SETTINGS"] = str(state / "settings.json")
    env["PATH"] = os.pathsep.join((str(Path(settings["venv"]) / "bin"), env.get("PATH", "")))
    known: dict[int, float] = {}
    stopping = []

    def stop(signum, _frame):
        if not stopping:
            print(f"\nmake hub: {signal.Signals(signum).name}, stopping the hub and its servers",
                  flush=True)
        stopping.append(signum)

    # Handlers before the hub starts: its processes then begin with every signal at its default,
    # even when this one was started with SIGINT ignored (a `make hub &` of a script).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    jupyterhub = Path(settings["venv"]) / "bin" / "jupyterhub"
    hub = subprocess.Popen([str(jupyterhub), "-f", str(HUB / "jupyterhub_config.py")],
                           cwd=state / "private", env=env, start_new_session=True)
    pid_file.write_text(f"{os.getpid()}\n")
    passwords = json.loads(Path(settings["passwords"]).read_text())

    def account(user):
        return f"{user} (password {passwords[user]})" if user in passwords else \
            f"{user} (their own password)"

    print(f"\nJupyterHub: http://127.0.0.1:{settings['port']}/\n"
          f"  instructor: {account(settings['instructor'])}, course folder {settings['course']}\n"
          + "".join(f"  student:    {account(s)}\n" for s in settings["students"])
          + f"  exchange:   {settings['exchange']}\n"
          f"  passwords:  {settings['passwords']} (root only)\n"
          "Ctrl-C (or `make hub-stop` in another shell) stops the hub and everything it "
          "started.\n", flush=True)
    try:
        while hub.poll() is None and not stopping:
            known |= _descendants(hub.pid)
            time.sleep(1)
        known |= _descendants(hub.pid)
        if hub.poll() is None:
            hub.send_signal(signal.SIGTERM)  # JupyterHub stops the users' servers and the proxy
            try:
                hub.wait(60)
            except subprocess.TimeoutExpired:
                hub.kill()
                hub.wait(10)
        time.sleep(1)
        left = _kill(known)
        if left:
            print(f"make hub: killed {len(left)} process(es) the hub left behind: {left}",
                  flush=True)
    finally:
        pid_file.unlink(missing_ok=True)
    return 0 if stopping else (hub.returncode or 0)


def stop(args) -> int:
    pid_file = Path(args.state).resolve() / "rnnhub.pid"
    pid = running_hub(Path(args.state).resolve())
    if pid is None:
        pid_file.unlink(missing_ok=True)
        print(f"make hub-stop: no hub is running for {args.state}")
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        print("make hub-stop: the hub had already stopped")
        return 0
    deadline = time.monotonic() + 90
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_file.exists():
        print(f"make hub-stop: the hub (pid {pid}) is still running after 90 s", file=sys.stderr)
        return 1
    print("make hub-stop: stopped")
    return 0


def run_as(args) -> int:
    """Run a command as a hub user with their server's environment, in their home (or --cwd)."""
    settings = load_settings(Path(args.state))
    entry = pwd.getpwnam(args.user)
    env = {"HOME": entry.pw_dir, "USER": args.user, "LOGNAME": args.user, "SHELL": "/bin/bash",
           **user_environment(settings, args.user)}
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    cmd = ["runuser", "-u", args.user, "--", "env", "-i",
           *(f"{k}={v}" for k, v in env.items()), *command]
    return subprocess.run(cmd, cwd=args.cwd or entry.pw_dir).returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="hub/rnnhub.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("start", help="set up and run the hub in the foreground (as root)")
    p.add_argument("--state", default=str(REPO / "build" / "hub"))
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--venv", default=str(REPO / "build" / "hub-venv"))
    p.add_argument("--instructor", default="rnn-instructor")
    p.add_argument("--students", nargs="+", default=["rnn-student-a", "rnn-student-b"])
    p = sub.add_parser("stop", help="stop the hub of --state and all it started")
    p.add_argument("--state", default=str(REPO / "build" / "hub"))
    p = sub.add_parser("run", help="run a command as a hub user, with their environment")
    p.add_argument("--state", default=str(REPO / "build" / "hub"))
    p.add_argument("--user", required=True)
    p.add_argument("--cwd")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    return {"start": start, "stop": stop, "run": run_as}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
