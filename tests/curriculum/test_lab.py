"""``drylab lab`` (make lab): builds the release when needed and serves it with nbgrader."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import curriculum_harness as h
import pytest

from autograder.cli_lab import lab_command, stale_modules

DRYLAB = str(Path(sys.executable).with_name("drylab"))


def _course(tmp_path: Path) -> Path:
    """A course of module 00 only (quick to build)."""
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    for name in ("nbgrader_config.py", "competencies.yml"):
        (course / name).write_bytes((h.CURRICULUM / name).read_bytes())
    src = h.CURRICULUM / "source" / "00_orientation"
    (course / "source" / src.name).mkdir()
    for path in src.iterdir():
        if path.is_file():
            (course / "source" / src.name / path.name).write_bytes(path.read_bytes())
    return course


def test_stale_modules_and_the_command_line(tmp_path):
    course = _course(tmp_path)
    assert stale_modules(course) == ["00_orientation"]  # no release yet
    cmd = lab_command(course, port=9999, ip="127.0.0.1", token="t0k", open_browser=False,
                      start_path="release/00_orientation/00_orientation.ipynb")
    assert cmd[1] == "lab" and "--no-browser" in cmd
    assert f"--ServerApp.root_dir={course}" in cmd and "--ServerApp.port=9999" in cmd
    assert "--IdentityProvider.token=t0k" in cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""


@pytest.mark.slow
def test_lab_builds_the_release_and_serves_it_with_nbgrader(tmp_path):
    course = _course(tmp_path)
    port = _free_port()
    proc = subprocess.Popen([DRYLAB, "lab", str(course), "--no-browser", f"--port={port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "JupyterLab on" in line:
                break
        out = "".join(lines)
        assert "nbgrader labextension: enabled" in out, out
        assert "nbgrader server extension: enabled" in out, out
        url = re.search(r"(http://\S+\?token=(\w+))", out)
        assert url, out
        assert (course / "release" / "00_orientation" / "00_orientation.ipynb").is_file()
        assert stale_modules(course) == []
        token = url.group(2)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while _get(f"{base}/api/status?token={token}")[0] != 200:
            assert proc.poll() is None and time.monotonic() < deadline, "JupyterLab did not start"
            time.sleep(1)
        status, page = _get(url.group(1))
        assert status == 200 and "@jupyter/nbgrader" in page, "the lab page loads nbgrader's"
        assert _get(f"{base}/formgrader?token={token}")[0] == 200, "formgrader is served"
        status, body = _get(f"{base}/api/contents/release/00_orientation?token={token}")
        assert status == 200 and "00_orientation.ipynb" in body
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
