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

Protocol (internal): JSON lines, over the zygote's stdin/stdout for the process that started
it, and over a Unix socket for the other processes of a grading run (``listen=`` /
:meth:`Zygote.connect`). Each client's kernels are killed when the client disconnects; all of
them when the starting process closes the pipe or dies.
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


def _template_env(env: dict | None) -> dict:
    env = dict(os.environ if env is None else env)
    env.setdefault("MPLBACKEND", INLINE_BACKEND)
    for key, value in SINGLE_THREAD_ENV.items():
        env.setdefault(key, value)
    return env


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
    listen : path, optional
        Also serve other processes on this Unix socket (:meth:`connect`): one template for
        all the workers of a grading run. The socket is bound before the imports, so workers
        may connect at once.
    wait : bool
        Wait until the imports are done (else :meth:`wait_ready` does, or the first request).
    """

    def __init__(self, preload: tuple[str, ...] = (), *, env: dict | None = None,
                 startup_timeout: float = 120.0, listen: str | os.PathLike | None = None,
                 wait: bool = True):
        self._setup(env, startup_timeout, ready=False,
                    preload=(*KERNEL_STARTUP_IMPORTS,
                             *[m for m in preload if m not in KERNEL_STARTUP_IMPORTS]),
                    listen=None if listen is None else str(listen))
        args = ["--listen", self.listen] if self.listen else []
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "autograder.zygote", *args, *self.preload],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=self.env, cwd="/", start_new_session=True, close_fds=True,
        )
        self._pid = self._proc.pid
        self._rd, self._wr = self._proc.stdout, self._proc.stdin
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Block until the imports are done; raise :class:`ZygoteError` if it failed."""
        if self._ready:
            return
        line = self._readline(self.startup_timeout)
        reply = json.loads(line) if line else {}
        if not reply.get("ready"):
            self.close()
            raise ZygoteError(f"the kernel template process did not start: "
                              f"{reply.get('error') or 'it exited'}")
        self._ready = True
        self.startup_s = time.monotonic() - self._t0
        self.failed_imports = reply.get("failed", [])

    @classmethod
    def connect(cls, path: str | os.PathLike, *, env: dict | None = None,
                timeout: float = 120.0) -> Zygote:
        """A client of a template another process started with ``listen=path``.

        Its kernels die when this client is closed (or its process dies). Raises
        :class:`ZygoteError` when nothing answers at ``path`` within ``timeout`` seconds.
        """
        import socket

        self = cls.__new__(cls)
        self._setup(env, timeout, ready=True)
        self._proc = None
        # The socket exists as soon as the template process runs; a path that does not
        # appear within seconds is not on this machine (a remote Dask worker, say).
        deadline = time.monotonic() + min(timeout, 10.0)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                if time.monotonic() > deadline:
                    sock.close()
                    raise ZygoteError(f"no kernel template process at {path}: {exc}") from None
                time.sleep(0.05)
        self._sock = sock
        self._rd, self._wr = sock.makefile("rb"), sock.makefile("wb")
        try:
            self._pid = self._call({"op": "hello"}, timeout=timeout)["pid"]
        except ZygoteError:
            self.close()
            raise
        return self

    def _setup(self, env: dict | None, timeout: float, *, ready: bool,
               preload: tuple[str, ...] = (), listen: str | None = None) -> None:
        """The state common to the process that starts a template and to its clients."""
        self.preload, self.listen = preload, listen
        self.env = _template_env(env)
        self.startup_timeout = timeout
        self._lock = threading.Lock()
        self._broken = False
        self._ready = ready
        self.failed_imports: list[str] = []
        self._t0 = time.monotonic()
        self.startup_s: float | None = 0.0 if ready else None

    @property
    def pid(self) -> int:
        return self._pid

    def alive(self) -> bool:
        if self._broken:
            return False
        return self._proc.poll() is None if self._proc is not None else True

    def _readline(self, timeout: float) -> str:
        ready, _, _ = select.select([self._rd], [], [], timeout)
        if not ready:
            self._broken = True
            if self._proc is not None:
                self._proc.kill()
            raise ZygoteError(f"the kernel template process did not answer within "
                              f"{timeout:.0f} s")
        line = self._rd.readline().decode()
        if not line:
            self._broken = True
        return line

    def _call(self, request: dict, timeout: float = 30.0) -> dict:
        if self._proc is not None and not self._ready:
            self.wait_ready()
        with self._lock:
            if not self.alive():
                raise ZygoteError("the kernel template process has exited")
            try:
                self._wr.write((json.dumps(request) + "\n").encode())
                self._wr.flush()
            except (BrokenPipeError, OSError) as exc:
                self._broken = True
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
        """Stop the zygote (a client: disconnect); its kernels still running are killed."""
        if self._proc is None:
            for f in (self._rd, self._wr, self._sock):
                with contextlib.suppress(OSError):
                    f.close()
            self._broken = True
            return
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
        if self.listen:
            with contextlib.suppress(OSError):
                os.unlink(self.listen)

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


