"""``drylab grade``: every submission of a course, in parallel, into the journal and gradebook.

The pipeline, in the order it runs::

    discover_tasks     COURSE_DIR/submitted/<resident>/<module>/  -> one Task each
    grade_submission   (in a worker) read -> sanitize -> reference -> execute -> score
    Journal.append     the entry, fsynced           (main process only)
    GradebookWriter    the scores, into gradebook.db (main process only)

Workers are a local process pool (``--workers N``) or a Dask cluster (``--scheduler URL``);
both run the same :func:`grade_submission` on a picklable :class:`Task` and return a plain
dict, so results are identical either way. Each worker process keeps its own
:class:`~autograder.kernels.KernelPool`. Submissions are never modified: each is copied into
a fresh kernel working directory under a scratch folder outside the course.

With ``--scheduler`` the workers must see the course directory at the same path (a shared
file system), as the local pool does.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from autograder._startup import skip_slow_optional_imports
from autograder.journal import Journal
from autograder.kernels import Limits

skip_slow_optional_imports()  # before anything here imports nbformat (see autograder._startup)

#: Submissions larger than this are not opened (bytes).
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Task:
    """One submission to grade (picklable: it crosses process and machine boundaries)."""

    course_dir: str
    resident: str
    module: str
    folder: str
    scratch: str
    sandbox: str = "none"
    limits: Limits = field(default_factory=Limits)
    warnings: tuple[str, ...] = ()
    warm_imports: tuple[str, ...] | None = None  # None: kernels.WARM_IMPORTS
    fork: bool = True  # fork unsandboxed kernels from a template process (autograder.zygote)
    template: str | None = None  # socket of the run's shared template process, if any


@dataclass
class GradeSummary:
    """What a ``grade_course`` call did."""

    course_dir: Path
    graded: int = 0
    skipped: int = 0
    by_status: dict = field(default_factory=dict)
    wall_s: float = 0.0
    warnings: list = field(default_factory=list)


# ----------------------------------------------------------------- worker side
#: Modules a grading worker needs, imported once by the process pool's fork server.
WORKER_PRELOAD = ("autograder.grade", "autograder.execute", "autograder.reference",
                  "autograder.score", "autograder.capture", "autograder.compare",
                  "autograder.kernels", "autograder.zygote", "nbformat", "papermill",
                  "jupyter_client.manager", "psutil")

_WORKER: dict = {}


def _worker_state(task: Task):
    """This process's kernel pool and module specs (made on first use)."""
    key = (task.scratch, task.sandbox, task.limits, task.warm_imports, task.fork, task.template)
    if _WORKER.get("key") != key:
        from autograder.kernels import KernelPool
        from autograder.reference import ReferenceKernel

        _close_worker()
        slot = _WORKER.setdefault("slot", _dask_slot())
        scratch = Path(task.scratch) / f"w{slot}-{os.getpid()}"
        warm = {} if task.warm_imports is None else {"warm_imports": task.warm_imports}
        pool = KernelPool(scratch, slot=slot, sandbox=task.sandbox, limits=task.limits,
                          fork=task.fork, template=task.template, **warm)
        # Unsandboxed, one template process forks the kernels of both; sandboxed, the
        # instructor's (trusted) solution still runs in forked, unsandboxed kernels.
        reference = ReferenceKernel(scratch / "reference",
                                    pool=pool if task.sandbox == "none" else None,
                                    warm_imports=task.warm_imports, fork=task.fork,
                                    template=task.template)
        _WORKER.update(key=key, pool=pool, reference=reference, specs={})
        _register_cleanup()
    return _WORKER["pool"], _WORKER["specs"]


def _dask_slot() -> int:
    """The slot of a Dask worker (LocalCluster names them 0, 1, ...); 0 elsewhere."""
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return 0
    return name if isinstance(name, int) else abs(hash(str(name))) % 1000


def _close_worker() -> None:
    for name in ("reference", "pool"):
        thing = _WORKER.pop(name, None)
        if thing is not None:
            thing.close()


def _register_cleanup() -> None:
    if _WORKER.get("cleanup_registered"):
        return
    import atexit
    from multiprocessing import util

    # multiprocessing workers leave through os._exit after their finalizers, not atexit.
    util.Finalize(None, _close_worker, exitpriority=10)
    atexit.register(_close_worker)
    _WORKER["cleanup_registered"] = True


