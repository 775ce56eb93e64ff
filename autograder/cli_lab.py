"""``drylab lab``: JupyterLab on the course's release, with nbgrader's extensions.

What ``make lab`` runs. The course (``curriculum/`` by default) is built first when its
release is missing or older than a source notebook (``drylab build``'s API), then JupyterLab
starts with the course as its root, so nbgrader's formgrader and assignment list find the
course's ``nbgrader_config.py``, and opens ``release/<first module>/``. The URL, with its
token, is printed either way.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path

#: nbgrader's JupyterLab extension and its Jupyter server extension, as the list commands
#: name them.
LAB_EXTENSION = "@jupyter/nbgrader"
SERVER_EXTENSION = "nbgrader"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lab", help="JupyterLab on the released course, with the nbgrader extensions")
    p.add_argument("course_dir", nargs="?", default="curriculum", type=Path,
                   help="an nbgrader course directory (default: curriculum)")
    p.add_argument("--port", type=int, default=8888, help="port to listen on (default 8888)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--rebuild", action="store_true", help="build the release even if current")
    p.add_argument("--check", action="store_true",
                   help="build if needed and check the extensions, then exit without starting")
    p.set_defaults(func=run)


def stale_modules(course_dir: Path) -> list[str]:
    """Modules whose release is missing or older than their source folder's files."""
    from autograder.course import modules

    stale = []
    for module in modules(course_dir):
        release = course_dir / "release" / module / f"{module}.ipynb"
        sources = [p for p in (course_dir / "source" / module).rglob("*") if p.is_file()]
        newest = max(p.stat().st_mtime for p in sources)
        if not release.is_file() or release.stat().st_mtime < newest:
            stale.append(module)
    return stale


def _jupyter() -> str:
    """The ``jupyter`` next to this interpreter (the venv's), else the one on PATH."""
    here = Path(sys.executable).with_name("jupyter")
    return str(here) if here.exists() else "jupyter"


def extension_status() -> dict[str, bool]:
    """Whether nbgrader's lab and server extensions are listed as enabled.

    Returns
    -------
    dict
        ``{"labextension": bool, "server extension": bool}``.
    """
    def listed(args: list[str], name: str) -> bool:
        out = subprocess.run([_jupyter(), *args], capture_output=True, text=True, timeout=120)
        lines = (out.stdout + out.stderr).splitlines()
        return any(name in line and "enabled" in line and "disabled" not in line
                   for line in lines)

    return {
        "labextension": listed(["labextension", "list"], LAB_EXTENSION),
        "server extension": listed(["server", "extension", "list"], SERVER_EXTENSION),
    }


def lab_command(course_dir: Path, *, port: int, ip: str, token: str,
                open_browser: bool, start_path: str) -> list[str]:
    """The ``jupyter lab`` command line that serves the course."""
    cmd = [
        _jupyter(), "lab",
        f"--ServerApp.root_dir={course_dir}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.ip={ip}",
        f"--IdentityProvider.token={token}",
        f"--LabApp.default_url=/lab/tree/{start_path}",
    ]
    if not open_browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI run as root
    return cmd


def run(args: argparse.Namespace) -> int:
    from autograder.build import build_course
    from autograder.course import load_config, modules

    course_dir = args.course_dir.resolve()
    load_config(course_dir)  # a clear error for a folder that is not a course
    todo = modules(course_dir) if args.rebuild else stale_modules(course_dir)
    if todo:
        print(f"building the release of {', '.join(todo)} ...", flush=True)
        build_course(course_dir, todo)
    status = extension_status()
    for what, ok in status.items():
        print(f"nbgrader {what}: {'enabled' if ok else 'NOT enabled'}")
    if not all(status.values()):
        print("enable them with: jupyter labextension enable @jupyter/nbgrader && "
              "jupyter server extension enable --sys-prefix nbgrader.server_extensions."
              "formgrader", file=sys.stderr)
    first = modules(course_dir)[0] if modules(course_dir) else ""
    start = f"release/{first}/{first}.ipynb" if first else "release"
    token = secrets.token_hex(16)
    url = f"http://{args.ip}:{args.port}/lab/tree/{start}?token={token}"
    if args.check:
        print(f"would serve {course_dir} at {url}")
        return 0 if all(status.values()) else 1
    print(f"JupyterLab on {course_dir}: {url}", flush=True)
    cmd = lab_command(course_dir, port=args.port, ip=args.ip, token=token,
                      open_browser=not args.no_browser, start_path=start)
    try:
        return subprocess.call(cmd, cwd=course_dir)
    except KeyboardInterrupt:
        return 0
