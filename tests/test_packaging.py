"""The repository's pins agree with each other and the package imports cheaply."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_norm(name)] = version.strip()
    return pins


def _environment_yml() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s*-\s*([A-Za-z0-9_.\-]+)\s*(==|=)\s*([^\s#]+)", line)
        if m and m.group(1) != "python":
            pins[_norm(m.group(1))] = m.group(3)
    return pins


def test_environment_yml_matches_lock():
    lock, env = _lock(), _environment_yml()
    assert len(env) >= 20, "environment.yml should pin the direct dependencies"
    mismatched = {n: (v, lock.get(n)) for n, v in env.items() if lock.get(n) != v}
    assert not mismatched, f"environment.yml vs requirements.lock disagree: {mismatched}"


def test_direct_dependencies_are_pinned_in_both():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        names += extra
    lock, env = _lock(), _environment_yml()
    for name in map(_norm, names):
        assert name in lock, f"{name} is a dependency but not pinned in requirements.lock"
        assert name in env, f"{name} is a dependency but not pinned in environment.yml"


def test_installed_versions_are_the_pinned_ones():
    from importlib.metadata import PackageNotFoundError, version

    wrong = {}
    for name, pinned in _environment_yml().items():
        try:
            got = version(name)
        except PackageNotFoundError:
            got = None
        if got != pinned:
            wrong[name] = (pinned, got)
    assert not wrong, f"installed versions differ from the pins: {wrong}"


def test_import_synthetic_data_is_fast_and_light():
    code = (
        "import sys, time; t=time.perf_counter(); import synthetic_data; "
        "dt=time.perf_counter()-t; "
        "print(dt, 'nbformat' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dt, nbformat_loaded, sklearn_loaded = out.stdout.split()
    assert nbformat_loaded == "False" and sklearn_loaded == "False"
    # A generous bound for a noisy 2-core machine; `make bench` reports the real figure.
    assert float(dt) < 1.5, f"import synthetic_data took {dt} s"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