def _init_worker(counter, parent_pid: int) -> None:
    """Process-pool initializer: a slot number, and exit if the grader itself dies."""
    with counter.get_lock():
        _WORKER["slot"] = counter.value
        counter.value += 1

    def watch_parent():
        # A kill -9 of the grader leaves pool workers blocked on their queue; without this
        # they and their kernels would live on. (Their parent is the forkserver, so watch the
        # grader's pid itself.)
        import psutil

        while True:
            time.sleep(1.0)
            try:
                alive = psutil.Process(parent_pid).status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                alive = False
            if not alive:
                try:
                    _close_worker()
                finally:
                    os._exit(1)

    threading.Thread(target=watch_parent, daemon=True).start()


def _spec(task: Task, specs: dict):
    from autograder import course as _course
    from autograder.score import parse_source

    path = _course.source_notebook(task.course_dir, task.module)
    text = path.read_text(encoding="utf-8")
    key = (task.course_dir, task.module, hash(text))
    if key not in specs:
        specs[key] = parse_source(task.module, text, _course.load_config(task.course_dir))
    return specs[key]


def _entry(task: Task, **kw) -> dict:
    entry = {
        "resident": task.resident,
        "module": task.module,
        "notebook": "",
        "submission_status": "ok",
        "message": "",
        "sandbox": task.sandbox,
        "warnings": list(task.warnings),
        "submission_sha256": "",
        "source_sha256": "",
        "duration_s": 0.0,
        "rows": [],
    }
    entry.update(kw)
    return entry


def find_notebook(task: Task) -> tuple[Path | None, str]:
    """The submission's notebook, or ``None`` and why not."""
    folder = Path(task.folder)
    expected = folder / f"{task.module}.ipynb"
    if expected.is_file():
        return expected, ""
    others = sorted(p.name for p in folder.glob("*.ipynb"))
    if others:
        return None, (f"expected a notebook named {expected.name}, found "
                      f"{', '.join(others)}")
    return None, f"no notebook in the submission (expected {expected.name})"


def read_submission(path: Path):
    """(notebook, status, message): status is ok, too_large, non_utf8 or corrupt."""
    import nbformat

    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        return None, "too_large", (f"{path.name} is {size / 2**20:.0f} MB; the limit is "
                                   f"{MAX_NOTEBOOK_BYTES / 2**20:.0f} MB")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, "non_utf8", f"{path.name} is not UTF-8 text (byte {exc.start})"
    try:
        nb = nbformat.reads(text, as_version=4)
        if nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
            raise ValueError("not an nbformat 4 notebook")
        for cell in nb.cells:
            if cell.get("cell_type") not in ("code", "markdown", "raw"):
                raise ValueError(f"a cell of unknown type {cell.get('cell_type')!r}")
            if not isinstance(cell.get("source"), str):
                raise ValueError("a cell without source text")
            if not isinstance(cell.get("metadata"), dict):
                raise ValueError("a cell without metadata")
            nbg = cell.metadata.get("nbgrader")
            if nbg is not None and not isinstance(nbg, dict):
                cell.metadata["nbgrader"] = {}
    except Exception as exc:  # noqa: BLE001 - anything unreadable is "corrupt"
        return None, "corrupt", f"{path.name} is not a readable notebook: {exc}"[:400]
    return nb, "ok", ""


def copy_submission(folder: Path, workdir: Path) -> None:
    """Copy a submission's files into the kernel's working directory (symlinks as links,
    never followed; the grader's own ``.drylab`` folder is not copied)."""
    for path in folder.iterdir():
        if path.name in (".drylab", ".ipynb_checkpoints"):
            continue
        target = workdir / path.name
        if path.is_symlink():
            os.symlink(os.readlink(path), target)
        elif path.is_dir():
            shutil.copytree(path, target, symlinks=True)
        elif path.is_file():
            shutil.copy2(path, target)


