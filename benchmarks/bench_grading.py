"""Grading throughput: ``drylab grade`` against stock ``nbgrader autograde``, same submissions.

Builds a class of submissions (default 40) from the autograder's fixture course
(tests/fixtures/course: two small pandas modules), then in one run:

1. stock ``nbgrader autograde`` (serial, as nbgrader runs), one assignment after the other;
2. ``drylab grade --workers N --sandbox none`` on an identical copy (reference cache cold:
   the instructor's notebook also runs once per resident, which nbgrader does not do);
3. the notebooks' *pure execution time*, two ways, both in N parallel processes:
   (a) each graded notebook (parameters injected, the cells the kernel runs) executed by plain
   papermill in a fresh kernel, no grading (what running the notebooks costs), and
   (b) the same code ``exec``-ed in fresh namespaces in processes that already imported
   pandas / numpy / scikit-learn / matplotlib: no kernel at all (the floor).

It prints the wall times, the throughput ratio drylab / nbgrader (target >= 4x on 2 cores),
whether the per-cell scores in the two gradebooks are identical, and drylab's wall time over
the pure execution times (target <= 1.3x of (a); (b) is shown to say how much of everything
is kernel start-up and imports).

The submissions use the variants on which the contract and nbgrader must agree: correct,
empty (release as is), an exception in an answer, and a value a public check rejects. Wrong
values that pass the public checks are scored differently on purpose (drylab compares values
outside the kernel; nbgrader cannot), so they are not in this set; the differential test
covers score identity on plain nbgrader notebooks.

Options: ``--n 40`` submissions, ``--workers 2``, ``--keep`` keeps the work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "autograder"))

#: variant -> answers, per module, chosen so both graders must give the same points.
VARIANTS = ("correct", "empty", "error", "range")


def _answers(module: str, variant: str) -> dict:
    import classroom

    table = classroom.M1 if module == "m1_counts" else classroom.M2
    if variant == "range":  # a value the public range / type check rejects
        return ({"a1_1": table["correct"]["a1_1"],
                 "a1_2": table["misconception"]["a1_2"]} if module == "m1_counts"
                else {"a2_1": table["correct"]["a2_1"], "a2_2": "high_ids = [1, 2]"})
    if variant == "error":
        return ({"a1_1": table["error"]["a1_1"], "a1_2": table["correct"]["a1_2"]}
                if module == "m1_counts"
                else {"a2_1": "by_decade = patients.groupby('nope').size()",
                      "a2_2": table["correct"]["a2_2"]})
    return table[variant]


def make_class(course: Path, n: int) -> list[tuple[str, str]]:
    import classroom

    pairs = []
    modules = ("m1_counts", "m2_tables")
    for i in range(n):
        module = modules[i % 2]
        resident = f"b{i // 2:03d}"
        variant = VARIANTS[(i // 2) % len(VARIANTS)]
        nb = classroom.fill(classroom.release_notebook(course, module),
                            _answers(module, variant))
        classroom.submit(course, resident, module, nb)
        pairs.append((resident, module))
    return pairs


def _nbgrader(course: Path, *args: str) -> float:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args,
                           f"--CourseDirectory.root={course}"],
                          cwd=course, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


# ------------------------------------------------------------------ pure execution
def _warm() -> None:
    import matplotlib

    matplotlib.use("Agg")
    for name in ("numpy", "pandas", "sklearn", "matplotlib.pyplot"):
        __import__(name)


def _exec_notebook(job: tuple[str, list[str]]) -> float:
    workdir, sources = job
    os.chdir(workdir)
    namespace: dict = {"__name__": "__main__"}
    t0 = time.perf_counter()
    for src in sources:
        try:
            exec(compile(src, "<cell>", "exec"), namespace)  # noqa: S102 - benchmark only
        except Exception:  # noqa: BLE001 - answer errors are part of the workload
            pass
    return time.perf_counter() - t0


def _papermill_one(path: str) -> float:
    import papermill

    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(path, None, kernel_name="python3", progress_bar=False,
                                   cwd=str(Path(path).parent))
    except papermill.PapermillExecutionError:
        pass  # answer errors are part of the workload
    return time.perf_counter() - t0


def pure_execution(course: Path, pairs, workers: int) -> tuple[float, float, float]:
    """(papermill wall s, exec wall s in warm processes, summed per-notebook exec s)."""
    from papermill.parameterize import parameterize_notebook

    from autograder.course import load_config, source_notebook
    from autograder.score import parse_source, sanitize

    specs = {m: parse_source(m, source_notebook(course, m).read_text(), load_config(course))
             for m in {m for _, m in pairs}}
    import nbformat

    jobs = []
    scratch = Path(tempfile.mkdtemp(prefix="drylab-bench-pure-"))
    for resident, module in pairs:
        nb = nbformat.read(course / "submitted" / resident / module / f"{module}.ipynb", 4)
        nb, _ = sanitize(nb, specs[module])
        for cell in nb.cells:
            cell.metadata.setdefault("tags", [])
        nb.metadata["papermill"] = {"parameters": {}, "default_parameters": {}}
        nb = parameterize_notebook(nb, {"resident_id": resident}, kernel_name="python3",
                                   language="python")
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        folder = scratch / f"{resident}-{module}"
        folder.mkdir()
        nbformat.write(nb, str(folder / f"{module}.ipynb"))
        jobs.append((str(folder), code))
    with ProcessPoolExecutor(workers) as ex:
        t0 = time.perf_counter()
        list(ex.map(_papermill_one, [str(Path(f) / f"{m}.ipynb")
                                     for (f, _), (_, m) in zip(jobs, pairs, strict=True)]))
        wall_pm = time.perf_counter() - t0
    with ProcessPoolExecutor(workers, initializer=_warm) as ex:
        list(ex.map(_warm_noop, range(workers)))  # workers up and warm before timing
        t0 = time.perf_counter()
        per = list(ex.map(_exec_notebook, jobs))
        wall = time.perf_counter() - t0
    shutil.rmtree(scratch, ignore_errors=True)
    return wall_pm, wall, sum(per)


def _warm_noop(_):
    time.sleep(0.2)


# ------------------------------------------------------------------ main
def main(args: list[str]) -> None:
    import classroom

    from autograder.build import build_course
    from autograder.grade import grade_course
    from autograder.gradebook import gradebook_scores

    p = argparse.ArgumentParser(prog="bench_grading")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--keep", action="store_true")
    opts = p.parse_args(args)

    work = Path(tempfile.mkdtemp(prefix="drylab-bench-grading-"))
    stock = classroom.copy_course(classroom.COURSE, work / "stock")
    _nbgrader(stock, "generate_assignment", "m1_counts", "--force")
    _nbgrader(stock, "generate_assignment", "m2_tables", "--force")
    pairs = make_class(stock, opts.n)
    ours = work / "ours"
    shutil.copytree(stock, ours, ignore=shutil.ignore_patterns("gradebook.db", "release"))
    build_course(ours)
    print(f"{len(pairs)} submissions ({len({r for r, _ in pairs})} residents x 2 modules), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    t_nbgrader = sum(_nbgrader(stock, "autograde", module, "--force")
                     for module in ("m1_counts", "m2_tables"))
    print(f"nbgrader autograde (serial):        {t_nbgrader:7.1f} s  "
          f"{len(pairs) / t_nbgrader:5.2f} submissions/s")

    t0 = time.perf_counter()
    summary = grade_course(ours, workers=opts.workers, sandbox="none", progress=False)
    t_drylab = time.perf_counter() - t0
    print(f"drylab grade --workers {opts.workers} (cold ref): {t_drylab:7.1f} s  "
          f"{len(pairs) / t_drylab:5.2f} submissions/s  ({summary.by_status})")

    t_pm, t_pure, t_pure_sum = pure_execution(ours, pairs, opts.workers)
    print(f"(a) papermill, fresh kernels ({opts.workers} procs): {t_pm:7.1f} s")
    print(f"(b) exec in warm processes ({opts.workers} procs):  {t_pure:7.1f} s  "
          f"(sum over notebooks {t_pure_sum:.1f} s)")

    a, b = gradebook_scores(stock), gradebook_scores(ours)
    same = a == b
    diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
    print(f"per-cell scores identical: {same} ({len(a)} cells"
          + (f"; {len(diff)} differ, e.g. {sorted(diff.items())[:3]}" if diff else "") + ")")
    print(f"throughput ratio drylab / nbgrader: {t_nbgrader / t_drylab:5.2f}x  (target >= 4x)")
    print(f"drylab / (a) papermill execution:   {t_drylab / t_pm:5.2f}x  (target <= 1.3x)")
    print(f"drylab / (b) exec floor:            {t_drylab / t_pure:5.2f}x")
    print(json.dumps({"n": len(pairs), "nbgrader_s": round(t_nbgrader, 2),
                      "drylab_s": round(t_drylab, 2), "papermill_s": round(t_pm, 2),
                      "exec_s": round(t_pure, 2), "scores_identical": same}))
    if opts.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
