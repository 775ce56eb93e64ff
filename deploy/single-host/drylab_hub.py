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
import shutil
import stat
import subprocess
import sys
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


def _reachable_by_all(path):
    """True when every user can execute `path` (o+x on it and on every directory above it)."""
    path = Path(path).resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _link_or_copy(src, dst):
    """Hard-link (instant, no space) where src and dst share a file system, else copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _shared_interpreter(dest):
    """The hub's own interpreter and standard library, re-homed under `dest`.

    The same build, not the system's python of the same version: a different patch release
    changes the standard library under the installed packages (soupsieve 4.1 cannot compile
    CSS selectors on Debian's 3.11.2, which breaks nbconvert's HTML export).
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_prefix)
    dest = Path(dest)
    if not (dest / "bin" / version).exists():
        (dest / "bin").mkdir(parents=True, exist_ok=True)
        (dest / "lib").mkdir(exist_ok=True)
        _link_or_copy(base / "bin" / version, dest / "bin" / version)
        for lib in (base / "lib").glob(f"lib{version}*.so*"):
            _link_or_copy(lib, dest / "lib" / lib.name)
        shutil.copytree(base / "lib" / version, dest / "lib" / version,
                        copy_function=_link_or_copy, symlinks=True,
                        ignore=shutil.ignore_patterns("site-packages", "test"))
        (dest / "lib" / version / "site-packages").mkdir(exist_ok=True)
    return dest / "bin" / version, dest / "lib"


def user_environment(dest):
    """(bin directory, extra environment) of the Python the users' servers and nbgrader run.

    That is the hub's own environment, unless its interpreter sits where other users cannot
    reach it (e.g. a pyenv build under root's 0700 home). Then a thin venv is made in `dest`
    (a directory every user can reach) on a re-homed copy of the same interpreter: the hub
    environment's site-packages added by a .pth file, its share/ and etc/ linked (JupyterLab's
    assets, kernel specs, server-extension config) and its console scripts re-pointed at the
    new interpreter. The extra environment (LD_LIBRARY_PATH for a shared libpython) must be
    set for every process that runs it.
    """
    prefix = Path(sys.prefix)
    if _reachable_by_all(sys.executable):
        return prefix / "bin", {}
    dest = Path(dest)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    python, libdir = _shared_interpreter(dest / "interpreter")
    extra_env = {"LD_LIBRARY_PATH": str(libdir)}
    venv = dest / "venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True,
                       env={**os.environ, **extra_env})
    site = prefix / "lib" / version / "site-packages"
    (venv / "lib" / version / "site-packages" / "zz_drylab_hub_env.pth").write_text(
        f"import site; site.addsitedir({str(site)!r})\n")
    for name in ("share", "etc"):
        link = venv / name
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
        link.symlink_to(prefix / name)
    for script in (prefix / "bin").iterdir():
        if script.name.startswith(("python", "activate", "pip")) or not script.is_file():
            continue
        lines = script.read_bytes().split(b"\n", 1)
        if len(lines) == 2 and lines[0].startswith(b"#!") and b"python" in lines[0]:
            target = venv / "bin" / script.name
            target.write_bytes(b"#!" + str(venv / "bin" / "python").encode() + b"\n" + lines[1])
            os.chmod(target, 0o755)
    for path in [dest, *dest.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        wanted = mode | (0o055 if path.is_dir() else 0o044)
        if wanted != mode:
            os.chmod(path, wanted)
    if not _reachable_by_all(venv / "bin" / "python"):
        raise HubConfigError(f"{dest} is not reachable by other users; choose another "
                             "DRYLAB_USER_ENV_DIR")
    return venv / "bin", extra_env


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
    tools); both roles read jupyter-config/common/nbgrader_config.py (course id, exchange root).
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