def grade_submission(task: Task) -> dict:
    """Grade one submission; never raises (a failure is an entry with a status)."""
    t0 = time.perf_counter()
    try:
        entry = _grade(task)
    except Exception as exc:  # noqa: BLE001 - errors are values in a batch
        tb = traceback.format_exc(limit=3)
        entry = _entry(task, submission_status="grader_error",
                       message=f"the grader failed: {type(exc).__name__}: {exc}\n{tb}"[:2000])
        try:
            from autograder.score import rows_for_unscorable

            pool, specs = _worker_state(task)
            entry["rows"] = rows_for_unscorable(_spec(task, specs), "error",
                                                "the grader failed on this submission")
        except Exception:  # noqa: BLE001
            pass
    entry["duration_s"] = round(time.perf_counter() - t0, 3)
    entry["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return entry


def _grade(task: Task) -> dict:
    from autograder import course as _course
    from autograder.capture import ANSWERS_DIR, read_answer
    from autograder.execute import execute_notebook
    from autograder.reference import ReferenceError, copy_module_files, get_reference
    from autograder.score import (
        add_capture_cells,
        rows_for_unscorable,
        sanitize,
        score_notebook,
        strip_grader_cells,
    )

    if not _course.source_notebook(task.course_dir, task.module).is_file():
        return _entry(task, submission_status="unknown_module",
                      message=f"there is no module {task.module!r} in the course's source/",
                      rows=[{"question": "", "competencies": [], "points": 0.0,
                             "max_points": 0.0, "status": "error",
                             "message": f"unknown module {task.module!r}",
                             "misconception": "", "needs_manual": False, "cell_index": None}])
    pool, specs = _worker_state(task)
    spec = _spec(task, specs)
    path, why = find_notebook(task)
    if path is None:
        return _entry(task, submission_status="wrong_name", message=why,
                      source_sha256=spec.source_sha256,
                      rows=rows_for_unscorable(spec, "error", why))
    sub_nb, status, message = read_submission(path)
    base = _entry(task, notebook=path.name, source_sha256=spec.source_sha256,
                  submission_sha256=_course.sha256_file(path))
    base["warnings"] += pool.warnings
    if sub_nb is None:
        base.update(submission_status=status, message=message,
                    rows=rows_for_unscorable(spec, "error", message))
        return base
    nb, restored = sanitize(sub_nb, spec)
    release = Path(task.course_dir) / "release" / task.module
    reference = {}
    if spec.is_drylab:
        try:
            reference = get_reference(task.course_dir, spec, task.resident,
                                      runner=_WORKER["reference"], limits=task.limits,
                                      files_from=release)
        except ReferenceError as exc:
            base.update(submission_status="grader_error", message=str(exc),
                        rows=rows_for_unscorable(spec, "error",
                                                 "the grader could not compute the expected "
                                                 "answers for your data"))
            return base
    add_capture_cells(nb, spec)
    kernel = pool.take()
    try:
        copy_submission(Path(task.folder), kernel.workdir)
        copy_module_files(release, kernel.workdir)
        answers_dir = kernel.workdir / ANSWERS_DIR
        shutil.rmtree(kernel.workdir / ".drylab", ignore_errors=True)
        # A plain nbgrader notebook (no parameters cell in the source) runs as nbgrader runs it.
        params = {"resident_id": task.resident} if spec.has_parameters else None
        result = execute_notebook(nb, kernel, parameters=params, limits=task.limits)
        answers = {q.grade_id: read_answer(answers_dir, q.grade_id)
                   for q in spec.questions if q.drylab.get("answer")}
    finally:
        kernel.discard()
    rows = score_notebook(result.nb, spec, answers, reference, stopped_at=result.stopped_at,
                          stop_reason=result.stop_reason)
    if result.stop_reason:
        where = next((r["message"] for r in rows if r["status"] in ("timeout", "error")
                      and r["message"].startswith(("the notebook was stopped", "the kernel"))),
                     result.message)
        base.update(submission_status=result.stop_reason, message=where)
    elif restored:
        base.update(submission_status="missing_cells",
                    message=f"graded cells were missing and were restored: {', '.join(restored)}")
    if result.truncated_cells:
        base["warnings"] = [*base["warnings"],
                            f"output truncated in cells {result.truncated_cells}"]
    base["rows"] = rows
    _write_autograded(task, path.name, strip_grader_cells(result.nb))
    return base


def _write_autograded(task: Task, name: str, nb) -> None:
    """The executed notebook where nbgrader's formgrader looks for it."""
    import nbformat

    out = Path(task.course_dir) / "autograded" / task.resident / task.module
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{name}.tmp"
    nbformat.write(nb, str(tmp))
    os.replace(tmp, out / name)


# ----------------------------------------------------------------- main process
def course_warm_imports(course_dir: Path) -> tuple[str, ...]:
    """Which heavy modules to pre-import in kernels: those the source notebooks import."""
    import json

    from autograder import course as _course
    from autograder.kernels import warm_imports_for

    sources = []
    for module in _course.modules(course_dir):
        try:
            nb = json.loads(_course.source_notebook(course_dir, module).read_text("utf-8"))
        except ValueError:
            continue
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "code":
                src = cell.get("source", "")
                sources.append(src if isinstance(src, str) else "".join(src))
    return warm_imports_for(sources)


def discover_tasks(course_dir: Path, *, scratch: str, sandbox: str, limits: Limits,
                   warnings: tuple[str, ...] = (), fork: bool = True,
                   warm: tuple[str, ...] | None = None) -> list[Task]:
    """One task per ``submitted/<resident>/<module>/`` folder, sorted."""
    if warm is None:
        warm = course_warm_imports(course_dir)
    submitted = course_dir / "submitted"
    if not submitted.is_dir():
        raise FileNotFoundError(f"{submitted} does not exist: nothing to grade "
                                "(expected submitted/<resident>/<module>/<module>.ipynb)")
    tasks = []
    for resident in sorted(p for p in submitted.iterdir() if p.is_dir()):
        for folder in sorted(p for p in resident.iterdir() if p.is_dir()):
            tasks.append(Task(str(course_dir), resident.name, folder.name, str(folder),
                              scratch, sandbox, limits, tuple(warnings), warm, fork))
    return tasks


def _ensure_built(course_dir: Path, modules: set[str]) -> None:
    """Build (nbgrader generate_assignment) modules the gradebook does not know yet."""
    from autograder import course as _course
    from autograder.build import build_course
    from autograder.gradebook import known_assignments

    wanted = sorted(set(_course.modules(course_dir)) & modules)
    missing = [m for m in wanted if m not in known_assignments(course_dir)
               or not (course_dir / "release" / m).is_dir()]
    if missing:
        build_course(course_dir, missing)


def grade_course(course_dir, *, workers: int | None = None, sandbox: str = "auto",
                 cell_timeout: float = 60.0, timeout: float = 600.0, resume: bool = False,
                 scheduler: str | None = None, progress: bool = True,
                 scratch: str | None = None, fork: bool = True) -> GradeSummary:
    """Grade every submission of a course.

    Parameters
    ----------
    course_dir : path
        The course (``source/``, ``submitted/``; see docs/grading-model.md).
    workers : int, optional
        Local worker processes (default: the number of CPUs).
    sandbox : {"auto", "bwrap", "none"}
    cell_timeout, timeout : float
        Seconds per cell and per submission.
    resume : bool
        Keep the journal and skip submissions already in it; otherwise start a new journal.
    scheduler : str, optional
        A Dask scheduler address (``tcp://host:8786``) or a ``distributed.Client``; grade
        on that cluster instead of local processes.
    progress : bool
        Show a tqdm progress bar (on stderr).
    scratch : path, optional
        Where kernel working directories go (default: a new temporary folder).
    fork : bool
        Fork unsandboxed kernels (and the reference runs') from a warm template process
        (:mod:`autograder.zygote`); ``False`` starts each one as a new interpreter.

    Returns
    -------
    GradeSummary
    """
    from autograder import course as _course
    from autograder.gradebook import GradebookWriter, sync_gradebook
    from autograder.kernels import resolve_sandbox

    t0 = time.perf_counter()
    course_dir = Path(course_dir).resolve()
    _course.load_config(course_dir)  # a clear error for a wrong path
    effective, warns = resolve_sandbox(sandbox)
    if scheduler is None:
        _worker_context()
    limits = Limits(cell_timeout=float(cell_timeout), timeout=float(timeout))
    own_scratch = scratch is None
    scratch = scratch or tempfile.mkdtemp(prefix="drylab-grade-")
    warm = course_warm_imports(course_dir)
    tasks = discover_tasks(course_dir, scratch=scratch, sandbox=effective, limits=limits,
                           warnings=tuple(warns), fork=fork, warm=warm)
    _ensure_built(course_dir, {t.module for t in tasks})
    summary = GradeSummary(course_dir=course_dir, warnings=list(warns))
    journal = Journal(course_dir, fresh=not resume)
    gradebook = GradebookWriter(course_dir)
    template = None
    try:
        if resume:
            done = journal.done()
            sync_gradebook(course_dir)  # entries journaled just before a crash
            summary.skipped = sum((t.resident, t.module) in done for t in tasks)
            tasks = [t for t in tasks if (t.resident, t.module) not in done]
        if tasks and fork and scheduler is None:
            template = _shared_template(warm)
            if template is not None:
                tasks = [replace(t, template=template.listen) for t in tasks]

        def on_result(entry: dict) -> None:
            journal.append(entry)  # durable first: the journal is the record of truth
            gradebook.record(entry)
            summary.graded += 1
            status = entry["submission_status"]
            summary.by_status[status] = summary.by_status.get(status, 0) + 1

        if tasks:
            with gradebook:
                if scheduler is not None:
                    _run_dask(tasks, scheduler, on_result, progress)
                else:
                    run_tasks(tasks, workers or os.cpu_count() or 1, on_result, progress)
    finally:
        journal.close()
        if template is not None:
            template.close()
            shutil.rmtree(os.path.dirname(template.listen), ignore_errors=True)
        if own_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    summary.wall_s = time.perf_counter() - t0
    return summary


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="submission", desc="grading", disable=not enabled,
                file=sys.stderr)


