"""Reference answers: the instructor's source notebook run on one resident's data, cached.

The expected answer of a question depends on the resident (each has their own cohort), so the
source notebook is executed with the same papermill parameters as the submission, with
capture cells that also write the misconception values (``value_from``). The captured files
are cached under::

    COURSE_DIR/.drylab/reference/<module>/<source sha256[:16]>/<resident>/<key>.json|.parquet

so a regrade, a resumed batch or another submission of the same resident reuses them, and an
edited source notebook (new hash) is never compared with stale answers. The cache lives
outside every kernel's working directory. A cache entry is complete when its ``done.json``
exists; it is written to a temporary folder and renamed into place, so concurrent workers and
crashes never leave a half-written entry behind.

The instructor's notebook is trusted code, so a worker runs all its reference computations in
one long-lived :class:`ReferenceKernel` (reset between residents, replaced after an error or
every ``MAX_RUNS`` runs) instead of a fresh kernel each: a reference then costs only its own
execution time, not another kernel start with the heavy imports.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from autograder.capture import ANSWERS_DIR, misconception_key, read_answer
from autograder.score import ModuleSpec, add_capture_cells

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class ReferenceError(RuntimeError):
    """The instructor's notebook failed on a resident's data (names the cell and error)."""


def reference_dir(course_dir: str | os.PathLike, spec: ModuleSpec, resident: str) -> Path:
    """The cache folder of one (module, source version, resident)."""
    safe = _SAFE.sub("_", resident)
    return (Path(course_dir) / ".drylab" / "reference" / spec.module / spec.source_sha256[:16]
            / safe)


def reference_keys(spec: ModuleSpec) -> list[str]:
    """Every captured key a module's reference provides."""
    keys = []
    for q in spec.questions:
        if q.drylab.get("answer"):
            keys.append(q.grade_id)
            keys += [misconception_key(q.grade_id, m["id"])
                     for m in q.drylab.get("misconceptions", [])]
    return keys


def load_reference(folder: Path, spec: ModuleSpec) -> dict:
    return {key: read_answer(folder, key) for key in reference_keys(spec)}


class ReferenceKernel:
    """One reusable kernel for reference runs (instructor code only, never a resident's).

    Parameters
    ----------
    scratch : path
        Where the run folders go.
    max_runs : int
        Runs before the kernel is replaced by a fresh one. Kernels forked from the template
        process (the default) are cheap, so each run gets a fresh one; ``max_runs`` applies
        when kernels have to be started as new interpreters.
    warm_imports : tuple of str, optional
        Modules the template process imports (default: :data:`autograder.kernels.WARM_IMPORTS`).
    pool : KernelPool, optional
        An unsandboxed pool to take kernels from (the grading worker's own, when it grades
        without the sandbox, so one template process serves both); it is not closed here.
    fork : bool
        Fork the kernels of an own pool from a template process (see :class:`KernelPool`).
    template : path, optional
        The socket of the grading run's shared template process (see :class:`KernelPool`).
    """

    MAX_RUNS = 40

    def __init__(self, scratch: str | os.PathLike, *, max_runs: int = MAX_RUNS,
                 warm_imports: tuple[str, ...] | None = None, pool=None, fork: bool = True,
                 template: str | None = None):
        from autograder.kernels import KernelPool

        warm = {} if warm_imports is None else {"warm_imports": warm_imports}
        if pool is not None and pool.sandbox != "none":
            raise ValueError("reference runs need an unsandboxed kernel pool")
        self._own_pool = pool is None
        self._pool = pool or KernelPool(scratch, slot=0, sandbox="none", size=0, fork=fork,
                                        template=template, **warm)
        self._scratch = Path(scratch)
        self._scratch.mkdir(parents=True, exist_ok=True)
        self._kernel = None
        self._runs = 0
        self.max_runs = max_runs

    def run(self, nb, resident: str, limits, files_from: Path | None):
        """Execute ``nb`` for ``resident`` in a fresh, empty folder; returns (result, folder)."""
        from nbformat.v4 import new_code_cell

        from autograder.capture import CAPTURE_TAG
        from autograder.execute import execute_notebook

        if self._kernel is None or self._runs >= self.max_runs:
            self._discard()
            self._kernel = self._pool.take()
            self._runs = 0
        folder = Path(tempfile.mkdtemp(prefix="ref-", dir=self._scratch))
        if files_from is not None:
            copy_module_files(files_from, folder)
        # A clean namespace and the run's own folder, as a fresh kernel would have.
        code = f"__import__('os').chdir({str(folder)!r})\n"
        if self._runs:  # a reused kernel: forget the previous resident's run
            code += ("get_ipython().run_line_magic('reset', '-f')\n"
                     "if 'matplotlib.pyplot' in __import__('sys').modules:\n"
                     "    __import__('sys').modules['matplotlib.pyplot'].close('all')\n")
        reset = new_code_cell(code)
        reset.metadata["tags"] = [CAPTURE_TAG]
        nb.cells.insert(0, reset)
        self._runs += 1
        result = execute_notebook(nb, self._kernel, parameters={"resident_id": resident},
                                  limits=limits)
        if result.stop_reason or self._pool.fork:
            self._discard()
        return result, folder

    def _discard(self) -> None:
        if self._kernel is not None:
            self._kernel.discard()
            self._kernel = None

    def close(self) -> None:
        self._discard()
        if self._own_pool:
            self._pool.close()


def get_reference(course_dir: str | os.PathLike, spec: ModuleSpec, resident: str, *,
                  runner: ReferenceKernel, limits, files_from: Path | None = None) -> dict:
    """The reference values for one resident, from the cache or by running the source.

    Parameters
    ----------
    course_dir : path
    spec : ModuleSpec
    resident : str
    runner : ReferenceKernel
        The worker's reference kernel.
    limits : autograder.kernels.Limits
    files_from : path, optional
        A folder whose non-notebook files the notebook needs next to it (the module's
        release folder).

    Raises
    ------
    ReferenceError
        The source notebook raised, timed out or its kernel died.
    """
    folder = reference_dir(course_dir, spec, resident)
    if (folder / "done.json").exists():
        return load_reference(folder, spec)
    nb = copy.deepcopy(spec.source_nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    add_capture_cells(nb, spec, reference=True)
    result, run_dir = runner.run(nb, resident, limits, files_from)
    try:
        if result.stop_reason:
            raise ReferenceError(f"the source notebook of {spec.module} stopped for resident "
                                 f"{resident!r}: {result.message}")
        for index, cell in enumerate(result.nb.cells):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    raise ReferenceError(
                        f"the source notebook of {spec.module} raised {out.get('ename')}: "
                        f"{out.get('evalue')} in cell {index} for resident {resident!r}")
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
        answers = run_dir / ANSWERS_DIR
        if answers.is_dir():
            for path in answers.iterdir():
                shutil.copy2(path, tmp / path.name)
        (tmp / "done.json").write_text(json.dumps({"resident": resident,
                                                   "source_sha256": spec.source_sha256}))
        try:
            os.rename(tmp, folder)
        except OSError:  # another worker got there first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return load_reference(folder, spec)


def copy_module_files(src: Path, dest: Path) -> None:
    """Copy a module folder's data files (not notebooks, not hidden or harness files)."""
    if not src.is_dir():
        return
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if any(part.startswith(".") for part in rel.parts) or path.suffix in (".ipynb", ".yml",
                                                                              ".yaml"):
            continue
        target = dest / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file() and not path.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
