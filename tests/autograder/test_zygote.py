"""Kernels forked from a warm template process (autograder.zygote) behave like started ones."""

from __future__ import annotations

import os
import signal
import time

import pytest
from conftest import CELL_TIMEOUT, CLASS, TIMEOUT, add_class, copy_built, results_table

from autograder.kernels import KernelPool, kernel_env, kill_kernel, template_imports
from autograder.zygote import KERNEL_STARTUP_IMPORTS, Zygote


@pytest.fixture(scope="module")
def zygote():
    z = Zygote(template_imports(("numpy", "pandas", "matplotlib", "matplotlib.pyplot")),
               env=kernel_env())
    yield z
    z.close()


@pytest.fixture
def pool(tmp_path, zygote):
    """A pool whose kernels come from the module's zygote (started once: ~1 s)."""
    p = KernelPool(tmp_path / "scratch", size=0, warm_imports=("numpy", "pandas"))
    p._zygote = zygote  # share it; the pool would otherwise start its own
    yield p
    p._zygote = None
    p.close()


def run(kernel, code: str, timeout: float = 30.0) -> tuple[dict, list]:
    """Execute ``code``; (reply content, [(msg_type, content)] of IOPub)."""
    from autograder.kernels import _blocking_client

    kc = _blocking_client(kernel.km)
    outputs = []
    try:
        reply = kc.execute_interactive(
            code, timeout=timeout,
            output_hook=lambda m: outputs.append((m["msg_type"], m["content"])))
    finally:
        kc.stop_channels()
    return reply["content"], outputs


def stdout_of(outputs) -> str:
    return "".join(c.get("text", "") for t, c in outputs if t == "stream")


def test_a_forked_kernel_is_fresh_and_works(pool, zygote):
    first = pool.take()
    try:
        reply, out = run(first, "secret = 42\nimport os\nprint(os.getpid(), os.getppid())")
        assert reply["status"] == "ok"
        pid, ppid = map(int, stdout_of(out).split())
        assert ppid == zygote.pid and pid != zygote.pid
    finally:
        first.discard()
    second = pool.take()
    try:
        code = (
            "import os, random, numpy as np, pandas as pd, matplotlib, matplotlib.pyplot as plt\n"
            "print('secret' in globals(), os.getcwd(), os.getpid(), matplotlib.get_backend())\n"
            "a = np.random.default_rng(0).random((400, 400)); print(round(float((a @ a).sum())))\n"
            "pd.DataFrame({'x': [1, 2]}).to_parquet('t.parquet')\n"
            "print(pd.read_parquet('t.parquet')['x'].sum(), random.random())\n"
            "plt.plot([1, 2, 3]); plt.show()\n"
        )
        reply, out = run(second, code)
        assert reply["status"] == "ok", reply
        lines = stdout_of(out).splitlines()
        has_secret, cwd, pid2, backend = lines[0].split()
        assert has_secret == "False"  # nothing of the previous kernel
        assert os.path.realpath(cwd) == os.path.realpath(second.workdir)
        assert int(pid2) != pid
        assert backend == "module://matplotlib_inline.backend_inline"
        assert int(lines[1]) > 0
        assert lines[2].split()[0] == "3"
        assert any(t == "display_data" and "image/png" in c["data"] for t, c in out)
    finally:
        second.discard()


def test_random_state_differs_between_forked_kernels(pool):
    values = []
    for _ in range(2):
        kernel = pool.take()
        try:
            _, out = run(kernel, "import random; print(random.random())")
            values.append(stdout_of(out).strip())
        finally:
            kernel.discard()
    assert values[0] != values[1]  # CPython re-seeds `random` after fork


def test_a_forked_kernel_imports_nothing_to_start(pool):
    kernel = pool.take()
    try:
        _, out = run(kernel, "import sys; print(len(set(sys.modules) - sys._drylab_zygote_modules))")
        # the kernel's own start-up (debugger, magics, completer...) was preloaded
        assert int(stdout_of(out)) < 15, KERNEL_STARTUP_IMPORTS
    finally:
        kernel.discard()


