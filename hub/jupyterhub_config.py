"""JupyterHub configuration of `make hub`: the course on one machine, for one class with one grader.

``hub/rnnhub.py start`` prepares the accounts, the course folder, the exchange and the users'
Jupyter configuration, writes ``settings.json`` and starts ``jupyterhub -f`` this file with
``RNNHUB_SETTINGS`` pointing at it. On a real server, keep this file's shape and change what the
README's "Running the course on JupyterHub" says (TLS, the public address, the authenticator).
"""

import json
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821
S = json.loads(Path(os.environ["RNNHUB_SETTINGS"]).read_text())
sys.path.insert(0, str(Path(__file__).resolve().parent))
from rnnhub import user_environment  # noqa: E402

PRIVATE = Path(S["state"]) / "private"  # root only: the hub's database and secrets

# --- network: everything on the loopback interface -------------------------------------------
c.JupyterHub.bind_url = f"http://127.0.0.1:{S['port']}/"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{S['hub_port']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{S['proxy_api_port']}"
c.ConfigurableHTTPProxy.command = [S["proxy"]]  # from npm: hub/package.json

# --- the hub's own state -------------------------------------------------------------------------
c.JupyterHub.db_url = f"sqlite:///{PRIVATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(PRIVATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(PRIVATE / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops the users' servers
c.JupyterHub.cleanup_proxy = True

# --- who logs in: the Linux accounts of the course, with their passwords (PAM) -----------------
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = {S["instructor"], *S["students"]}
c.PAMAuthenticator.open_sessions = False  # no login sessions (systemd-logind) needed
# No admin users (Authenticator.admin_users is empty): nobody opens another user's server.

# --- each user's JupyterLab: a process of their own, as their Linux user ------------------------
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(Path(S["venv"]) / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 180  # a loaded two-core machine
c.Spawner.http_timeout = 180


def pre_spawn_hook(spawner):
    """The user's environment: the course's Python, and the instructor's or the students'
    Jupyter configuration (hub/rnnhub.py writes both)."""
    spawner.environment.update(user_environment(S, spawner.user.name))


c.Spawner.pre_spawn_hook = pre_spawn_hook

# --- MathJax for nbgrader's formgrader and feedback pages, without internet ----------------------
c.JupyterHub.services = [{
    "name": "mathjax",
    "url": f"http://127.0.0.1:{S['mathjax_port']}",
    "command": [sys.executable, str(Path(__file__).resolve().parent / "mathjax_service.py"),
                S["mathjax"]],
    "display": False,
    "user": "nobody",  # it only reads public files
    "cwd": "/",
}]
