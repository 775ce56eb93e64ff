"""Kernel provisioning: fresh kernels, pre-started and pre-warmed, one per submission.

Every submission runs in its own kernel, which is discarded afterwards. Starting a kernel and
importing pandas / numpy / scikit-learn / matplotlib takes ~1.75 s, most of a small notebook's
run (see NOTES.md), so each grading worker keeps a :class:`KernelPool`: when it takes a kernel
for one submission it immediately launches the next one, which boots and imports while the
current submission executes. The imports are done with ``silent=True, store_history=False``
and bind no names, so a warm kernel's user namespace is as empty as a cold one's.

Forked kernels
--------------
Without the sandbox (``sandbox="none"``), a pool forks its kernels from a warm template process
(:mod:`autograder.zygote`) that imported ipykernel and the course's modules once: a forked
kernel is up in ~0.1 s of CPU instead of ~2 s, which is what lets grading on two cores run at
the speed of the notebooks' own code. A forked kernel is still a new process with an empty
namespace, discarded after one submission. ``fork=False`` starts every kernel as a new
interpreter; if the template process cannot be started the pool does that too, and says so.
``drylab grade`` starts one template for the whole run and the pools connect to it
(``template=``); a pool without one starts its own.

The sandbox hook
----------------
All kernels are started through one function::

    provision_kernel(workdir: Path, *, slot: int, sandbox: str, limits: Limits)
        -> tuple[AsyncKernelManager-like, cleanup: Callable[[], None]]

- ``workdir``: the kernel's working directory, a fresh empty folder in the grader's scratch
  space; the submission's files are copied into it *after* the kernel started (the pool
  starts kernels before it knows which submission comes next). Nothing else of the course
  (source notebooks, reference cache, gradebook, other submissions) is below it.
- ``slot``: the worker slot number (0..workers-1), e.g. to pick an unprivileged uid.
- ``sandbox``: ``"none"`` (handled here) or ``"bwrap"`` (handled by
  ``autograder.sandbox.provision_kernel(workdir, slot=..., limits=...)``, imported lazily and
  expected to return the same pair). ``"auto"`` is resolved once per batch by
  :func:`resolve_sandbox` before any kernel starts.
- ``limits``: :class:`Limits` (memory, processes, timeouts, output caps).
- Returns a kernel manager whose kernel has been *launched* (``start_kernel`` returned; it may
  still be booting) and which nbclient can drive (``client()``, ``is_alive()``,
  ``interrupt_kernel()``, ``shutdown_kernel()``), plus ``cleanup()``, which must kill the
  kernel and everything it started and release any resources (idempotent).

``autograder.sandbox`` may also define ``unavailable_reason() -> str | None`` (``None`` when
bwrap can be used here); :func:`resolve_sandbox` calls it for ``auto`` and ``bwrap``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: Modules imported in every pooled kernel before it is handed out.
WARM_IMPORTS = ("numpy", "pandas", "sklearn", "matplotlib", "matplotlib.pyplot",
                "synthetic_data", "autograder.checks")

SANDBOX_MODES = ("auto", "bwrap", "none")

#: What a warm module's first use imports in a kernel (pandas: its HTML / string repr and the
#: Parquet writer of the answer capture); the kernel template process imports them too.
COMPANIONS = {
    "pandas": ("pandas.io.formats.html", "pandas.io.formats.string", "pandas.io.parquet",
               "pyarrow.parquet", "pyarrow.pandas_compat"),
}


def template_imports(warm: tuple[str, ...]) -> tuple[str, ...]:
    """The modules a kernel template process imports for kernels warmed with ``warm``."""
    out = list(warm)
    for name in warm:
        out += [m for m in COMPANIONS.get(name, ()) if m not in out]
    return tuple(out)

_IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)


def warm_imports_for(sources: list[str], candidates: tuple[str, ...] = WARM_IMPORTS
                     ) -> tuple[str, ...]:
    """The candidates that some notebook code actually imports (by top-level package).

    Importing scikit-learn and matplotlib costs ~0.7 s of CPU per kernel; a course whose
    notebooks never use them should not pay it for every submission.
    """
    used = set()
    for src in sources:
        used.update(_IMPORT.findall(src))
    return tuple(name for name in candidates if name.split(".")[0] in used)


@dataclass(frozen=True)
class Limits:
    """Resource limits for one submission.

    Attributes
    ----------
    cell_timeout : float
        Seconds one cell may run before it is interrupted and the submission stopped.
    timeout : float
        Wall-clock seconds for the whole submission (the watchdog kills the kernel).
    startup_timeout : float
        Seconds a kernel may take to start and finish its warm-up imports.
    max_output_cell : int
        Bytes of output kept per cell; the rest is dropped with a note.
    max_output_total : int
        Bytes of output kept per notebook.
    memory_bytes : int
        Memory limit per submission (enforced by the sandbox, not by ``sandbox="none"``).
    max_processes : int
        Process limit per submission (enforced by the sandbox).
    """

    cell_timeout: float = 60.0
    timeout: float = 600.0
    startup_timeout: float = 60.0
    max_output_cell: int = 1_000_000
    max_output_total: int = 5_000_000
    memory_bytes: int = 2 * 1024**3
    max_processes: int = 128


class SandboxUnavailable(RuntimeError):
    """``--sandbox bwrap`` was asked for but this machine cannot sandbox."""


def resolve_sandbox(mode: str) -> tuple[str, list[str]]:
    """Decide once per batch which sandbox to use.

    Returns
    -------
    (effective_mode, warnings)
        ``effective_mode`` is ``"bwrap"`` or ``"none"``; ``warnings`` holds the loud message
        recorded with every result when ``auto`` had to fall back to no sandbox.

    Raises
    ------
    ValueError
        ``mode`` is not one of :data:`SANDBOX_MODES`.
    SandboxUnavailable
        ``mode == "bwrap"`` and sandboxing is not possible (the reason is in the message).
    """
    if mode not in SANDBOX_MODES:
        raise ValueError(f"sandbox must be one of {SANDBOX_MODES}, got {mode!r}")
    if mode == "none":
        return "none", []
    try:
        from autograder import sandbox
    except ImportError as exc:
        reason = f"autograder.sandbox is not available ({exc})"
    else:
        check = getattr(sandbox, "unavailable_reason", None)
        reason = check() if check else None
    if reason is None:
        return "bwrap", []
    if mode == "bwrap":
        raise SandboxUnavailable(f"--sandbox bwrap cannot be used: {reason}")
    message = (
        f"UNSANDBOXED: --sandbox auto fell back to no sandbox ({reason}); residents' code ran "
        "with the grader's permissions"
    )
    warnings.warn(message, stacklevel=2)
    return "none", [message]


def provision_kernel(workdir: Path, *, slot: int, sandbox: str, limits: Limits, zygote=None):
    """Launch one kernel in ``workdir``; see the module docstring for the contract.

    ``zygote`` (an :class:`autograder.zygote.Zygote`, only with ``sandbox="none"``) forks the
    kernel from a warm template process instead of starting a new interpreter.
    """
    if sandbox == "none":
        return _provision_unsandboxed(workdir, limits=limits, zygote=zygote)
    if sandbox == "bwrap":
        from autograder import sandbox as _sandbox

        return _sandbox.provision_kernel(workdir, slot=slot, limits=limits)
    raise ValueError(f"provision_kernel needs sandbox 'none' or 'bwrap' (resolve 'auto' first), "
                     f"got {sandbox!r}")


def kernel_env() -> dict:
    """The environment of an unsandboxed grading kernel (started or forked)."""
    from autograder.zygote import SINGLE_THREAD_ENV

    env = {k: v for k, v in os.environ.items() if not k.startswith("JPY_")}
    # Keep the debugger's start-up warning out of the kernel's stderr.
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    # One BLAS / OpenMP thread, as in the sandbox: the grader runs a kernel per core, and
    # results must not depend on how many cores the grading machine has.
    env.update(SINGLE_THREAD_ENV)
    return env


def _provision_unsandboxed(workdir: Path, *, limits: Limits, zygote=None):
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    if zygote is not None:
        from autograder.zygote import forked_kernel_manager

        km = forked_kernel_manager(zygote)
    else:
        km = AsyncKernelManager(kernel_name="python3")
    env = kernel_env()
    run_sync(km.start_kernel)(
        cwd=str(workdir),
        env=env,
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
        # The kernel's own stdout/stderr (start-up warnings, a resident's os.write(2, ...))
        # are not cell output; keep them out of the grader's terminal.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def cleanup() -> None:
        kill_kernel(km)
        try:
            run_sync(km.cleanup_resources)()
        except Exception:  # noqa: BLE001 - best effort after a kill
            pass

    return km, cleanup


def kernel_pid(km) -> int | None:
    """The kernel's process id, if the manager knows it."""
    provisioner = getattr(km, "provisioner", None)
    pid = getattr(provisioner, "pid", None)
    if pid is None:
        proc = getattr(provisioner, "process", None)
        pid = getattr(proc, "pid", None)
    return pid


