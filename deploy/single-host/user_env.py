"""The Python environment the users' servers and the instructor's commands run in.

Normally the hub's own environment. When its interpreter sits where other users cannot reach
it (a pyenv build under root's 0700 home, as on the test machines), a thin venv on a re-homed
copy of the same interpreter is made where everyone can read it.
"""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from drylab_hub import HubConfigError


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
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    # The packages and the hub's per-role Jupyter configuration must be readable by every
    # user in any case: only the interpreter can be re-homed cheaply.
    for needed in (prefix / "lib" / version / "site-packages", Path(__file__).parent):
        if not _reachable_by_all(needed):
            raise HubConfigError(
                f"{needed} cannot be reached by other users (a directory above it lacks o+x); "
                "install Dry Lab where every user can read it, e.g. /opt/drylab")
    if _reachable_by_all(sys.executable):
        return prefix / "bin", {}
    dest = Path(dest)
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

