"""Every grading kernel in a sandbox: a submission's code sees nothing but itself (issue 14).

nbgrader runs a student's notebook in a Jupyter kernel with the grader's rights; this module makes
that kernel start inside `bubblewrap <https://github.com/containers/bubblewrap>`_ (Debian's
``bwrap``, the sandbox Flatpak uses), with its resource limits set by util-linux's ``prlimit`` and
coreutils' ``timeout``. Nothing here is a home-made isolation mechanism: the module only builds
their command line. :class:`SandboxedKernelManager` is jupyter_client's ``AsyncKernelManager`` with
that command line; the course's config makes nbgrader's autograde use it
(``c.ExecuteGradedCells.kernel_manager_class``), so ``make grade``, ``nbgrader autograde`` and the
formgrader's autograde button all grade in the sandbox.

What the kernel sees (everything else of the machine does not exist for it):

* ``/usr`` (and the ``/bin``, ``/lib``... links to it) and the Python environment, read-only;
* the course's ``data/`` folder (public corpora, next to ``rnncourse/`` where the notebooks look
  for it), read-only;
* of the course's own code only ``rnncourse/`` and the few modules of ``autograder`` a graded
  kernel imports (:data:`KERNEL_MODULES`), read-only: no fixtures, no grading code;
* the reference the hidden tests compare with: a notebook per assignment (and the earlier
  assignments it builds on) holding only the instructor's solution code cells and helper cells
  (:func:`autograder.reference.write_kernel_source`), read-only at ``/grading/reference``; never
  the source notebooks (no hidden tests, no written-answer model solutions, no other assignments);
* its working folder ``/home/student/<assignment>``: the files of its own submission (a private
  copy nbgrader made for this run), writable, and room for new files (:attr:`Limits.files_mb`);
* ``/tmp`` (its ``$HOME``), a private tmpfs of :attr:`Limits.tmp_mb`;
* its own ``/proc`` (a PID namespace: no other process is visible), a minimal ``/dev``;
* a folder with the kernel's connection file and its ZeroMQ sockets (``ipc`` transport: the kernel
  has no network, not even loopback);
* an environment of a few variables (:data:`PASSED_ENV`), not the grader's.

It runs as an unprivileged user: when grading as root, as uid ``uid`` (one per grading worker,
from :data:`FIRST_UID`, so that worker kernels cannot signal each other and the process limit is
per kernel) through ``setpriv``, and in every case as uid 1000 of a user namespace of its own with
no capabilities, no further user namespaces, no network, IPC or UTS shared with the host. Limits
(:class:`Limits`): address space, CPU seconds, processes and threads, file size, open files, core
dumps, all set with ``prlimit`` inside the sandbox, and a wall-clock limit (``timeout -s KILL``
around it). Memory is bounded per process (``RLIMIT_AS``) and processes per kernel, so a kernel
uses at most ``processes * memory_mb``; a cgroup would bound the sum, but needs systemd or
cgroup delegation that a course machine often lacks.

Where ``bwrap`` is missing or cannot make namespaces (a laptop without it, a container that
forbids user namespaces), :func:`unavailable` says why, the kernel starts as before, and both the
kernel manager's log and ``make grade``'s summary say loudly that grading is not isolated.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager, KernelManager
from traitlets import Bool, Float, Int, Unicode

import autograder
import rnncourse
from autograder.course import GRADING_ENV

# The modules of ``autograder`` a graded kernel imports: a hidden-test region's (autograder.hidden
# and what it imports), and the wrappers of the course's generated alternative submissions
# (alternatives.py, see submissions.py); tests/test_sandbox.py checks that the list is closed
# under imports. None holds a solution.
KERNEL_MODULES = ("__init__.py", "alternatives.py", "course.py", "hidden.py", "integrity.py",
                  "reference.py")
# Variables a kernel gets from the grader's environment (if set); everything else is dropped.
PASSED_ENV = (*GRADING_ENV, "NBGRADER_EXECUTION", "NBGRADER_VALIDATING", "LANG",
              "RNNCOURSE_GRADING_WORKER")
REFERENCE_DIR = "/grading/reference"
HOME = "/tmp"
WORK_PARENT = "/home/student"
INSIDE_UID = 1000
FIRST_UID = 61000  # grading as root: worker i's kernels run as uid/gid FIRST_UID + i


@dataclass(frozen=True)
class Limits:
    """Per-kernel limits. Units: seconds, MiB, counts."""

    wall_s: float = 1860.0  # killed after this long, whatever it does (timeout -s KILL)
    cpu_s: int = 1800  # RLIMIT_CPU: CPU seconds of each process
    memory_mb: int | None = 4096  # RLIMIT_AS of each process (None: no limit)
    processes: int = 64  # RLIMIT_NPROC: processes and threads of the kernel's user
    file_mb: int = 256  # RLIMIT_FSIZE: the largest file it may write
    open_files: int = 1024  # RLIMIT_NOFILE
    tmp_mb: int = 256  # size of /tmp (its $HOME)
    files_mb: int = 256  # room for new files in its working folder


def tool() -> str | None:
    """The path of ``bwrap``, or None."""
    return shutil.which("bwrap")


def _as_user(uid: int | None) -> list[str]:
    """Inside a sandbox bwrap made as root: become ``uid`` for good (no capabilities, none to
    gain). Without root, bwrap's own user namespace does it (:func:`_namespaces`)."""
    if uid is None:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--"]