def kill_kernel(km) -> None:
    """SIGKILL the kernel's whole process group (jupyter_client starts it in its own session,
    so a resident's forked children die with it)."""
    pid = kernel_pid(km)
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    provisioner = getattr(km, "provisioner", None)
    proc = getattr(provisioner, "process", None)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 - a zombie we cannot reap is no reason to fail
            pass


class WarmKernel:
    """A started kernel, its working directory and how to get rid of both."""

    def __init__(self, km, workdir: Path, cleanup: Callable[[], None], started: float):
        self.km = km
        self.workdir = workdir
        self._cleanup = cleanup
        self.started = started
        self._warm_client = None
        self._warm_msg_id = None

    def send_warmup(self, modules: tuple[str, ...]) -> None:
        """Queue the warm-up imports; the kernel runs them as soon as it is up."""
        # Even with nothing to import, an execute round-trip is how readiness is awaited
        # (a bare client's wait_for_ready reads a heartbeat that has not started yet).
        kc = _blocking_client(self.km, shell_only=True)
        code = (
            "def __drylab_warm():\n"
            "    import importlib\n"
            f"    for name in {list(modules)!r}:\n"
            "        try:\n"
            "            importlib.import_module(name)\n"
            "        except Exception:\n"
            "            pass\n"
            "__drylab_warm()\n"
            "del __drylab_warm\n"
        )
        self._warm_client = kc
        self._warm_msg_id = kc.execute(code, silent=True, store_history=False)

    def wait_ready(self, timeout: float) -> None:
        """Block until the warm-up finished (or the kernel answers, without warm-up).

        Raises
        ------
        TimeoutError
            The kernel did not start and warm up within ``timeout`` seconds.
        """
        from queue import Empty

        deadline = time.monotonic() + timeout
        kc = self._warm_client
        if kc is None:
            self.send_warmup(())
            kc = self._warm_client
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"kernel not ready after {timeout:.0f} s")
                try:
                    msg = kc.get_shell_msg(timeout=min(left, 1.0))
                except Empty:
                    if not _alive(self.km):
                        raise TimeoutError("kernel died during start-up") from None
                    continue
                if msg["parent_header"].get("msg_id") == self._warm_msg_id:
                    return
        finally:
            if kc is not None:
                kc.stop_channels()
            self._warm_client = None

    def discard(self) -> None:
        """Kill the kernel and delete its working directory."""
        if self._warm_client is not None:
            self._warm_client.stop_channels()
            self._warm_client = None
        self._cleanup()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _blocking_client(km, *, shell_only: bool = False):
    # The manager's own blocking client shares its session key; a client built from the
    # connection dict alone signs with a different key and the kernel drops its messages.
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient(session=km.session)
    kc.load_connection_info(km.get_connection_info())
    if shell_only:  # the warm-up only needs its execute reply: no heartbeat thread, no IOPub
        kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
    else:
        kc.start_channels()
    return kc


