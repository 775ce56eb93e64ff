"""Forked kernels: a warm template process ("zygote") that forks one fresh kernel per request.

Starting a kernel costs a new interpreter plus ``ipykernel``, pandas, numpy, scikit-learn and
matplotlib imports: 1.5-3 s of CPU for notebooks whose own code runs in milliseconds. On two
cores that start-up, not the residents' code, bounds grading throughput. The zygote imports
all of it once; each kernel is then a ``fork()`` of it that builds its own ``IPKernelApp``
(sockets, shell, empty user namespace) in ~0.1 s. A forked kernel is a fresh process: nothing
of another submission was ever in it, and it is discarded after one submission, exactly like a
started one. Its memory pages are shared copy-on-write with the zygote.

This is the ``multiprocessing`` forkserver pattern, specialised so that the forked child is a
normal Jupyter kernel driven over its connection file by nbclient / papermill, and so that the
grader can watch, interrupt and kill it through a ``subprocess.Popen``-like handle
(:class:`ForkedProcess`) that jupyter_client's provisioner API accepts.

Used for kernels that run without the bwrap sandbox (``--sandbox none``, and the instructor's
own solution for reference answers, which is trusted code). A sandboxed kernel is still a fresh
interpreter started by the sandbox launcher: a zygote shared by the kernels of one sandbox
would let one resident's leftover process reach the next resident's kernel (same uid, same
``/tmp``), see docs/security.md.

Safety of the fork
------------------
- The zygote only imports; it never starts a thread of its own, a zmq context, an event loop
  or an OpenMP region. BLAS / OpenMP pools are pinned to one thread in grading kernels
  (:data:`SINGLE_THREAD_ENV`), which also makes numeric results independent of the grading
  machine's core count.
- ``MPLBACKEND`` is set to the inline backend before matplotlib is imported, as ipykernel
  would set it; the backend module itself is loaded lazily in the kernel, after the shell
  exists, so figures come out as ``image/png`` outputs as in a started kernel.
- Python's ``random`` is re-seeded after fork by CPython; the child gets a new session
  (``setsid``) so the grader can kill it and everything it started as one process group.
- The zygote keeps each exited child as a zombie until the grader asks for its status, so a
  pid seen by the grader cannot be reused by another process meanwhile.

Protocol (internal): JSON lines over the zygote's stdin/stdout.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

#: Environment for grading kernels: one BLAS / OpenMP thread (see "Safety of the fork").
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}

#: What a starting ipykernel imports (its debugger, IPython's magics and completer, ...),
#: found by listing the modules a forked kernel loaded that its zygote had not. Imported in
#: the zygote so that a kernel's start-up imports nothing (tests/autograder/test_zygote.py).
KERNEL_STARTUP_IMPORTS = (
    "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.debugger",
    "IPython.core.completerlib", "IPython.core.debugger", "IPython.core.logger",
    "IPython.core.oinspect", "IPython.extensions.storemagic", "IPython.utils.wildcard",
    "psutil", "sqlite3", "tornado.gen", "tornado.locks", "tornado.platform.asyncio",
    "tornado.queues", "pdb", "cProfile", "faulthandler", "http.server", "xmlrpc.server",
    "mimetypes", "email.parser", "encodings.idna",
)

#: What ipykernel sets before the shell starts (kernelapp.init_gui_pylab).
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


class ZygoteError(RuntimeError):
    """The zygote could not be started or stopped answering."""


# ------------------------------------------------------------------------------ grader side
class Zygote:
    """A running template process; :meth:`spawn` forks a kernel from it.

    Parameters
    ----------
    preload : tuple of str
        Modules imported once in the zygote (:data:`KERNEL_STARTUP_IMPORTS` are always
        added).
    env : dict
        The environment of the zygote and, by default, of its kernels.
    startup_timeout : float
        Seconds the zygote may take to import ``preload``.
    """

    def __init__(self, preload: tuple[str, ...] = (), *, env: dict | None = None,
                 startup_timeout: float = 120.0):
        self.preload = (*KERNEL_STARTUP_IMPORTS,
                        *[m for m in preload if m not in KERNEL_STARTUP_IMPORTS])
        env = dict(os.environ if env is None else env)
        env.setdefault("MPLBACKEND", INLINE_BACKEND)
        for key, value in SINGLE_THREAD_ENV.items():
            env.setdefault(key, value)
        self.env = env
        self._lock = threading.Lock()
        t0 = time.monotonic()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "autograder.zygote", *self.preload],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, cwd="/", start_new_session=True, close_fds=True,
        )
        line = self._readline(startup_timeout)
        reply = json.loads(line) if line else {}
        if not reply.get("ready"):
            self.close()
            raise ZygoteError(f"the kernel template process did not start: "
                              f"{reply.get('error') or 'it exited'}")
        self.startup_s = time.monotonic() - t0
        self.failed_imports = reply.get("failed", [])

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def _readline(self, timeout: float) -> str:
        out = self._proc.stdout
        ready, _, _ = select.select([out], [], [], timeout)
        if not ready:
            self._proc.kill()
            raise ZygoteError(f"the kernel template process did not answer within "
                              f"{timeout:.0f} s")
        return out.readline().decode()

    def _call(self, request: dict, timeout: float = 30.0) -> dict:
        with self._lock:
            if not self.alive():
                raise ZygoteError("the kernel template process has exited")
            try:
                self._proc.stdin.write((json.dumps(request) + "\n").encode())
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise ZygoteError(f"the kernel template process is gone ({exc})") from None
            line = self._readline(timeout)
        if not line:
            raise ZygoteError("the kernel template process exited")
        reply = json.loads(line)
        if "error" in reply:
            raise ZygoteError(reply["error"])
        return reply

    def spawn(self, argv: list[str], *, cwd: str, env: dict | None = None,
              stdout: str | None = None, stderr: str | None = None) -> ForkedProcess:
        """Fork a kernel: ``argv`` is a kernel command (``python -m ipykernel_launcher ...``).

        ``stdout`` / ``stderr`` are file paths for the kernel's own fd 1 / 2 (default
        ``/dev/null``). Returns a ``Popen``-like handle.
        """
        if "ipykernel_launcher" not in argv:
            raise ValueError(f"the zygote forks IPython kernels only, not {argv!r}")
        args = argv[argv.index("ipykernel_launcher") + 1:]
        reply = self._call({"op": "spawn", "argv": args, "cwd": str(cwd),
                            "env": self.env if env is None else env,
                            "stdout": stdout, "stderr": stderr})
        return ForkedProcess(self, reply["pid"], argv)

    def reap(self, pid: int) -> int | None:
        """The exit status of an exited child (collected), or ``None`` if still running."""
        if not self.alive():
            return None
        return self._call({"op": "reap", "pid": pid})["status"]

    def close(self) -> None:
        """Stop the zygote; it kills the kernels it forked that are still running."""
        proc = self._proc
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(OSError):
            proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ForkedProcess:
    """A forked kernel, with the parts of ``subprocess.Popen`` jupyter_client uses."""

    stdin = stdout = stderr = None

    def __init__(self, zygote: Zygote, pid: int, args: list[str]):
        self.zygote = zygote
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        try:
            self._pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):  # pre-5.3 kernels: fall back to /proc
            self._pidfd = None

    def _exited(self) -> bool:
        if self._pidfd is not None:
            ready, _, _ = select.select([self._pidfd], [], [], 0)
            return bool(ready)
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except OSError:
            return True

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if not self._exited():
            return None
        status = None
        with contextlib.suppress(ZygoteError):
            status = self.zygote.reap(self.pid)
        # The zygote gone, init reaped the child and its status is lost: say "killed".
        self.returncode = -signal.SIGKILL if status is None else status
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            if self._pidfd is not None:
                left = 0.5 if deadline is None else max(0.0, min(0.5,
                                                                 deadline - time.monotonic()))
                select.select([self._pidfd], [], [], left)
            else:
                time.sleep(0.02)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is not None:
            return
        if self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def __del__(self):
        if getattr(self, "_pidfd", None) is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)


def forked_kernel_manager(zygote: Zygote, *, kernel_name: str = "python3", **kwargs):
    """An ``AsyncKernelManager`` whose kernel is forked from ``zygote``."""
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning import LocalProvisioner

    class _ForkProvisioner(LocalProvisioner):
        async def launch_kernel(self, cmd, **kw):
            # ipykernel exits when its parent changes; its parent is the zygote.
            env = {**(kw.get("env") or zygote.env), "JPY_PARENT_PID": str(zygote.pid)}
            self.process = zygote.spawn(cmd, cwd=str(kw.get("cwd") or os.getcwd()), env=env,
                                        stdout=kw.get("drylab_stdout"),
                                        stderr=kw.get("drylab_stderr"))
            self.pid = self.pgid = self.process.pid  # the child is its own session leader
            self.cwd = kw.get("cwd")
            return self.connection_info

    km = AsyncKernelManager(kernel_name=kernel_name, **kwargs)
    km.kernel_id = str(uuid.uuid4())
    km.provisioner = _ForkProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec,
                                      parent=km)
    return km


# ------------------------------------------------------------------------------ zygote side
def _child(request: dict) -> None:
    """In the forked child: become a kernel. Never returns.

    The zygote's control pipe is its fd 0 / 1; replacing them with ``dup2`` closes the
    child's copies, so a resident cannot talk to the zygote.
    """
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        for fd, path in ((1, request.get("stdout")), (2, request.get("stderr"))):
            target = (os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                      if path else devnull)
            os.dup2(target, fd)
            if target != devnull:
                os.close(target)
        os.close(devnull)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # ipykernel read JPY_PARENT_PID when the zygote imported it; say it again.
        argv = [*request["argv"], f"--IPKernelApp.parent_handle={os.getppid()}"]
        sys.argv = ["ipykernel_launcher", *argv]
        from ipykernel import kernelapp

        try:
            kernelapp.launch_new_instance(argv=argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - report and leave; never return into the zygote
        import traceback

        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _serve(preload: list[str]) -> None:
    import importlib

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader's Ctrl-C is for the grader
    # `python -m` put the zygote's working directory first on sys.path; a kernel must not
    # import from there (ipykernel_launcher removes it too; the kernel adds its own cwd).
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    failed = []
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a kernel reports it again when used
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    if "ipykernel.kernelapp" not in sys.modules:
        _reply({"error": "ipykernel cannot be imported: " + "; ".join(failed)})
        return
    # Move everything imported so far out of the garbage collector's sight: a collection
    # in a kernel would otherwise touch every object and copy the zygote's pages into it.
    gc.collect()
    gc.freeze()
    # What the zygote had loaded, for diagnosing what a kernel still imports when it starts.
    sys._drylab_zygote_modules = frozenset(sys.modules)
    _reply({"ready": True, "failed": failed})
    children: set[int] = set()
    stdin = sys.stdin.buffer
    try:
        for line in stdin:
            request = json.loads(line)
            if request["op"] == "spawn":
                pid = os.fork()
                if pid == 0:
                    _child(request)
                children.add(pid)
                _reply({"pid": pid})
            elif request["op"] == "reap":
                pid = request["pid"]
                status = None
                if pid in children:
                    got, raw = os.waitpid(pid, os.WNOHANG)
                    if got:
                        children.discard(pid)
                        status = os.waitstatus_to_exitcode(raw)
                _reply({"status": status})
            else:
                _reply({"error": f"unknown request {request['op']!r}"})
    finally:
        # The grader closed the pipe (or died): take every kernel down with the zygote.
        for pid in children:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)


def _reply(obj: dict) -> None:
    sys.stdout.buffer.write((json.dumps(obj) + "\n").encode())
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _serve(sys.argv[1:])