def default_uid(index: int = 0) -> int | None:
    """The host uid kernels run as: None (the grader's own) unless grading as root."""
    return FIRST_UID + index if os.geteuid() == 0 else None


@functools.cache
def unavailable() -> str | None:
    """Why kernels cannot be sandboxed here (None when they can): bwrap missing, or it cannot
    make the namespaces it needs. Tried once per process."""
    bwrap = tool()
    if bwrap is None:
        return ("bubblewrap (bwrap) is not installed (Debian: apt-get install bubblewrap, "
                "or make system-deps)")
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "grading as root needs util-linux's setpriv to drop to an unprivileged user"
    cmd = [bwrap, *_namespaces(), *_system_mounts(), "--", *_as_user(default_uid()), "true"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap cannot start: {err}"
    if proc.returncode != 0:
        return f"bwrap cannot make a sandbox here: {proc.stderr.strip()[:300]}"
    return None


def _namespaces() -> list[str]:
    """bwrap's namespaces. As root, bwrap makes every namespace but a user namespace, and
    :func:`_as_user` then drops to an unprivileged host uid; otherwise a user namespace of its own
    maps the grader's uid to :data:`INSIDE_UID`, with no capabilities and no further user
    namespaces."""
    shared = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
              "--unshare-cgroup-try", "--hostname", "grading", "--die-with-parent"]
    if os.geteuid() == 0:
        return shared
    return [*shared, "--unshare-user", "--disable-userns", "--uid", str(INSIDE_UID), "--gid",
            str(INSIDE_UID), "--cap-drop", "ALL"]


def _system_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime"):
        args += ["--ro-bind-try", etc, etc]
    return args


def _parents(path: str | Path, made: set[str]) -> list[str]:
    """bwrap arguments that make the missing parent folders of ``path`` traversable (bwrap
    would make them mode 0700, owned by root: closed to the kernel's user)."""
    args = []
    for parent in reversed(Path(path).parents):
        if str(parent) != "/" and str(parent) not in made:
            made.add(str(parent))
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _python_mounts(made: set[str]) -> list[str]:
    """The Python environment read-only, and of the course's packages only what kernels use."""
    args = []
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, sys.exec_prefix)):
        if not Path(prefix).resolve().is_relative_to("/usr"):
            args += [*_parents(prefix, made), "--ro-bind", prefix, prefix]
    package = Path(rnncourse.__file__).resolve().parent
    args += [*_parents(package, made), "--ro-bind", str(package), str(package)]
    data = package.parent / "data"  # the course's public corpora, where notebooks look for them
    if data.is_dir():
        args += ["--ro-bind", str(data), str(data)]
    grading = Path(autograder.__file__).resolve().parent
    # a tmpfs hides the rest of the package, also when it lies inside a bound prefix
    args += [*_parents(grading, made), "--perms", "0755", "--tmpfs", str(grading)]
    for name in KERNEL_MODULES:
        args += ["--ro-bind", str(grading / name), str(grading / name)]
    return [*args, "--remount-ro", str(grading)]


