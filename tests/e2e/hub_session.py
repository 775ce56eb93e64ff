"""A real JupyterHub on loopback for the browser test: temporary unix users, state and exchange.

The hub runs deploy/single-host/jupyterhub_config.py unchanged, configured by environment
variables, on free ports, with everything it writes in one temporary directory. The unix
accounts it needs (one instructor, two residents) get random names and are removed again.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
SINGLE_HOST = REPO / "deploy" / "single-host"
sys.path.insert(0, str(SINGLE_HOST))
import drylab_hub  # noqa: E402 (lives in deploy/single-host, put on sys.path just above)
import instructor as instructor_steps  # noqa: E402 (the instructor.py module)
import user_env  # noqa: E402

ARTIFACTS = REPO / "test-artifacts" / "e2e"
PASSWORD = "e2e-" + secrets.token_urlsafe(12)


@dataclass
class Hub:
    url: str
    root: Path
    exchange: Path
    instructor: str
    residents: list
    password: str
    user_env: tuple
    log: Path
    proc: subprocess.Popen = field(repr=False)

    def instructor_run(self, *argv):
        """Run a command as the instructor in the course directory (nbgrader, drylab)."""
        return instructor_steps.run_as_instructor(self.instructor, self.exchange, self.user_env,
                                            list(argv))

    def as_user(self, name, code):
        """Run Python `code` as unix user `name`; returns the completed process."""
        kwargs = drylab_hub.as_user(name, self.user_env)
        return subprocess.run([str(self.user_env[0] / "python"), "-c", code], text=True,
                              capture_output=True, **kwargs)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url, proc, log, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyterhub exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/hub/health", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"jupyterhub did not answer on {url} in {timeout}s:\n{log.read_text()[-4000:]}")


def _stop(proc, state_dir, timeout=60):
    """Stop the hub (it stops the servers and its proxy); if it had to be killed, stop the
    proxy it started too, by the pid it recorded."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    pid_file = state_dir / "proxy.pid"
    if pid_file.exists():
        try:
            proxy = psutil.Process(int(pid_file.read_text()))
            if "configurable-http-proxy" in " ".join(proxy.cmdline()):
                proxy.kill()
        except (psutil.NoSuchProcess, ValueError):
            pass


def _remove_user(name):
    """Kill what is left of a test user's processes (by pid) and delete the account."""
    try:
        uid = drylab_hub.pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    for p in psutil.process_iter(["uids"]):
        if p.info["uids"] and p.info["uids"].real == uid:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
    time.sleep(0.5)
    subprocess.run(["userdel", "--remove", name], capture_output=True)


@pytest.fixture(scope="module")
def hub():
    if os.geteuid() != 0:
        pytest.skip("the hub test creates unix users (one per resident, as the deployment "
                    "does) and must run as root")
    for needed in (Path("/usr/bin/chromium"),
                   REPO / "deploy" / "node_modules" / ".bin" / "configurable-http-proxy"):
        if not needed.exists():
            pytest.fail(f"{needed} is missing: run scripts/install-system-deps.sh (make test does)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="drylab-e2e-"))
    os.chmod(root, 0o755)
    tag = secrets.token_hex(3)
    teacher, residents = f"inst-{tag}", [f"resa-{tag}", f"resb-{tag}"]
    port = _free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "DRYLAB_HUB_AUTH": "shared-password",
        "DRYLAB_SHARED_PASSWORD": PASSWORD,
        "DRYLAB_INSTRUCTORS": teacher,
        "DRYLAB_RESIDENTS": ",".join(residents),
        "DRYLAB_CREATE_USERS": "1",
        "DRYLAB_EXCHANGE_ROOT": str(root / "exchange"),
        "DRYLAB_HUB_STATE_DIR": str(root / "state"),
        "DRYLAB_USER_ENV_DIR": str(root / "user-env"),
        "DRYLAB_HUB_PORT": str(port),
        "DRYLAB_HUB_API_PORT": str(_free_port()),
        "DRYLAB_PROXY_API_PORT": str(_free_port()),
    }
    log = root / "hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(SINGLE_HOST / "jupyterhub_config.py")],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield Hub(url=url, root=root, exchange=root / "exchange", instructor=teacher,
                  residents=residents, password=PASSWORD,
                  user_env=user_env.user_environment(root / "user-env"), log=log, proc=proc)
    finally:
        _stop(proc, root / "state")
        shutil.copy(log, ARTIFACTS / "hub.log")
        for name in [teacher, *residents]:
            _remove_user(name)
        shutil.rmtree(root, ignore_errors=True)