def test_kill_takes_the_kernel_and_its_children(pool):
    kernel = pool.take()
    try:
        _, out = run(kernel, "import subprocess\n"
                             "p = subprocess.Popen(['sleep', '300'])\nprint(p.pid)")
        child = int(stdout_of(out))
        proc = kernel.km.provisioner.process
        kill_kernel(kernel.km)
        assert proc.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _running(child):
            time.sleep(0.05)
        assert not _running(child)
    finally:
        kernel.discard()


def test_exit_status_and_interrupt(pool):
    kernel = pool.take()
    try:
        from autograder.kernels import _blocking_client

        kc = _blocking_client(kernel.km)
        try:
            kc.execute("while True:\n    pass")
            time.sleep(0.5)
            kernel.km.provisioner.process.send_signal(signal.SIGINT)
            reply = kc.get_shell_msg(timeout=10)
        finally:
            kc.stop_channels()
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        with pytest.raises(Exception):  # noqa: B017 - the kernel is gone: no reply
            run(kernel, "import os; os._exit(3)", timeout=5)
        proc = kernel.km.provisioner.process
        assert proc.wait(timeout=10) == 3
    finally:
        kernel.discard()


def test_closing_the_zygote_kills_its_kernels(tmp_path):
    z = Zygote(env=kernel_env())
    p = KernelPool(tmp_path / "s", size=0, warm_imports=())
    p._zygote = z
    kernel = p.take()
    pid = kernel.km.provisioner.process.pid
    assert _running(pid)
    p.close()  # closes the zygote (and discards nothing: the kernel was taken)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    assert not _running(pid)
    kernel.discard()


def test_a_broken_template_falls_back_to_started_kernels(tmp_path, monkeypatch):
    import autograder.zygote as zmod

    def broken(*a, **k):
        raise zmod.ZygoteError("simulated: cannot start")

    monkeypatch.setattr(zmod, "Zygote", broken)
    p = KernelPool(tmp_path / "s", size=0, warm_imports=())
    with pytest.warns(UserWarning, match="started one by one"):
        kernel = p.take()
    try:
        assert p.fork is False and "simulated" in p.warnings[0]
        reply, _ = run(kernel, "x = 1")
        assert reply["status"] == "ok"
        assert kernel.km.provisioner.process.__class__.__name__ == "Popen"
    finally:
        kernel.discard()
        p.close()


def test_a_kernel_that_does_not_come_up_is_replaced(pool, monkeypatch):
    from autograder import kernels

    real = kernels.WarmKernel.wait_ready
    calls = []

    def flaky(self, timeout):
        calls.append(self)
        if len(calls) == 1:
            raise TimeoutError("kernel not ready after 60 s (simulated)")
        return real(self, timeout)

    monkeypatch.setattr(kernels.WarmKernel, "wait_ready", flaky)
    kernel = pool.take()
    try:
        assert len(calls) == 2 and calls[1] is kernel
        assert not _running(calls[0].km.provisioner.pid)  # the failed one was discarded
        reply, _ = run(kernel, "x = 1")
        assert reply["status"] == "ok"
    finally:
        kernel.discard()
    calls.clear()
    monkeypatch.setattr(kernels.WarmKernel, "wait_ready",
                        lambda self, t: (_ for _ in ()).throw(TimeoutError("never")))
    with pytest.raises(TimeoutError, match="never"):
        pool.take()