def _lost_entry(task: Task, what: str, exc: Exception) -> dict:
    """The entry of a task whose worker never returned one."""
    from autograder import course as _course

    try:  # name the submission, so the entry can be matched to it (cheap: no kernel)
        path, _ = find_notebook(task)
    except OSError:
        path = None
    entry = _entry(task, submission_status="grader_error",
                   message=f"{what}: {type(exc).__name__}: {exc}",
                   notebook=path.name if path else "",
                   submission_sha256=_course.sha256_file(path) if path else "")
    entry["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return entry


def _shared_template(warm: tuple[str, ...]):
    """One kernel template process for all the workers of a local grading run (its imports
    overlap the workers' start), or ``None`` if it cannot be started: the workers then start
    their own."""
    from autograder.kernels import kernel_env, template_imports
    from autograder.zygote import Zygote

    folder = tempfile.mkdtemp(prefix="drylab-template-")  # 0700; a short path for AF_UNIX
    try:
        return Zygote(template_imports(warm), env=kernel_env(),
                      listen=os.path.join(folder, "template.sock"), wait=False)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        return None


def _worker_context():
    """The multiprocessing context of grading workers, its fork server started.

    forkserver: workers must not inherit the parent's threads or zmq sockets. The fork server
    imports the grading code once (~3 s of CPU: nbformat, papermill, nbclient) and every
    worker starts with it; importing creates no thread, socket or event loop. Starting it
    early lets those imports overlap with the grader's own set-up.
    """
    import multiprocessing as mp
    from multiprocessing import forkserver

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_PRELOAD))
    forkserver.ensure_running()
    return ctx