def _alive(km) -> bool:
    from jupyter_core.utils import run_sync

    try:
        return bool(run_sync(km.is_alive)())
    except Exception:  # noqa: BLE001
        return False


class KernelPool:
    """Pre-started kernels for one grading worker (one slot).

    Parameters
    ----------
    scratch : path
        Where kernels' working directories are made (one fresh folder per kernel).
    slot : int
        The worker slot, passed to :func:`provision_kernel`.
    sandbox : str
        ``"none"`` or ``"bwrap"`` (already resolved).
    limits : Limits
    size : int
        Kernels kept booting ahead of need (1 is enough: the next one boots while the
        current submission runs; 0 starts each kernel on demand).
    warm_imports : tuple of str
        Modules imported in each kernel before it is handed out.
    fork : bool
        Fork unsandboxed kernels from a warm template process (see "Forked kernels").
    template : path, optional
        The socket of a template process shared by the grading run
        (:meth:`autograder.zygote.Zygote.connect`); without one (or if it does not answer)
        the pool starts its own.
    """

    def __init__(self, scratch: str | os.PathLike, *, slot: int = 0, sandbox: str = "none",
                 limits: Limits | None = None, size: int = 1,
                 warm_imports: tuple[str, ...] = WARM_IMPORTS, fork: bool = True,
                 template: str | None = None):
        self.scratch = Path(scratch)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.slot = slot
        self.sandbox = sandbox
        self.limits = limits or Limits()
        self.size = size
        self.warm_imports = warm_imports
        self.fork = fork and sandbox == "none"
        self.template = template
        self.warnings: list[str] = []
        self._zygote = None
        self._ready: list[WarmKernel] = []

    def _template(self):
        """The warm template process, started on first use (and again if it died)."""
        if not self.fork:
            return None
        if self._zygote is not None and not self._zygote.alive():
            self._zygote.close()
            self._zygote = None
        from autograder.zygote import Zygote, ZygoteError

        timeout = max(60.0, self.limits.startup_timeout)
        if self._zygote is None and self.template:
            try:
                self._zygote = Zygote.connect(self.template, env=kernel_env(), timeout=timeout)
            except (ZygoteError, OSError):
                self.template = None  # not reachable from here (another machine): our own
        if self._zygote is None:
            try:
                self._zygote = Zygote(template_imports(self.warm_imports), env=kernel_env(),
                                      startup_timeout=timeout)
            except (ZygoteError, OSError) as exc:
                message = (f"kernels are started one by one (slower): the kernel template "
                           f"process failed: {exc}")
                warnings.warn(message, stacklevel=2)
                self.warnings.append(message)
                self.fork = False
        return self._zygote

    def _launch(self) -> WarmKernel:
        workdir = Path(tempfile.mkdtemp(prefix=f"slot{self.slot}-", dir=self.scratch))
        zygote = self._template()
        km, cleanup = provision_kernel(workdir, slot=self.slot, sandbox=self.sandbox,
                                       limits=self.limits, zygote=zygote)
        kernel = WarmKernel(km, workdir, cleanup, time.monotonic())
        kernel.send_warmup(self.warm_imports)
        return kernel

    def _refill(self) -> None:
        while len(self._ready) < self.size:
            self._ready.append(self._launch())

    def take(self, attempts: int = 2) -> WarmKernel:
        """A warm kernel for one submission; the caller must ``discard()`` it afterwards.

        The next kernel is launched before this one is awaited, so it boots meanwhile. A
        kernel that does not come up (a start-up timeout on an overloaded machine, a template
        process that died) is discarded and another one tried, ``attempts`` times in all;
        the last failure is raised.
        """
        failure: Exception | None = None
        for _ in range(max(1, attempts)):
            try:
                kernel = self._ready.pop(0) if self._ready else self._launch()
            except Exception as exc:  # noqa: BLE001 - tried again, then raised
                failure = exc
                continue
            try:
                self._refill()
            except Exception:  # noqa: BLE001 - the next take() launches on demand and says why
                pass
            try:
                kernel.wait_ready(self.limits.startup_timeout)
            except Exception as exc:  # noqa: BLE001
                kernel.discard()
                failure = exc
                continue
            return kernel
        raise failure

    def close(self) -> None:
        """Discard the kernels still waiting, and stop the template process."""
        while self._ready:
            self._ready.pop().discard()
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None
