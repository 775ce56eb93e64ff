"""Helpers for the single-host Dry Lab JupyterHub: unix users, the nbgrader exchange, the course.

Imported by jupyterhub_config.py (inside the hub, running as root), by run-hub.sh's demo set-up
and by the end-to-end test, so that the try-out and the test do exactly what the hub does.

Why real unix users: nbgrader's exchange keeps residents apart with unix permissions only
(an inbound directory residents can write to but not list, submission names with a random
part, feedback files named by a per-submission secret). That holds only when every resident's
server runs under its own uid, with a home directory no one else can read.
"""

import importlib.util
import os
import pwd
import re
import stat
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEPLOY = HERE.parent
REPO = DEPLOY.parent
JUPYTER_CONFIG = HERE / "jupyter-config"
# nbgrader's default course id for Dry Lab; the curriculum's nbgrader_config.py uses the same.
COURSE_ID = "drylab"
# Where an instructor's course directory lives, relative to their home.
COURSE_DIR_NAME = "drylab"

# useradd's own rule (Debian's NAME_REGEX) minus '$'; anything else is refused before it
# reaches a shell-less useradd call, so a crafted hub username cannot become an option.
_UNIX_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class HubConfigError(RuntimeError):
    """A missing or wrong setting for the Dry Lab hub; the message names it."""


def env_list(name, default=""):
    """A comma-separated environment variable as a list of non-empty, stripped names."""
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def require_env(name, why):
    value = os.environ.get(name, "").strip()
    if not value:
        raise HubConfigError(f"environment variable {name} is not set: {why}")
    return value


def require_module(module, package):
    """Fail with the pip package to install when an optional authenticator is missing."""
    if importlib.util.find_spec(module) is None:
        raise HubConfigError(
            f"the chosen authenticator needs the Python package {package}: "
            f"pip install {package} into the hub's environment")


def check_unix_name(name):
    if not _UNIX_NAME.match(name):
        raise HubConfigError(
            f"user name {name!r} is not a valid unix user name (lower-case letters, digits, "
            "'_' and '-', at most 32 characters); map it with Authenticator.username_map or "
            "the authenticator's username claim"
        )
    return name


def unix_user_exists(name):
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def ensure_unix_user(name, create):
    """Make sure the unix account `name` exists, with a home only its owner can read.

    With create=False a missing account is an error naming the user, because the spawner
    cannot start a server for someone who has no uid.
    """
    check_unix_name(name)
    if not unix_user_exists(name):
        if not create:
            raise HubConfigError(
                f"unix user {name!r} does not exist; create it (useradd -m {name}) or set "
                "DRYLAB_CREATE_USERS=1 so the hub creates accounts on first login"
            )
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--", name],
                       check=True)
    home = pwd.getpwnam(name).pw_dir
    # Debian's useradd makes homes 0755 unless HOME_MODE is set; a resident's home holds their
    # fetched assignments, their nbgrader cache and their feedback, so no one else may read it.
    os.chmod(home, 0o700)
    return pwd.getpwnam(name)


def as_user(name, user_env):
    """subprocess keyword arguments that run a command as unix user `name` (hub runs as root),
    in the Python environment `user_env` (what user_environment returns)."""
    bin_dir, extra_env = user_env
    entry = pwd.getpwnam(name)
    env = {**extra_env,
        "HOME": entry.pw_dir, "USER": name, "LOGNAME": name, "SHELL": "/bin/bash",
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
    }
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "env": env,
            "cwd": entry.pw_dir}


def role_config_path(role, extra=()):
    """JUPYTER_CONFIG_PATH for a user's server: the role's directory first, then the shared one.

    Residents' directory disables nbgrader's formgrader and create-assignment (the instructor
    tools); instructors' lets their own pages frame their server (Content-Security-Policy
    frame-ancestors 'self'), which the lab Formgrader, an iframe, needs under JupyterHub (see
    docs/deploy.md); both read jupyter-config/common/nbgrader_config.py (course id, exchange
    root, the exchange's submit class).
    """
    if role not in ("instructor", "resident"):
        raise HubConfigError(f"role must be 'instructor' or 'resident', got {role!r}")
    dirs = [str(JUPYTER_CONFIG / role), str(JUPYTER_CONFIG / "common"), *map(str, extra)]
    return os.pathsep.join(dirs)


def prepare_exchange(root, course_id, owner):
    """Create nbgrader's exchange so that no resident can hijack or read it.

    root: world-writable with the sticky bit (nbgrader requires o+rwx; the sticky bit stops a
    resident from renaming or deleting the course directory). root/course_id: created here,
    owned by the instructor who releases (0755), so a resident cannot create it first and
    receive everyone's submissions; nbgrader itself then creates outbound (0755), inbound
    (0733: residents write, cannot list) and feedback (0711).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o1777)
    course = root / course_id
    course.mkdir(exist_ok=True)
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(course, entry.pw_uid, entry.pw_gid)
    os.chmod(course, 0o755)
    # With one uid for everyone (owner None: the try-out's simple spawner) no one else needs in.
    for parent in list(root.parents)[:-1] if owner is not None else []:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise HubConfigError(
                f"exchange root {root}: its parent {parent} is not searchable by other users "
                f"(mode {oct(mode & 0o777)}); residents could not reach the exchange"
            )
    return course
