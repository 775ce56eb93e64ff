"""The curriculum test harness: grade every module's solution, release and misconceptions.

Generic on purpose: it discovers the modules under ``curriculum/source/`` and reads what it
needs from each module's notebook and ``misconceptions.yml`` (docs/grading-model.md), so a
new module needs no change here.

For each module it writes these submissions (the release notebook with answer cells filled
in, as a resident's notebook would be) and grades them all through the grading core
(:func:`autograder.grade.grade_submission`, in a process pool), in two phases so that the
reference answers of each resident are computed once and then read from the grader's cache:

1. ``solution`` for every resident of :data:`RESIDENTS` (the default cohort first);
2. ``release`` (nothing answered) and the misconception variants, on the default resident.

A variant replaces the solution region of its question's answer cell; it is checked in
isolation: a cell restoring the solution follows the targeted test cell, so later questions
that build on the answer see what they would see after a correct answer, and the check is
about the targeted question only (what a resident experiences downstream of a wrong answer is
not the grader's concern). Because of that isolation, variants of *different* questions can
share a submission: round ``k`` holds the ``k``-th variant of every question, so a module
costs as many variant runs as its most-varied question has variants, not one per variant.
Each variant's question must then fail with its message, and every question no variant of
the round targets must score as the solution does.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CURRICULUM = REPO / "curriculum"
#: The default resident first: release and variants run on its cohort.
RESIDENTS = ("demo", "resident-b", "resident-c")
_MARKER = re.compile(r"^(\s*)### (BEGIN|END) SOLUTION\s*$")


def module_names(course: Path = CURRICULUM) -> list[str]:
    """The modules of the course (folders of ``source/`` holding ``<module>.ipynb``)."""
    from autograder.course import modules

    return modules(course)


def read_nb(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def nbg(cell: dict) -> dict:
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


# ------------------------------------------------------------------------------ variants


@dataclass(frozen=True)
class Variant:
    """One entry of a module's ``misconceptions.yml``."""

    id: str
    question: str
    replace: str
    expect_message: str


def load_variants(module_dir: Path) -> list[Variant]:
    """The variants of a module; ValueError names the file and the malformed entry."""
    path = module_dir / "misconceptions.yml"
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of variants")
    out = []
    for i, entry in enumerate(data):
        keys = {"id", "question", "replace", "expect_message"}
        if not isinstance(entry, dict) or set(entry) != keys:
            raise ValueError(f"{path}: entry {i} must have exactly the keys {sorted(keys)}")
        if not all(isinstance(entry[k], str) and entry[k].strip() for k in keys):
            raise ValueError(f"{path}: entry {i} ({entry.get('id')}) has an empty field")
        out.append(Variant(entry["id"], entry["question"], entry["replace"].rstrip("\n"),
                           entry["expect_message"].strip()))
    return out


# ------------------------------------------------------------------------------ notebooks


@dataclass
class Questions:
    """The graded cells of a source notebook."""

    tests: dict[str, dict] = field(default_factory=dict)  # test grade_id -> cell
    answer_of: dict[str, str] = field(default_factory=dict)  # test grade_id -> answer id
    manual: dict[str, dict] = field(default_factory=dict)  # manual grade_id -> cell
    solutions: dict[str, str] = field(default_factory=dict)  # solution cell id -> region


def questions(source_nb: dict) -> Questions:
    """Test, answer and manual cells; a test's answer cell is the last solution cell above it."""
    q = Questions()
    last = None
    for cell in source_nb["cells"]:
        meta = nbg(cell)
        gid = meta.get("grade_id")
        if meta.get("solution"):
            q.solutions[gid] = solution_region(text(cell))
            if meta.get("grade"):
                q.manual[gid] = cell
            elif cell["cell_type"] == "code":
                last = gid
        elif meta.get("grade") and cell["cell_type"] == "code":
            q.tests[gid] = cell
            q.answer_of[gid] = last
    return q


def solution_region(source: str) -> str:
    """The lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, dedented."""
    lines, inside, indent = [], False, ""
    for line in source.split("\n"):
        m = _MARKER.match(line)
        if m:
            inside, indent = m.group(2) == "BEGIN", m.group(1)
            continue
        if inside:
            lines.append(line[len(indent):] if line.startswith(indent) else line)
    return "\n".join(lines)