class _Peer:
    """One client of the zygote: the owner on stdin/stdout, or a worker on the socket."""

    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd = rfd, wfd
        self.buffer = b""
        self.children: set[int] = set()

    def reply(self, obj: dict) -> None:
        data = (json.dumps(obj) + "\n").encode()
        while data:
            data = data[os.write(self.wfd, data):]


def _kill_all(pids) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)


def _serve(argv: list[str]) -> None:
    import importlib
    import selectors
    import socket

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader's Ctrl-C is for the grader
    # `python -m` put the zygote's working directory first on sys.path; a kernel must not
    # import from there (ipykernel_launcher removes it too; the kernel adds its own cwd).
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    listen = None
    if argv[:1] == ["--listen"]:
        # Bound before the imports: workers may connect at once, their first request is
        # answered when the template is ready.
        listen = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listen.bind(argv[1])
        listen.listen(64)
        argv = argv[2:]
    owner = _Peer(0, 1)
    failed = []
    for name in argv:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a kernel reports it again when used
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    if "ipykernel.kernelapp" not in sys.modules:
        owner.reply({"error": "ipykernel cannot be imported: " + "; ".join(failed)})
        return
    # Move everything imported so far out of the garbage collector's sight: a collection
    # in a kernel would otherwise touch every object and copy the zygote's pages into it.
    gc.collect()
    gc.freeze()
    # What the zygote had loaded, for diagnosing what a kernel still imports when it starts.
    sys._drylab_zygote_modules = frozenset(sys.modules)
    owner.reply({"ready": True, "failed": failed})

    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, owner)
    if listen is not None:
        sel.register(listen, selectors.EVENT_READ, None)
    peers = [owner]
    try:
        while True:
            for key, _ in sel.select():
                if key.data is None:  # a worker connects
                    conn, _ = listen.accept()
                    peer = _Peer(conn.fileno(), conn.fileno())
                    peer.sock = conn
                    peers.append(peer)
                    sel.register(conn, selectors.EVENT_READ, peer)
                    continue
                peer = key.data
                data = os.read(peer.rfd, 65536)
                if not data:
                    if peer is owner:  # the grader closed the pipe (or died): stop
                        return
                    # a worker went away: its kernels go with it
                    sel.unregister(key.fileobj)
                    peer.sock.close()
                    peers.remove(peer)
                    _kill_all(peer.children)
                    continue
                peer.buffer += data
                while b"\n" in peer.buffer:
                    line, peer.buffer = peer.buffer.split(b"\n", 1)
                    _handle(json.loads(line), peer, sel)
    finally:
        _kill_all([pid for peer in peers for pid in peer.children])
        if listen is not None:  # also when the grader was killed: leave nothing behind
            path = listen.getsockname()
            with contextlib.suppress(OSError):
                os.unlink(path)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))  # the grader's folder for it, if now empty


def _handle(request: dict, peer: _Peer, sel) -> None:
    op = request.get("op")
    if op == "hello":
        peer.reply({"pid": os.getpid()})
    elif op == "spawn":
        pid = os.fork()
        if pid == 0:
            # nothing of the zygote's connections may stay open in a kernel
            for key in list(sel.get_map().values()):
                if key.fd > 2:
                    with contextlib.suppress(OSError):
                        os.close(key.fd)
            with contextlib.suppress(OSError):
                os.close(sel.fileno())
            _child(request)
        peer.children.add(pid)
        peer.reply({"pid": pid})
    elif op == "reap":
        pid = request["pid"]
        status = None
        if pid in peer.children:
            got, raw = os.waitpid(pid, os.WNOHANG)
            if got:
                peer.children.discard(pid)
                status = os.waitstatus_to_exitcode(raw)
        peer.reply({"status": status})
    else:
        peer.reply({"error": f"unknown request {op!r}"})


if __name__ == "__main__":
    _serve(sys.argv[1:])