def kernel_environment(env: dict[str, str], reference: bool) -> dict[str, str]:
    """The whole environment of a sandboxed kernel (and of the sandbox's own processes, whose
    ``/proc/<pid>/environ`` the kernel might read): :data:`PASSED_ENV` from ``env``, and the
    kernel's own ``$HOME``, ``$PATH``...; never the grader's other variables."""
    kernel_env = {k: env[k] for k in PASSED_ENV if k in env}
    kernel_env |= {"HOME": HOME, "USER": "student", "LOGNAME": "student",
                   "PATH": os.pathsep.join((str(Path(sys.executable).parent), "/usr/bin", "/bin")),
                   "MPLCONFIGDIR": f"{HOME}/.matplotlib", "PYTHONDONTWRITEBYTECODE": "1",
                   # the course's packages where the sandbox has them, however the grader found
                   # them (an editable install, $PYTHONPATH, site-packages)
                   "PYTHONPATH": os.pathsep.join(dict.fromkeys(
                       str(Path(m.__file__).resolve().parent.parent)
                       for m in (rnncourse, autograder)))}
    if reference:
        kernel_env["RNNCOURSE_SOURCE"] = REFERENCE_DIR
    return kernel_env


def kernel_command(cmd: list[str], *, workdir: Path, inside: str, ipc: Path,
                   reference: Path | None, env: dict[str, str], limits: Limits,
                   uid: int | None) -> list[str]:
    """The command line that runs ``cmd`` (a kernel's) in the sandbox described in the module
    docstring: ``workdir``'s files at ``inside``, ``ipc`` (the connection file and sockets) at its
    own path, ``reference`` at :data:`REFERENCE_DIR`. Raises RuntimeError if it cannot be built."""
    bwrap = tool()
    if bwrap is None:
        raise RuntimeError(unavailable() or "no bwrap")
    made = {"/tmp"}
    # /tmp first: the binds below may lie under it (a course or a venv in /tmp) and must stay
    # visible on top of the kernel's private /tmp.
    args = [*_namespaces(), *_system_mounts(),
            "--perms", "1777", "--size", str(limits.tmp_mb * 2**20), "--tmpfs", "/tmp",
            "--proc", "/proc", "--dev", "/dev", *_python_mounts(made),
            *_parents(ipc, made), "--bind", str(ipc), str(ipc),
            *_parents(inside, made),
            "--perms", "1777", "--size", str(limits.files_mb * 2**20), "--tmpfs", inside]
    if reference is not None:
        args += [*_parents(REFERENCE_DIR, made), "--ro-bind", str(reference), REFERENCE_DIR]
    for entry in sorted(Path(workdir).iterdir()):
        if entry.is_symlink():  # never followed out of the submission (intake drops them too)
            continue
        how = "--bind" if entry.is_file() else "--ro-bind"
        args += [how, str(entry), f"{inside}/{entry.name}"]
    args += ["--remount-ro", "/", "--chdir", inside, "--clearenv"]
    for key, value in sorted(kernel_environment(env, reference is not None).items()):
        args += ["--setenv", key, value]
    rlimits = [f"--cpu={limits.cpu_s}", f"--nproc={limits.processes}",
               f"--fsize={limits.file_mb * 2**20}", f"--nofile={limits.open_files}", "--core=0"]
    if limits.memory_mb:
        rlimits.append(f"--as={limits.memory_mb * 2**20}")
    return ["timeout", "--signal=KILL", f"{limits.wall_s:g}", bwrap, *args, "--", *_as_user(uid),
            "prlimit", *rlimits, "--", *cmd]


class SandboxedKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager, starting the kernel in the sandbox (module docstring).

    Configurable like any traitlets class (``c.SandboxedKernelManager.memory_mb = 2048``).
    The kernel is interrupted through the control channel (kernelspec ``interrupt_mode``
    "message", which ipykernel implements): a SIGINT sent from outside would stop the sandbox
    itself, not the cell.
    """

    enabled = Bool(True, help="Sandbox the kernel (False: run it as the grader)").tag(config=True)
    assignment = Unicode("", help="The assignment graded (set by ExecuteGradedCells)")
    uid = Int(-1, help="Host uid of the kernel when grading as root (-1: the default)").tag(
        config=True)
    wall_s = Float(Limits.wall_s, help="Wall-clock seconds before the kernel is killed").tag(
        config=True)
    cpu_s = Int(Limits.cpu_s, help="CPU seconds per process").tag(config=True)
    memory_mb = Int(Limits.memory_mb, help="Address space per process, MiB (0: none)").tag(
        config=True)
    processes = Int(Limits.processes, help="Processes and threads").tag(config=True)

    _scratch: Path | None = None
    _sandboxed = False  # set when the kernel starts: sandboxed, or not (no bwrap, disabled)

    def limits(self) -> Limits:
        return Limits(wall_s=self.wall_s, cpu_s=self.cpu_s, memory_mb=self.memory_mb or None,
                      processes=self.processes)

    async def _async_start_kernel(self, **kw) -> None:
        # The connection file and ZeroMQ sockets (ipc transport) in a private folder, sandbox or
        # not: no TCP ports, so no two kernels started at once can pick the same one.
        self._scratch = Path(tempfile.mkdtemp(prefix="rnnk-"))
        ipc = self._scratch / "ipc"
        ipc.mkdir()
        self.transport = "ipc"
        self.connection_file = str(ipc / "kernel.json")
        self.ip = str(ipc / "kernel")
        self._sandboxed = False
        why = unavailable() if self.enabled else "disabled by configuration"
        if why is not None:
            self.log.warning("STUDENT CODE IS NOT ISOLATED: the grading kernel runs with the "
                             "grader's rights (%s)", why)
            return await super()._async_start_kernel(**kw)
        self._workdir = Path(kw.get("cwd") or os.getcwd())
        self._reference = None
        if self.assignment:
            from autograder.reference import write_kernel_source

            self._reference = self._scratch / "reference"
            write_kernel_source(self.assignment, self._reference)
        self.kernel_spec.interrupt_mode = "message"
        self._env = dict(kw.get("env") or os.environ)
        kw["env"] = kernel_environment(self._env, self._reference is not None)
        self._sandboxed = True
        return await super()._async_start_kernel(**kw)

    start_kernel = _async_start_kernel

    def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if not self._sandboxed:
            return cmd
        uid = (self.uid if self.uid >= 0 else default_uid()) if os.geteuid() == 0 else None
        if uid is not None:  # the files the kernel writes: its sockets, its submission's
            for path in (self._scratch / "ipc", Path(self.connection_file),
                         *(p for p in self._workdir.iterdir() if p.is_file()
                           and not p.is_symlink())):
                os.chown(path, uid, uid)
        inside = f"{WORK_PARENT}/{self.assignment or self._workdir.name}"
        return kernel_command(cmd, workdir=self._workdir, inside=inside,
                              ipc=self._scratch / "ipc", reference=self._reference,
                              env=self._env, limits=self.limits(), uid=uid)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await KernelManager._async_cleanup_resources(self, restart=restart)
        if self._scratch is not None and not restart:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    cleanup_resources = _async_cleanup_resources