def install_course(course_src, instructor):
    """Copy a course (nbgrader layout: nbgrader_config.py, source/<module>/) to the instructor.

    Returns the course directory ~instructor/drylab, owned by the instructor and 0700, since
    it will hold every resident's submission, the gradebook and the solutions.
    """
    course_src = Path(course_src)
    if not (course_src / "source").is_dir():
        raise HubConfigError(f"{course_src} is not a course directory: it has no source/ folder")
    entry = pwd.getpwnam(instructor)
    dest = Path(entry.pw_dir) / COURSE_DIR_NAME
    shutil.copytree(course_src, dest, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for path in [dest, *dest.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    os.chmod(dest, 0o700)
    return dest


def instructor_env(instructor, exchange_root, user_env):
    """Environment for nbgrader commands an instructor runs outside their hub server."""
    kwargs = as_user(instructor, user_env)
    kwargs["env"].update({
        "JUPYTER_CONFIG_PATH": role_config_path("instructor"),
        "DRYLAB_EXCHANGE_ROOT": str(exchange_root),
        "DRYLAB_COURSE_ID": COURSE_ID,
    })
    kwargs["cwd"] = str(Path(kwargs["cwd"]) / COURSE_DIR_NAME)
    return kwargs


def run_as_instructor(instructor, exchange_root, user_env, argv, **extra):
    """Run `argv` (e.g. ["nbgrader", "collect", "00_orientation"]) as the instructor, in the
    course directory, with the hub's nbgrader configuration. Raises CalledProcessError."""
    kwargs = instructor_env(instructor, exchange_root, user_env)
    kwargs.update(extra)
    result = subprocess.run(argv, text=True, capture_output=True, **kwargs)
    if result.returncode:
        raise subprocess.CalledProcessError(
            result.returncode, argv, result.stdout,
            f"{' '.join(argv)} as {instructor} failed:\n{result.stderr[-4000:]}")
    return result


def course_dir(instructor):
    """The instructor's course directory on the hub (~instructor/drylab)."""
    return Path(pwd.getpwnam(instructor).pw_dir) / COURSE_DIR_NAME


def _chown_tree(path, uid, gid):
    for p in [path, *Path(path).rglob("*")]:
        os.chown(p, uid, gid, follow_symlinks=False)


def grade_as_root(instructor, course, sandbox="bwrap", workers=None):
    """Grade the collected submissions with `drylab grade`, as root, in the bwrap sandbox.

    The sandbox needs root (it joins cgroups and drops each kernel to a leased uid), so on a
    single host an administrator (or a sudo rule for exactly this) runs grading; the files it
    writes (journal, gradebook, reference cache) are handed back to the instructor after.
    """
    entry = pwd.getpwnam(instructor)
    bin_dir = Path(sys.executable).parent
    argv = [str(bin_dir / "drylab"), "grade", str(course), "--sandbox", sandbox,
            "--no-progress"]
    if workers:
        argv += ["--workers", str(workers)]
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    try:
        result = subprocess.run(argv, text=True, capture_output=True, env=env, cwd=course)
    finally:
        _chown_tree(course, entry.pw_uid, entry.pw_gid)
    if result.returncode:
        raise subprocess.CalledProcessError(
            result.returncode, argv, result.stdout,
            f"{' '.join(argv)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result


def stage_feedback(course, module):
    """Put nbgrader's submission stamps next to drylab's feedback pages.

    `drylab feedback` writes COURSE/feedback/<resident>/<module>/<module>.html; nbgrader's
    release_feedback also needs that submission's timestamp.txt and submission_secret.txt
    there (the secret names the released file, so only its author can find it), which
    `nbgrader generate_feedback` would have copied from submitted/.
    """
    course = Path(course)
    owner = course.stat()
    staged = []
    for page in sorted((course / "feedback").glob(f"*/{module}/{module}.html")):
        resident = page.parent.parent.name
        submitted = course / "submitted" / resident / module
        for stamp in ("timestamp.txt", "submission_secret.txt"):
            shutil.copy2(submitted / stamp, page.parent / stamp)
            os.chown(page.parent / stamp, owner.st_uid, owner.st_gid)
        staged.append(page)
    return staged


def release_module(instructor, course_src, module, exchange_root, user_env):
    """What an instructor does to hand out a module: copy the course in, `drylab build` it
    (the release without solutions, hidden tests or grading metadata), release it."""
    course = install_course(course_src, instructor)
    run_as_instructor(instructor, exchange_root, user_env,
                      ["drylab", "build", str(course), "--module", module])
    run_as_instructor(instructor, exchange_root, user_env,
                      ["nbgrader", "release_assignment", "--force", module])
    return course


def main(argv=None):
    """`python drylab_hub.py release-demo`: run-hub.sh's set-up of the try-out (as root)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", choices=["release-demo"])
    parser.add_argument("--module", default="00_orientation")
    args = parser.parse_args(argv)
    instructor = env_list("DRYLAB_INSTRUCTORS")[0]
    exchange_root = Path(require_env("DRYLAB_EXCHANGE_ROOT", "where the exchange lives"))
    ensure_unix_user(instructor, create=True)
    prepare_exchange(exchange_root, COURSE_ID, owner=instructor)
    user_env = user_environment(require_env("DRYLAB_USER_ENV_DIR", "the users' Python"))
    course = release_module(instructor, REPO / "curriculum", args.module, exchange_root,
                            user_env)
    print(f"released {args.module} from {course}")


if __name__ == "__main__":
    main()
