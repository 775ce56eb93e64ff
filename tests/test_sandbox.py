"""The bwrap sandbox on its own: what a confined process sees, its limits, the kernel hook.

Most tests run a short Python program through :meth:`Sandbox.command` (the same launcher and
bwrap line a kernel gets, ~0.1 s each); one starts a real kernel over ipc.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from autograder import sandbox
from autograder.sandbox import ResourceLimits, Sandbox, SandboxUnavailable

needs_bwrap = pytest.mark.skipif(
    not sandbox.probe(), reason=f"bwrap sandbox: {sandbox.probe().reason}"
)


def run_inside(sb: Sandbox, code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = sb.command([sys.executable, "-c", textwrap.dedent(code)])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def course(tmp_path):
    """A course-like tree next to the scratch dir: what the kernel must not see."""
    c = tmp_path / "course"
    (c / "source" / "m1").mkdir(parents=True)
    (c / "source" / "m1" / "m1.ipynb").write_text("### BEGIN SOLUTION\nsecret = 42\n")
    (c / "gradebook.db").write_text("grades")
    (c / "submitted" / "other" / "m1").mkdir(parents=True)
    (c / "submitted" / "other" / "m1" / "m1.ipynb").write_text("other resident")
    work = tmp_path / "scratch" / "w0" / "slot0-x"
    work.mkdir(parents=True)
    return c, work


def test_probe_gives_a_reason():
    p = sandbox.probe()
    assert isinstance(p.reason, str) and p.reason
    assert sandbox.unavailable_reason() == (None if p.usable else p.reason)


@needs_bwrap
def test_filesystem_view_env_and_network(course, monkeypatch):
    c, work = course
    monkeypatch.setenv("DRYLAB_GRADER_SECRET", "s3cr3t")
    (work / "data.csv").write_text("a,b\n1,2\n")
    with Sandbox(work, hide=[c]) as sb:
        r = run_inside(sb, f"""
            import json, os, socket
            out = {{"uid": os.getuid(), "cwd": os.getcwd(), "env": dict(os.environ),
                   "ls_work": sorted(os.listdir(".")), "root": sorted(os.listdir("/"))}}
            for p in [{str(c)!r}, {str(c / "gradebook.db")!r}, "/home", "/root/.bashrc",
                      {str(work.parent.parent)!r} + "/w1"]:
                out[p] = os.path.exists(p)
            for p in ["/usr/drylab-x", {sys.prefix!r} + "/drylab-x", "ok.txt", "/tmp/x"]:
                try:
                    open(p, "w").write("x")
                    out["write " + p] = True
                except OSError:
                    out["write " + p] = False
            try:
                socket.create_connection(("1.1.1.1", 53), timeout=2)
                out["net"] = True
            except OSError:
                out["net"] = False
            print(json.dumps(out))
        """)
        assert r.returncode == 0, r.stderr
        seen = json.loads(r.stdout)
    assert seen["uid"] == sb.uid and seen["uid"] >= sandbox.UID_BASE
    assert seen["cwd"] == str(work)
    assert seen["ls_work"] == ["data.csv"]
    assert not any(seen[p] for p in [str(c), str(c / "gradebook.db"), "/root/.bashrc"])
    # /home exists only if the environment or the checkout lives there (then only that path)
    assert seen["/home"] == any(p.startswith("/home/") for p in (sys.prefix, __file__))
    assert "DRYLAB_GRADER_SECRET" not in seen["env"]
    assert seen["env"].get("JPY_PARENT_PID", "1") == "1"
    assert seen["write ok.txt"] and seen["write /tmp/x"]
    assert not seen["write /usr/drylab-x"] and not seen[f"write {sys.prefix}/drylab-x"]
    assert (work / "ok.txt").read_text() == "x"
    assert seen["net"] is False


@needs_bwrap
def test_hidden_path_under_a_bound_tree_is_masked(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    secret_dir = os.path.join(os.path.dirname(sandbox.__file__), "templates")
    with Sandbox(work, hide=[secret_dir]) as sb:
        r = run_inside(sb, f"import os; print(os.listdir({secret_dir!r}))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


@needs_bwrap
def test_memory_limit_kills_and_is_explained(tmp_path):
    with Sandbox(tmp_path, limits=ResourceLimits(memory_mb=128)) as sb:
        r = run_inside(sb, "x = bytearray(600 * 1024 * 1024)\nx[::4096] = b'y' * len(x[::4096])")
        assert r.returncode != 0
        if sb.probe.cgroups.get("memory"):
            assert r.returncode == 128 + 9  # bwrap reports its child's SIGKILL
            assert sb.limit_events()["oom_kill"] >= 1
            assert "memory limit of 128 MiB" in sb.explain_death()
        else:
            assert "MemoryError" in r.stderr


@needs_bwrap
def test_process_limit_and_nothing_survives_close(tmp_path):
    with Sandbox(tmp_path, limits=ResourceLimits(pids=24)) as sb:
        r = run_inside(sb, """
            import subprocess
            procs = []
            try:
                for _ in range(200):
                    procs.append(subprocess.Popen(["sleep", "60"], start_new_session=True))
            except OSError as e:
                print("stopped", len(procs), type(e).__name__)
        """)
        assert r.returncode == 0, r.stderr
        n = int(r.stdout.split()[1])
        assert 10 <= n < 40, r.stdout
        # the launcher has exited; its setsid'd sleeps die with the pid namespace or close()
        uid = sb.uid
    assert sandbox._kill_uid(uid) == 0


@needs_bwrap
def test_uids_are_leased_one_per_sandbox(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with Sandbox(tmp_path / "a") as a, Sandbox(tmp_path / "b") as b:
        assert a.uid != b.uid
        assert os.stat(tmp_path / "a").st_uid == a.uid


@needs_bwrap
def test_seal_removes_links_and_read_output_refuses_them(tmp_path):
    outside = tmp_path / "reference.json"
    outside.write_text('{"type": "json", "value": 42}')
    work = tmp_path / "w"
    (work / ".drylab" / "answers").mkdir(parents=True)
    with Sandbox(work) as sb:
        sb.give(work)  # the grader made .drylab as root
        r = run_inside(sb, f"""
            import os
            os.symlink({str(outside)!r}, ".drylab/answers/q1.json")
            os.mkfifo(".drylab/answers/q2.json")
            open(".drylab/answers/q3.json", "w").write("{{}}")
        """)
        assert r.returncode == 0, r.stderr
        with pytest.raises(PermissionError):
            sandbox.read_output(work, ".drylab/answers/q1.json")
        assert sorted(sb.seal()) == [".drylab/answers/q1.json", ".drylab/answers/q2.json"]
    assert sorted(os.listdir(work / ".drylab" / "answers")) == ["q3.json"]
    assert sandbox.read_output(work, ".drylab/answers/q3.json") == b"{}"
    os.symlink(outside, work / ".drylab" / "link")
    with pytest.raises(PermissionError):
        sandbox.read_output(work, ".drylab/link/x")
    with pytest.raises(ValueError):
        sandbox.read_output(work, "../reference.json")


@needs_bwrap
@pytest.mark.slow
def test_kernel_over_ipc_survives_interrupt(tmp_path):
    """The kernel hook: a sandboxed kernel runs cells, and an interrupt stops a cell without
    killing bwrap (jupyter signals the whole process group)."""
    from jupyter_core.utils import run_sync

    from autograder.kernels import Limits

    km, cleanup = sandbox.provision_kernel(tmp_path, slot=0, limits=Limits())
    try:
        kc = km.blocking_client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive("import os; uid = os.getuid()", timeout=30)
        assert reply["content"]["status"] == "ok"
        msg_id = kc.execute("import time; time.sleep(60)")
        import time

        time.sleep(1.5)
        run_sync(km.interrupt_kernel)()
        reply = kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        reply = kc.execute_interactive("print(uid)", timeout=30, output_hook=lambda m: None)
        assert reply["content"]["status"] == "ok"
        assert run_sync(km.is_alive)()
        kc.stop_channels()
    finally:
        cleanup()
    assert not run_sync(km.is_alive)()


def test_auto_falls_back_loudly_and_bwrap_fails_clearly(monkeypatch):
    from autograder import kernels

    monkeypatch.setattr(sandbox, "unavailable_reason", lambda: "bwrap is not installed")
    with pytest.warns(UserWarning, match="UNSANDBOXED"):
        mode, warnings = kernels.resolve_sandbox("auto")
    assert mode == "none" and "bwrap is not installed" in warnings[0]
    with pytest.raises(kernels.SandboxUnavailable, match="bwrap is not installed"):
        kernels.resolve_sandbox("bwrap")


def test_sandbox_refuses_when_unusable(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "probe", lambda **kw: sandbox.Probe(False, "no bwrap here"))
    with pytest.raises(SandboxUnavailable, match="no bwrap here"):
        Sandbox(tmp_path)