def with_region(source: str, code: str) -> str:
    """``source`` with its solution region (markers included) replaced by ``code``."""
    out, inside = [], False
    for line in source.split("\n"):
        m = _MARKER.match(line)
        if m and m.group(2) == "BEGIN":
            inside = True
            out.extend(m.group(1) + c if c else c for c in code.split("\n"))
        elif m:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def filled(release_nb: dict, source_nb: dict, *, replace: dict[str, str] | None = None,
           restore_after: tuple[str, ...] = ()) -> dict:
    """The release with every answer cell holding the solution (``replace`` overrides).

    ``replace`` maps an answer cell's grade_id to the code that takes the solution region's
    place. ``restore_after`` names test cells after which an added cell re-runs the
    solution of that question's answer cell (a variant's isolation, see the module doc).
    """
    replace = replace or {}
    src_cells = {nbg(c).get("grade_id"): c for c in source_nb["cells"] if nbg(c).get("grade_id")}
    q = questions(source_nb)
    nb = copy.deepcopy(release_nb)
    cells = []
    for cell in nb["cells"]:
        gid = nbg(cell).get("grade_id")
        if nbg(cell).get("solution") and gid in src_cells:
            code = replace.get(gid, q.solutions[gid])
            cell["source"] = with_region(text(src_cells[gid]), code)
        cells.append(cell)
        if gid is not None and gid in restore_after:
            cells.append({"cell_type": "code", "id": f"restore-{gid}", "metadata": {},
                          "execution_count": None, "outputs": [],
                          "source": q.solutions[q.answer_of[gid]]})
    nb["cells"] = cells
    return nb


# ------------------------------------------------------------------------------ grading


@dataclass
class Submission:
    """One notebook to grade and what it is."""

    module: str
    kind: str  # "solution", "release" or "variant"
    resident: str
    nb: dict
    variants: tuple[Variant, ...] = ()
    entry: dict = field(default_factory=dict)  # the grader's journal entry, when graded
    round: int = 0

    @property
    def label(self) -> str:
        tail = f"-round{self.round}" if self.variants else ""
        return f"{self.module}/{self.kind}{tail}@{self.resident}"

    def rows(self) -> dict[str, dict]:
        return {r["question"]: r for r in self.entry.get("rows", [])}


@dataclass
class Run:
    """Everything the harness graded, and where."""

    course: Path  # solutions and the release (its autograded/ holds the release's run)
    variants_course: Path  # variants (shares the reference cache)
    submissions: list[Submission]

    def of(self, module: str, kind: str, resident: str = RESIDENTS[0]) -> list[Submission]:
        return [s for s in self.submissions
                if s.module == module and s.kind == kind and s.resident == resident]

    def executed_release(self, module: str) -> dict:
        return read_nb(self.course / "autograded" / RESIDENTS[0] / module / f"{module}.ipynb")

    def reference(self, module: str, resident: str) -> dict:
        """The grader's cached reference values of one resident."""
        from autograder import course as _course
        from autograder.reference import load_reference, reference_dir
        from autograder.score import parse_source

        path = _course.source_notebook(self.course, module)
        spec = parse_source(module, path.read_text(encoding="utf-8"),
                            _course.load_config(self.course))
        return load_reference(reference_dir(self.course, spec, resident), spec)