@pytest.mark.slow
def test_forked_and_started_kernels_grade_alike(graded_course, built_course, tmp_path):
    """The whole standard class (correct, wrong, misconceptions, error, loop, crash, patched
    checks) graded with started kernels gives exactly the forked run's rows."""
    from autograder.grade import grade_course

    forked, _, _ = graded_course
    course = copy_built(built_course, tmp_path / "c")
    add_class(course, pairs={(r, m) for (r, m) in _class_pairs()})
    summary = grade_course(course, workers=2, sandbox="none", cell_timeout=CELL_TIMEOUT,
                           timeout=TIMEOUT, progress=False, fork=False)
    assert summary.graded == len(_class_pairs())
    started_rows = results_table(course).splitlines()
    forked_rows = [line for line in results_table(forked).splitlines()
                   if line.split(",")[0] in {r for r, _ in _class_pairs()}
                   or line.startswith("resident")]
    assert len(started_rows) > 2 * len(_class_pairs())  # a header and rows per question
    assert started_rows == forked_rows


def _class_pairs():
    return list(CLASS)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_one_template_serves_several_pools(tmp_path):
    """The grading run's shared template: each pool is a client; a client's kernels die
    with it, the others' do not; closing the template takes the rest and its socket."""
    sock = tmp_path / "t.sock"
    owner = Zygote(env=kernel_env(), listen=sock, wait=False)
    pools = [KernelPool(tmp_path / f"s{i}", size=0, warm_imports=(), template=str(sock))
             for i in range(2)]
    try:
        kernels = [p.take() for p in pools]
        pids = [k.km.provisioner.process.pid for k in kernels]
        assert all(p._zygote is not None and p._zygote.pid == owner.pid for p in pools)
        for k in kernels:
            _, out = run(k, "import os; print(os.getppid())")
            assert int(stdout_of(out)) == owner.pid
        pools[0]._zygote.close()  # a worker goes away without discarding its kernel
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _running(pids[0]):
            time.sleep(0.05)
        assert not _running(pids[0]) and _running(pids[1])
        reply, _ = run(kernels[1], "x = 2")
        assert reply["status"] == "ok"
    finally:
        owner.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _running(pids[1]):
        time.sleep(0.05)
    assert not _running(pids[1]) and not sock.exists()
    for k in kernels:
        k.discard()
    for p in pools:
        p._zygote = None
        p.close()


def test_an_unreachable_template_means_an_own_one(tmp_path):
    p = KernelPool(tmp_path / "s", size=0, warm_imports=(), template=str(tmp_path / "nope"))
    kernel = p.take()
    try:
        assert p.template is None and p._zygote is not None and p._zygote.listen is None
        reply, _ = run(kernel, "x = 1")
        assert reply["status"] == "ok"
    finally:
        kernel.discard()
        p.close()


def test_grading_processes_skip_the_slow_iri_checker():
    """autograder._startup: nbformat still validates, without compiling rfc3987_syntax."""
    import subprocess
    import sys

    code = (
        "import sys, autograder.grade, nbformat, jsonschema\n"
        "nbformat.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x')]))\n"
        "bad = nbformat.v4.new_notebook(); bad['cells'] = [{'cell_type': 'nope'}]\n"
        "try:\n"
        "    nbformat.validate(bad)\n"
        "except nbformat.ValidationError:\n"
        "    print('invalid caught')\n"
        "print(sys.modules.get('rfc3987_syntax', 'absent'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split("\n")
    assert out[0] == "invalid caught"
    assert out[1] == "None"  # marked unavailable, never imported


def test_cli_no_fork_reaches_grade_course(monkeypatch, tmp_path, capsys):
    import autograder.grade
    from autograder.grade import GradeSummary
    from drylab.cli import main

    seen = {}

    def fake(course_dir, **kw):
        seen.update(kw)
        return GradeSummary(course_dir=tmp_path)

    monkeypatch.setattr(autograder.grade, "grade_course", fake)
    assert main(["grade", str(tmp_path), "--no-fork", "--sandbox", "none"]) == 0
    assert seen["fork"] is False and seen["sandbox"] == "none"
    assert main(["grade", str(tmp_path)]) == 0
    assert seen["fork"] is True
    assert "graded 0 submission(s)" in capsys.readouterr().out