def run_tasks(tasks: list[Task], workers: int, on_result, progress: bool = False) -> None:
    """Grade tasks in a local process pool; ``on_result(entry)`` is called in this process
    as each finishes (in completion order). Used by :func:`grade_course` and by the
    curriculum harness, which grades its own tasks without a journal."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = _worker_context()
    counter = ctx.Value("i", 0)
    workers = max(1, min(workers, len(tasks)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(counter, os.getpid())) as ex, \
            _progress(len(tasks), progress) as bar:
        futures = {ex.submit(grade_submission, t): t for t in tasks}
        for fut in as_completed(futures):
            try:
                entry = fut.result()
            except Exception as exc:  # noqa: BLE001 - a worker process died
                entry = _lost_entry(futures[fut], "the grading worker died", exc)
            on_result(entry)
            bar.update(1)


#: The name the curriculum harness used before ``run_tasks`` was public.
_run_local = run_tasks


def _run_dask(tasks: list[Task], scheduler, on_result, progress: bool) -> None:
    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = client.map(grade_submission, tasks, pure=False)
        index = {f.key: t for f, t in zip(futures, tasks, strict=True)}
        with _progress(len(tasks), progress) as bar:
            for fut in as_completed(futures):
                try:
                    entry = fut.result()
                except Exception as exc:  # noqa: BLE001
                    entry = _lost_entry(index[fut.key], "the Dask task failed", exc)
                on_result(entry)
                bar.update(1)
    finally:
        if client is not scheduler:
            client.close()