def copy_course(dest: Path, course: Path = CURRICULUM) -> Path:
    """A copy of the course (config, competencies, source) to grade in."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("nbgrader_config.py", "competencies.yml"):
        shutil.copy2(course / name, dest / name)
    shutil.copytree(course / "source", dest / "source",
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    return dest


def plan(course: Path, modules: list[str]) -> list[Submission]:
    """Every submission of the harness for ``modules`` (the course must be built)."""
    subs = []
    for module in modules:
        source = read_nb(course / "source" / module / f"{module}.ipynb")
        release = read_nb(course / "release" / module / f"{module}.ipynb")
        q = questions(source)
        for resident in RESIDENTS:
            subs.append(Submission(module, "solution", resident, filled(release, source)))
        subs.append(Submission(module, "release", RESIDENTS[0], release))
        for k, variants in enumerate(rounds(load_variants(course / "source" / module))):
            for v in variants:
                if v.question not in q.tests:
                    raise ValueError(f"{module}/misconceptions.yml: {v.id} targets "
                                     f"{v.question!r}, not a test cell of the notebook")
            nb = filled(release, source,
                        replace={q.answer_of[v.question]: v.replace for v in variants},
                        restore_after=tuple(v.question for v in variants))
            subs.append(Submission(module, "variant", RESIDENTS[0], nb, variants=variants,
                                   round=k))
    return subs


def rounds(variants: list[Variant]) -> list[tuple[Variant, ...]]:
    """Round ``k``: the ``k``-th variant of each question (see the module docstring)."""
    per_question: dict[str, list[Variant]] = {}
    for v in variants:
        per_question.setdefault(v.question, []).append(v)
    depth = max((len(vs) for vs in per_question.values()), default=0)
    return [tuple(vs[k] for vs in per_question.values() if len(vs) > k) for k in range(depth)]


def build(workdir: Path, modules: list[str]) -> Path:
    """A built copy of the course under ``workdir`` (``drylab build``'s API)."""
    from autograder.build import build_course

    course = copy_course(workdir / "course")
    build_course(course, modules)
    return course


def grade_all(course: Path, modules: list[str], *, workers: int = 2) -> Run:
    """Write the harness's submissions for a built course and grade them (two phases)."""
    from autograder.grade import Task, run_tasks
    from autograder.kernels import Limits

    workdir = course.parent
    variants_course = workdir / "course-variants"
    variants_course.mkdir(parents=True, exist_ok=True)
    for name in ("nbgrader_config.py", "source", "release"):
        (variants_course / name).symlink_to(course / name)
    (course / ".drylab" / "reference").mkdir(parents=True, exist_ok=True)
    (variants_course / ".drylab").mkdir(exist_ok=True)
    (variants_course / ".drylab" / "reference").symlink_to(course / ".drylab" / "reference")

    subs = plan(course, modules)
    limits = Limits(cell_timeout=120.0, timeout=600.0)
    scratch = workdir / "scratch"
    scratch.mkdir(exist_ok=True)
    tasks = {}
    for i, sub in enumerate(subs):
        folder = workdir / "submissions" / f"{i:03d}" / sub.module
        folder.mkdir(parents=True)
        (folder / f"{sub.module}.ipynb").write_text(json.dumps(sub.nb), encoding="utf-8")
        home = variants_course if sub.kind == "variant" else course
        tasks[i] = Task(str(home), sub.resident, sub.module, str(folder), str(scratch),
                        "none", limits)
    for phase in (("solution",), ("release", "variant")):
        todo = [tasks[i] for i, s in enumerate(subs) if s.kind in phase]
        results = []
        run_tasks(todo, workers, results.append, False)
        for entry in results:
            # An entry names resident and module; the submission is found by its folder.
            index = _index_of(entry, subs, tasks)
            subs[index].entry = entry
    missing = [s.label for s in subs if not s.entry]
    if missing:
        raise RuntimeError(f"the grader returned no entry for {missing}")
    return Run(course, variants_course, subs)


def _index_of(entry: dict, subs: list[Submission], tasks: dict) -> int:
    """The submission an entry belongs to (entries carry the submission's sha256)."""
    import hashlib

    for i, task in tasks.items():
        if (task.resident, task.module) != (entry["resident"], entry["module"]):
            continue
        path = Path(task.folder) / f"{task.module}.ipynb"
        if hashlib.sha256(path.read_bytes()).hexdigest() == entry.get("submission_sha256"):
            if not subs[i].entry:
                return i
    raise RuntimeError(f"no submission matches the grader's entry for "
                       f"{entry['resident']}/{entry['module']} "
                       f"({entry.get('submission_status')}: {entry.get('message')})")


def workers_default() -> int:
    """Two workers on the 2-core machines this runs on; more where there are more cores."""
    return max(2, min(4, os.cpu_count() or 2))
