"""Confine one submission's kernel: bubblewrap namespaces, a leased uid, cgroup and rlimits.

A resident's notebook is untrusted code. Each kernel runs as::

    python sandbox.py --exec SPEC        (root: joins the kernel's cgroups, sets rlimits,
                                          stages the bind sources, drops to the leased uid)
      -> bwrap --unshare-all ...         (unprivileged: new user, mount, pid, net, ipc, uts,
                                          cgroup namespaces; a read-only empty root with only
                                          the system, the Python environment and this
                                          submission's scratch directory bound in)
        -> python -m ipykernel_launcher -f CONNECTION_FILE   (ipc transport)

Why a small launcher instead of ``prlimit -- setpriv -- bwrap``: bwrap resolves its bind
sources as the unprivileged uid, so anything below a directory that uid cannot traverse (a
pyenv Python under ``/root``, a course under an instructor's 0700 home, a pytest tmp dir)
cannot be bound. The launcher, still root, binds every source on a staging path inside a
private mount namespace of its own and hands bwrap those paths; it joins the cgroups before
the uid drop (so no process of the kernel is ever outside them) and ignores SIGINT for bwrap
itself (jupyter interrupts a kernel by signalling its process group; bwrap would die of that
SIGINT and take the kernel with it; ipykernel installs its own handler while a cell runs).

Each kernel leases its own uid rather than one per worker slot: a pool keeps the next kernel
booting while the current one runs, and RLIMIT_NPROC counts per uid.

After the notebook, :meth:`Sandbox.seal` kills everything of the kernel and removes links from
its workdir, so the grader can read the answer files safely.

What is isolated and what is not is written up in ``docs/security.md``.

This file is also the launcher: run as a script it only imports the standard library.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import pwd
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "ResourceLimits",
    "Probe",
    "Sandbox",
    "SandboxUnavailable",
    "probe",
    "provision_kernel",
    "read_output",
    "sandboxed_kernel_manager",
    "unavailable_reason",
]

#: Packages of this project a resident's kernel imports (the checks, the cohort generator).
#: With an editable install they live outside the environment and are bound in one by one.
KERNEL_PACKAGES = ("autograder", "synthetic_data")

#: The parts of /etc a Python kernel needs; the rest (service configuration, credentials of
#: other software on a hospital server) stays out of view. passwd and group are synthetic.
ETC_ENTRIES = (
    "alternatives",
    "ca-certificates",
    "fonts",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "protocols",
    "services",
    "ssl",
    "timezone",
)

#: Leased uids: one per live sandbox, unique across processes through a lock file each, so a
#: pool of pre-started kernels and several worker processes never share one. RLIMIT_NPROC
#: counts per uid, so a fork bomb in one kernel cannot starve another.
UID_BASE = 62000
UID_COUNT = 1000
#: The probe's trial run uses the last uid of the range, which is never leased (leasing kills
#: leftovers of the leased uid, which must not hit another process's probe).
PROBE_UID = UID_BASE + UID_COUNT - 1

_BIND_SYSTEM = ("/usr",)
_MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


class SandboxUnavailable(RuntimeError):
    """bwrap sandboxing cannot be used on this machine; the message says why."""


@dataclass(frozen=True)
class ResourceLimits:
    """Resource limits of one sandboxed kernel (time limits and output caps are the
    executor's: :class:`autograder.kernels.Limits`).

    Parameters
    ----------
    memory_mb : int
        Memory of the whole kernel (all its processes, its private /tmp included), in MiB.
        Enforced by the memory cgroup; where no cgroup can be made, by RLIMIT_AS per process
        at ``as_factor`` times this (virtual memory is larger than resident memory).
    pids : int
        Processes and threads of the kernel (pids cgroup, and RLIMIT_NPROC on the leased uid).
    open_files : int
        RLIMIT_NOFILE per process.
    file_size_mb : int
        Largest file a process may write (RLIMIT_FSIZE), in MiB.
    tmp_mb : int
        Size of the private tmpfs on /tmp, in MiB.
    cpu_seconds : int
        RLIMIT_CPU per process: a backstop behind the grader's wall-clock watchdog.
    as_factor : float
        RLIMIT_AS = ``as_factor * memory_mb``, used only without a memory cgroup.
    """

    memory_mb: int = 2048
    pids: int = 256
    open_files: int = 1024
    file_size_mb: int = 512
    tmp_mb: int = 512
    cpu_seconds: int = 1800
    as_factor: float = 3.0


@dataclass(frozen=True)
class Probe:
    """Whether bwrap sandboxing works here, why not, and which cgroup controllers it gets.

    ``cgroups`` maps ``"memory"`` and ``"pids"`` to ``"v2"``, ``"v1"`` or ``None`` (then rlimits
    alone bound the kernel).
    """

    usable: bool
    reason: str
    bwrap: str | None = None
    cgroups: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.usable


# --------------------------------------------------------------------------------------------
# cgroups


def _own_cgroups() -> dict[str, str]:
    """Controller (or ``""`` for the v2 hierarchy) -> this process's cgroup path."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    return out


def _cgroup_mounts() -> dict[str, str]:
    """Controller (``""`` for cgroup2) -> mount point, from /proc/self/mounts."""
    mounts: dict[str, str] = {}
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4:
                continue
            mnt, fstype, opts = parts[1], parts[2], parts[3].split(",")
            if fstype == "cgroup2":
                mounts.setdefault("", mnt)
            elif fstype == "cgroup":
                for c in ("memory", "pids"):
                    if c in opts:
                        mounts.setdefault(c, mnt)
    return mounts


def _cgroup_parents() -> dict[str, tuple[str, str]]:
    """For memory and pids: (version, directory under which this process may make cgroups).

    cgroup v2 is preferred where the controller is enabled for our subtree; v1 otherwise (the
    machine this was written on has memory and pids on v1 and only hugetlb on v2). The parent
    is our own cgroup, so the kernel stays inside whatever limits we are under.
    """
    try:
        own, mounts = _own_cgroups(), _cgroup_mounts()
    except OSError:
        return {}
    found: dict[str, tuple[str, str]] = {}
    if "" in mounts and "" in own:
        base = os.path.join(mounts[""], own[""].lstrip("/"))
        try:
            with open(os.path.join(base, "cgroup.controllers")) as f:
                available = f.read().split()
            with open(os.path.join(base, "cgroup.subtree_control")) as f:
                enabled = f.read().split()
        except OSError:
            available, enabled = [], []
        for c in ("memory", "pids"):
            if c in available and (c in enabled or _enable_v2(base, c)):
                found[c] = ("v2", base)
    for c in ("memory", "pids"):
        if c not in found and c in mounts and c in own:
            found[c] = ("v1", os.path.join(mounts[c], own[c].lstrip("/")))
    return {c: v for c, v in found.items() if os.access(v[1], os.W_OK)}


def _enable_v2(base: str, controller: str) -> bool:
    """Enable a v2 controller for children of ``base``; fails (EBUSY) if ``base`` has processes."""
    try:
        with open(os.path.join(base, "cgroup.subtree_control"), "w") as f:
            f.write(f"+{controller}")
        return True
    except OSError:
        return False


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read_counter(path: str, key: str) -> int:
    """``key N`` line of a cgroup events file, 0 when absent."""
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == key:
                    return int(v)
    except (OSError, ValueError):
        pass
    return 0


# --------------------------------------------------------------------------------------------
# probe


@functools.lru_cache(maxsize=1)
def _probe_cached() -> Probe:
    if not sys.platform.startswith("linux"):
        return Probe(False, f"bwrap sandboxing needs Linux, this is {sys.platform}")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Probe(
            False, "bwrap (bubblewrap) is not installed: run scripts/install-system-deps.sh"
        )
    if os.geteuid() != 0:
        return Probe(
            False,
            "the grader is not root: it needs root to run each kernel under its own "
            "unprivileged uid (RLIMIT_NPROC is per uid)",
            bwrap,
        )
    cgroups = {c: v for c, (v, _) in _cgroup_parents().items()}
    base = _make_base()
    # A real trial: the same namespaces, as an unprivileged uid. This is what fails inside
    # Docker's default seccomp profile (it blocks the unshare/clone flags bwrap needs) or
    # where unprivileged user namespaces are switched off.
    trial = [
        sys.executable, "-I", "-S", __file__, "--exec",
        json.dumps({
            "uid": PROBE_UID, "gid": PROBE_UID,
            "bwrap": bwrap, "rlimits": {}, "cgroup_procs": [],
            "binds": [["/usr", "/usr", True]], "stage": os.path.join(base, "stage"),
            "pre": ["--unshare-all", "--die-with-parent", "--clearenv"],
            "post": ["--proc", "/proc", *_merged_usr_links()],
            "cmd": ["/usr/bin/true"],
        }),
    ]  # fmt: skip
    try:
        r = subprocess.run(trial, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Probe(False, f"bwrap trial run failed: {e}", bwrap, cgroups)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        return Probe(
            False,
            f"the sandbox trial run failed ({msg}); bwrap cannot work inside Docker's default "
            "seccomp profile or where user namespaces are off: see docs/security.md",
            bwrap,
            cgroups,
        )
    if not cgroups:
        reason = "ok (no writable cgroup: memory bounded by RLIMIT_AS, processes by RLIMIT_NPROC)"
    else:
        reason = "ok (" + ", ".join(f"{c}: cgroup {v}" for c, v in sorted(cgroups.items())) + ")"
    return Probe(True, reason, bwrap, cgroups)


def probe(*, refresh: bool = False) -> Probe:
    """Whether bwrap sandboxing is usable here, and why not.

    Parameters
    ----------
    refresh : bool
        Probe again instead of returning the answer cached for this process.

    Returns
    -------
    Probe
        Truthy when usable; ``reason`` says why not (or which limits apply).
    """
    if refresh:
        _probe_cached.cache_clear()
    return _probe_cached()


def _make_base() -> str:
    """A fresh root-owned directory for one sandbox's run dir, /etc files and bind staging.

    Mode 0711 below /tmp: the kernel's uid may pass through it (to its run dir and the staged
    binds) but not list it.
    """
    base = tempfile.mkdtemp(prefix="drylab-sbx-", dir="/tmp" if os.path.isdir("/tmp") else None)
    os.chmod(base, 0o711)
    os.mkdir(os.path.join(base, "stage"), 0o755)
    return base


def _merged_usr_links() -> list[str]:
    """``--symlink usr/bin /bin`` and friends where the host has merged /usr, binds otherwise."""
    args: list[str] = []
    for name in _MERGED_USR:
        p = "/" + name
        if os.path.islink(p):
            args += ["--symlink", os.readlink(p), p]
    return args


# --------------------------------------------------------------------------------------------
# uid leases


def _lease_dir() -> str:
    for d in ("/run/drylab-sandbox", os.path.join(tempfile.gettempdir(), "drylab-sandbox")):
        with contextlib.suppress(OSError):
            os.makedirs(d, mode=0o700, exist_ok=True)
            if os.access(d, os.W_OK):
                return d
    raise SandboxUnavailable("no writable directory for sandbox uid leases")


def _lease_uid() -> tuple[int, int]:
    """Lock and return (uid, lock fd) for a uid no live sandbox and no account uses."""
    d = _lease_dir()
    n = UID_COUNT - 1  # without PROBE_UID
    start = os.getpid() % n  # spread workers out so they rarely contend
    for i in range(n):
        uid = UID_BASE + (start + i) % n
        try:
            pwd.getpwuid(uid)
            continue  # a real account: never run residents' code as it
        except KeyError:
            pass
        fd = os.open(os.path.join(d, f"{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _kill_uid(uid)  # leftovers of a crashed grader must not share the lease
        return uid, fd
    raise SandboxUnavailable(f"all {UID_COUNT} sandbox uids from {UID_BASE} are in use")


def _kill_uid(uid: int) -> int:
    """SIGKILL every live process whose real uid is ``uid``; return how many were found.

    Zombies are skipped: they hold nothing and only their parent (often the grader's kernel
    manager, which reaps its own child) can remove them.
    """
    n = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            if int(status["Uid"].split()[0]) != uid or status["State"].split()[0] in "ZX":
                continue
            n += 1
            os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            continue
    return n


# --------------------------------------------------------------------------------------------
# the sandbox


def _package_dirs(names) -> list[str]:
    """Directories of the given importable packages (editable installs point outside the env)."""
    import importlib.util

    dirs = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        for loc in spec.submodule_search_locations or [os.path.dirname(spec.origin or "")]:
            if loc and os.path.isdir(loc):
                dirs.append(os.path.realpath(loc))
    return dirs


_MPLCONFIGDIR = "/tmp/.config/matplotlib"


def _matplotlib_font_caches() -> list[str]:
    """The grader's own matplotlib font lists (found without importing matplotlib)."""
    d = os.environ.get("MPLCONFIGDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib"
    )
    try:
        return sorted(
            e.path for e in os.scandir(d) if e.name.startswith("fontlist-") and e.is_file()
        )
    except OSError:
        return []


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class Sandbox:
    """The confinement of one kernel: a leased uid, its cgroups, the bwrap command line.

    Make one per kernel, before the kernel starts (a pooled kernel gets its sandbox and its
    empty scratch directory when it is started, the submission's files are copied in later),
    and :meth:`close` it after the kernel is gone.

    Parameters
    ----------
    workdir : path
        The submission's scratch directory; the only host directory the kernel can write. It is
        bound at the same path and made the kernel's working directory.
    limits : ResourceLimits, optional
    python : path, optional
        The kernel's interpreter (default: this one); its environment is bound read-only.
    packages : sequence of str
        Importable packages bound read-only when they live outside the environment.
    hide : sequence of path
        Paths that must never be visible (course dir, gradebook, reference cache). If one lies
        under a read-only bind it is covered by an empty tmpfs; the kernel's view never
        includes them otherwise, and a bind of one of them is refused.
    env : dict, optional
        Extra environment of the kernel (after ``--clearenv``).

    Raises
    ------
    SandboxUnavailable
        If :func:`probe` says bwrap cannot be used here.
    """

    def __init__(
        self,
        workdir,
        *,
        limits: ResourceLimits | None = None,
        python: str | None = None,
        packages=KERNEL_PACKAGES,
        hide=(),
        env: dict | None = None,
    ):
        p = probe()
        if not p.usable:
            raise SandboxUnavailable(p.reason)
        self.probe = p
        self.limits = limits or ResourceLimits()
        self.workdir = os.path.realpath(os.fspath(workdir))
        if not os.path.isdir(self.workdir):
            raise ValueError(f"sandbox workdir {self.workdir!r} is not a directory")
        self.python = python or sys.executable
        self.hide = [os.path.realpath(os.fspath(h)) for h in hide]
        for h in self.hide:
            if _within(self.workdir, h) and self.workdir != h:
                continue  # a scratch dir inside the course dir: only the scratch dir is bound
            if _within(h, self.workdir):
                raise ValueError(f"hidden path {h!r} lies inside the sandbox workdir")
        self.packages = tuple(packages)
        self._env = dict(env or {})
        self._closed = False
        self.uid, self._lease_fd = _lease_uid()
        self.gid = self.uid
        self._cgroups: dict[str, tuple[str, str]] = {}
        try:
            self._base = _make_base()
            self.rundir = os.path.join(self._base, "run")
            os.mkdir(self.rundir, 0o700)
            os.chown(self.rundir, self.uid, self.gid)
            os.chown(self.workdir, self.uid, self.gid)
            self._write_etc()
            self._make_cgroups()
        except BaseException:
            self.close()
            raise

    # -- set-up --------------------------------------------------------------------------

    @property
    def log_file(self) -> str:
        """Where :func:`provision_kernel` sends the kernel's stderr (bwrap's errors too)."""
        return os.path.join(self._base, "kernel.log")

    @property
    def connection_file(self) -> str:
        """Where the kernel manager must write the connection file (ipc sockets go beside it)."""
        return os.path.join(self.rundir, "kernel.json")

    def _write_etc(self) -> None:
        with open(os.path.join(self._base, "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/usr/sbin/nologin\n")
            f.write(f"resident:x:{self.uid}:{self.gid}:resident:/tmp:/usr/sbin/nologin\n")
        with open(os.path.join(self._base, "group"), "w") as f:
            f.write(f"root:x:0:\nresident:x:{self.gid}:\n")

    def _make_cgroups(self) -> None:
        name = f"drylab-{os.getpid()}-{self.uid}"
        parents = _cgroup_parents()
        mem = self.limits.memory_mb * 1024 * 1024
        for ctrl, (version, parent) in parents.items():
            path = os.path.join(parent, name)
            try:
                os.mkdir(path)
            except FileExistsError:
                self._empty_cgroup(path)
            except OSError:
                continue
            self._cgroups[ctrl] = (version, path)
            if ctrl == "memory" and version == "v1":
                _write(os.path.join(path, "memory.limit_in_bytes"), str(mem))
                with contextlib.suppress(OSError):  # only with swap accounting
                    _write(os.path.join(path, "memory.memsw.limit_in_bytes"), str(mem))
            elif ctrl == "memory":
                _write(os.path.join(path, "memory.max"), str(mem))
                with contextlib.suppress(OSError):
                    _write(os.path.join(path, "memory.swap.max"), "0")
            elif ctrl == "pids":
                _write(os.path.join(path, "pids.max"), str(self.limits.pids))

    def _rlimits(self) -> dict[str, list[int]]:
        lim = self.limits
        mb = 1024 * 1024
        r = {
            # a little above pids.max, so a fork bomb meets the cgroup first and its counter
            # tells explain_death() what happened
            "RLIMIT_NPROC": [lim.pids + 16] * 2,
            "RLIMIT_NOFILE": [lim.open_files, lim.open_files],
            "RLIMIT_FSIZE": [lim.file_size_mb * mb] * 2,
            "RLIMIT_CORE": [0, 0],
            "RLIMIT_CPU": [lim.cpu_seconds, lim.cpu_seconds + 5],
        }
        if "memory" not in self._cgroups:
            r["RLIMIT_AS"] = [int(lim.as_factor * lim.memory_mb * mb)] * 2
        return r

    def _binds(self) -> list[list]:
        """[source, dest, read_only] in mount order."""
        binds: list[list] = []
        ro_roots: list[str] = []

        def ro(path: str) -> None:
            real = os.path.realpath(path)
            if not os.path.exists(real) or any(_within(real, r) for r in ro_roots):
                return
            for h in self.hide:
                if _within(real, h):
                    raise ValueError(f"refusing to bind {real!r}: it is inside hidden {h!r}")
            ro_roots.append(real)
            binds.append([real, real, True])

        for p in _BIND_SYSTEM:
            ro(p)
        for name in _MERGED_USR:
            if not os.path.islink("/" + name):
                ro("/" + name)
        if os.path.realpath(self.python) == os.path.realpath(sys.executable):
            ro(sys.prefix)
            ro(sys.base_prefix)
        for py in (self.python, os.path.realpath(self.python)):
            ro(os.path.dirname(os.path.dirname(os.path.abspath(py))))
        for d in _package_dirs(self.packages):
            ro(d)
        for e in ETC_ENTRIES:
            src = os.path.join("/etc", e)
            if os.path.exists(src):
                binds.append([os.path.realpath(src), src, True])
        for cache in _matplotlib_font_caches():
            # the font list is rebuilt (~0.3 s) in every fresh kernel unless one is given
            binds.append([cache, f"{_MPLCONFIGDIR}/{os.path.basename(cache)}", True])
        binds.append([os.path.join(self._base, "passwd"), "/etc/passwd", True])
        binds.append([os.path.join(self._base, "group"), "/etc/group", True])
        self._masks = [h for h in self.hide if any(_within(h, r) for r in ro_roots)]
        binds.append([self.rundir, self.rundir, False])
        binds.append([self.workdir, self.workdir, False])
        return binds

    def command(self, kernel_argv: list[str]) -> list[str]:
        """The launch command that runs ``kernel_argv`` inside this sandbox.

        ``kernel_argv`` is a kernel spec's argv with the connection file filled in, e.g.
        ``[python, "-m", "ipykernel_launcher", "-f", sandbox.connection_file]``; a leading
        ``python`` / ``python3`` is replaced by the sandbox's interpreter.
        """
        argv = list(kernel_argv)
        if argv and os.path.basename(argv[0]) in ("python", "python3", sys.executable):
            argv[0] = self.python
        binds = self._binds()
        # the private /tmp comes before the binds (some sources may be below /tmp)
        pre = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent"]
        pre += ["--clearenv"]
        pre += ["--hostname", "sandbox"]
        pre += ["--size", str(self.limits.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"]
        post = ["--proc", "/proc", "--dev", "/dev", *_merged_usr_links(), "--chdir", self.workdir]
        # the sandbox's own root (where bwrap made /etc, /root, ... for the binds) read-only too
        post += ["--remount-ro", "/"]
        env = {
            "PATH": f"{os.path.dirname(self.python)}:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "USER": "resident",
            "LOGNAME": "resident",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TMPDIR": "/tmp",
            "MPLCONFIGDIR": _MPLCONFIGDIR,
            # no banner, no parent poller: pid 1 is the sandbox's own init
            "JPY_PARENT_PID": "1",
            "IPYTHONDIR": "/tmp/.ipython",
            "JUPYTER_RUNTIME_DIR": self.rundir,
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            # one core per kernel: the grader runs as many kernels as it has cores, and BLAS
            # threads would also count against the process limit
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            **self._env,
        }
        for k, v in env.items():
            post += ["--setenv", k, str(v)]
        spec = {
            "uid": self.uid,
            "gid": self.gid,
            "bwrap": self.probe.bwrap,
            "rlimits": self._rlimits(),
            "cgroup_procs": [os.path.join(p, "cgroup.procs") for _, p in self._cgroups.values()],
            "binds": binds,
            "masks": self._masks,
            "chown": [self.connection_file],
            "stage": os.path.join(self._base, "stage"),
            "pre": pre,
            "post": post,
            "cmd": argv,
        }
        return [self.python, "-I", "-S", os.path.abspath(__file__), "--exec", json.dumps(spec)]

    def give(self, path) -> None:
        """Hand ``path`` (a file or tree under the workdir) to the kernel's uid, so it may write."""
        p = os.path.realpath(os.fspath(path))
        if not _within(p, self.workdir):
            raise ValueError(f"{p!r} is not inside the sandbox workdir {self.workdir!r}")
        os.chown(p, self.uid, self.gid, follow_symlinks=False)
        if os.path.isdir(p) and not os.path.islink(p):
            for root, dirs, files in os.walk(p):
                for n in dirs + files:
                    os.chown(os.path.join(root, n), self.uid, self.gid, follow_symlinks=False)

    # -- after the run ---------------------------------------------------------------------

    def kill_all(self) -> None:
        """SIGKILL every process of the kernel: its cgroup, or without one, its uid."""
        for _, path in self._cgroups.values():
            self._empty_cgroup(path)
        if self._cgroups:
            # an unprivileged process cannot leave its cgroup: emptying it got them all,
            # and scanning /proc for the uid (tens of ms on a busy host) is not needed
            return
        for _ in range(20):
            if not _kill_uid(self.uid):
                break
            time.sleep(0.02)

    def seal(self) -> list[str]:
        """Stop the kernel for good and make its workdir safe to read from outside.

        Kills every process of the sandbox, so nothing can change the workdir any more, then
        removes whatever in it is not a plain file or directory (symlinks, FIFOs, sockets,
        device nodes): the grader, with more rights than the kernel, reads the answer files
        by path afterwards. Returns the removed paths, relative to the workdir.
        """
        self.kill_all()
        removed = []
        for root, dirs, files in os.walk(self.workdir, followlinks=False):
            for name in dirs + files:
                path = os.path.join(root, name)
                mode = os.lstat(path).st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    os.unlink(path)
                    removed.append(os.path.relpath(path, self.workdir))
        return removed

    def limit_events(self) -> dict[str, int]:
        """How often the kernel hit its limits: ``{"oom_kill": n, "pids_max": n}``."""
        out = {"oom_kill": 0, "pids_max": 0}
        if "memory" in self._cgroups:
            version, path = self._cgroups["memory"]
            events = "memory.oom_control" if version == "v1" else "memory.events"
            out["oom_kill"] = _read_counter(os.path.join(path, events), "oom_kill")
        if "pids" in self._cgroups:
            out["pids_max"] = _read_counter(
                os.path.join(self._cgroups["pids"][1], "pids.events"), "max"
            )
        return out

    def explain_death(self) -> str:
        """Why the kernel most likely died, from the cgroup counters ('' when none says)."""
        ev = self.limit_events()
        if ev["oom_kill"]:
            return f"the kernel was killed: memory limit of {self.limits.memory_mb} MiB exceeded"
        if ev["pids_max"]:
            return f"the process limit ({self.limits.pids} processes and threads) was reached"
        try:
            with open(self.log_file, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
                tail = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            tail = []
        setup = [line for line in tail if line.startswith("bwrap:")]
        return f"the sandbox failed: {setup[-1]}" if setup else ""

    def _empty_cgroup(self, path: str) -> None:
        for _ in range(50):
            try:
                with open(os.path.join(path, "cgroup.procs")) as f:
                    pids = [int(x) for x in f.read().split()]
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def close(self) -> None:
        """Kill whatever the kernel left running, remove the cgroups, release the uid."""
        if self._closed:
            return
        self._closed = True
        if hasattr(self, "_lease_fd"):
            self.kill_all()
        for _, path in self._cgroups.values():
            for _ in range(50):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        break
                    time.sleep(0.02)
        if getattr(self, "_base", None):
            shutil.rmtree(self._base, ignore_errors=True)
        if hasattr(self, "_lease_fd"):
            os.close(self._lease_fd)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sandbox(workdir={self.workdir!r}, uid={self.uid}, limits={asdict(self.limits)})"


# --------------------------------------------------------------------------------------------
# reading what the kernel wrote


def read_output(workdir, relpath, *, max_bytes: int = 64 * 1024 * 1024) -> bytes:
    """Read a file the kernel wrote under ``workdir``, refusing symlinks at every step.

    The kernel owns its workdir: it can plant ``.drylab/answers/q1.json`` as a symlink to the
    reference cache or the gradebook, which the grader (outside the sandbox, with more rights)
    would otherwise follow. Only regular files reached without a symlink are read.

    Raises
    ------
    PermissionError
        A component is a symlink or the target is not a regular file.
    ValueError
        The file is larger than ``max_bytes`` or ``relpath`` leaves the workdir.
    """
    parts = Path(relpath).parts
    if Path(relpath).is_absolute() or ".." in parts or not parts:
        raise ValueError(f"{relpath!r} is not a relative path inside the workdir")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(os.fspath(workdir), flags | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                nfd = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise PermissionError(f"{relpath}: {part} is not a plain directory") from e
                raise
            os.close(fd)
            fd = nfd
        try:
            ffd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise PermissionError(f"{relpath} is a symlink; not followed") from e
            raise
        with os.fdopen(ffd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise PermissionError(f"{relpath} is not a regular file")
            if st.st_size > max_bytes:
                raise ValueError(f"{relpath} is {st.st_size} bytes, more than {max_bytes}")
            return f.read(max_bytes + 1)[:max_bytes]
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# jupyter_client integration


def sandboxed_kernel_manager(sandbox: Sandbox, *, kernel_name: str = "python3", **kwargs):
    """An ``AsyncKernelManager`` whose kernel runs in ``sandbox`` over ipc transport.

    The manager writes its connection file into the sandbox's run directory (bound into the
    sandbox; the ipc sockets go beside it), and its launch command is :meth:`Sandbox.command`.
    Shutting the kernel down does not close the sandbox: call ``sandbox.close()`` after.
    """
    from jupyter_client.manager import AsyncKernelManager

    class _SandboxedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            return sandbox.command(super().format_kernel_cmd(extra_arguments))

    return _SandboxedKernelManager(
        kernel_name=kernel_name,
        transport="ipc",
        connection_file=sandbox.connection_file,
        **kwargs,
    )


def unavailable_reason() -> str | None:
    """``None`` when bwrap sandboxing works here, else why not (for ``--sandbox auto|bwrap``)."""
    p = probe()
    return None if p.usable else p.reason


def provision_kernel(workdir, *, slot: int, limits=None):
    """Launch one sandboxed kernel in ``workdir``: the hook of :mod:`autograder.kernels`.

    Parameters
    ----------
    workdir : path
        The kernel's fresh, empty scratch directory (the submission is copied in later).
    slot : int
        The worker slot. Not used to pick the uid: a pool keeps a kernel booting while
        another of the same slot runs, so each kernel leases a uid of its own.
    limits : autograder.kernels.Limits, optional
        ``memory_bytes`` and ``max_processes`` are enforced here; the time limits and
        output caps by the executor.

    Returns
    -------
    (AsyncKernelManager, cleanup)
        The manager of the launched kernel and an idempotent ``cleanup()`` that kills the
        kernel and everything it started and releases the uid and the cgroups.
    """
    from jupyter_core.utils import run_sync

    rl = ResourceLimits()
    memory = int(getattr(limits, "memory_bytes", 0) or 0)
    processes = int(getattr(limits, "max_processes", 0) or 0)
    rl = ResourceLimits(
        memory_mb=max(64, memory // (1024 * 1024)) if memory else rl.memory_mb,
        pids=processes or rl.pids,
    )
    sandbox = Sandbox(workdir, limits=rl)
    try:
        km = sandboxed_kernel_manager(sandbox)
        km.sandbox = sandbox  # lets the executor ask why a kernel died (explain_death)
        # The kernel's own stdout / stderr are not cell output: a resident writing to fd 1
        # must not flood the grader's terminal. stderr goes to a log (bounded by RLIMIT_FSIZE)
        # so that a sandbox that cannot start says why (explain_death).
        with open(sandbox.log_file, "wb") as log:
            run_sync(km.start_kernel)(
                extra_arguments=["--HistoryManager.hist_file=:memory:"],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
    except BaseException:
        sandbox.close()
        raise
    done = []

    def cleanup() -> None:
        if done:
            return
        done.append(True)
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
        sandbox.close()
        with contextlib.suppress(Exception):
            run_sync(km.cleanup_resources)()

    return km, cleanup


# --------------------------------------------------------------------------------------------
# the launcher (runs as root, stdlib only, then execs bwrap as the leased uid)


_CLONE_NEWNS = 0x00020000
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 0x40000
_MS_NOSUID, _MS_NODEV = 0x2, 0x4


def _libc_call(fn, *args, what: str) -> None:
    import ctypes

    if fn(*args) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _stage_binds(binds: list, stage: str) -> list[str]:
    """Bind every source at ``stage/<i>`` in a private mount namespace; return bwrap's binds.

    bwrap resolves its sources as the unprivileged uid, which cannot traverse a 0700 parent
    (a pyenv Python under /root, a pytest tmp dir, the course under an instructor's home).
    Root (which may traverse anything) binds each source on a traversable staging path that
    exists only in this launcher's private mount namespace (the host never sees it).
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    _libc_call(libc.unshare, _CLONE_NEWNS, what="unshare(CLONE_NEWNS)")
    _libc_call(libc.mount, b"none", b"/", None, _MS_REC | _MS_PRIVATE, None, what="make / private")
    _libc_call(
        libc.mount, b"tmpfs", stage.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=0755",
        what=f"tmpfs on {stage}",
    )  # fmt: skip
    args: list[str] = []
    for i, (src, dest, read_only) in enumerate(binds):
        target = f"{stage}/{i}"
        if os.path.isdir(src):
            os.mkdir(target)
        else:
            open(target, "w").close()
        _libc_call(
            libc.mount, src.encode(), target.encode(), None, _MS_BIND | _MS_REC, None,
            what=f"bind {src}",
        )  # fmt: skip
        args += ["--ro-bind" if read_only else "--bind", target, dest]
    return args


def _exec_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    pid = str(os.getpid())
    for procs in spec["cgroup_procs"]:
        _write(procs, pid)
    for name, (soft, hard) in spec["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    for path in spec.get("chown", []):
        # the kernel manager writes the connection file (mode 0600) just before launching
        with contextlib.suppress(FileNotFoundError):
            os.chown(path, spec["uid"], spec["gid"])
    args = _stage_binds(spec["binds"], spec["stage"])
    for m in spec.get("masks", []):
        args += ["--tmpfs", m] if os.path.isdir(m) else ["--ro-bind", "/dev/null", m]
    # masks come after the binds they cover
    final = [spec["bwrap"], *spec["pre"], *args, *spec["post"], "--", *spec["cmd"]]
    # jupyter interrupts by signalling the process group; bwrap itself must survive that.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.setgroups([])
    os.setresgid(spec["gid"], spec["gid"], spec["gid"])
    os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    os.execv(spec["bwrap"], final)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--exec":
        _exec_main(sys.argv[2])
    else:
        sys.exit("usage: python sandbox.py --exec SPEC_JSON (used by autograder.sandbox)")
