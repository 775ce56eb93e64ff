"""``drylab demo``: the whole story on the embedded course, end to end, in a few minutes.

Phases (one line each, with its time)::

    course     copy the course (curriculum/, or the fixture course) into DIR
    cohorts    generate each simulated resident's cohort, instructor-side copy
    build      nbgrader release (autograder.build)
    class      simulate ~12 residents' submissions in nbgrader's layout
    grade      grade them all in parallel (autograder.grade), with a progress bar
    feedback   one HTML page per resident and module
    export     grades / questions as CSV and Parquet
    report     the instructor's report

The simulated class (:data:`ROSTER`) has residents who answer correctly, residents whose
answers are replaced by the module's misconception variants, one who leaves some answers
empty and mistypes a name, one whose kernel crashes, one stuck in an infinite loop, and one
who submits the release unchanged. After grading, every resident's outcome is checked
against what their role predicts and the summary says so.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ROSTER", "DemoResult", "Resident", "run_demo", "simulate_class"]

#: Marker file that makes a folder a demo folder (only those are ever replaced).
MARKER = ".drylab-demo"

_REPO = Path(__file__).resolve().parents[1]
_SOLUTION_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
_HIDDEN_RE = re.compile(r"### BEGIN HIDDEN TESTS\n?(.*?)### END HIDDEN TESTS", re.S)


@dataclass(frozen=True)
class Resident:
    """One simulated resident: an id and the role that decides how they answer."""

    id: str
    role: str


#: The simulated class. Roles:
#: ``correct`` the instructor's solution; ``misconception`` the solution with one answer per
#: module replaced by a misconception variant (later answers that build on it may suffer); ``partial`` the first question left empty and one
#: answer with a misspelt name; ``crash`` the kernel dies (``os._exit``) in the first module;
#: ``loop`` an infinite loop in the first module; ``empty`` the release unchanged.
ROSTER = (
    Resident("res01", "correct"),
    Resident("res02", "correct"),
    Resident("res03", "correct"),
    Resident("res04", "misconception"),
    Resident("res05", "misconception"),
    Resident("res06", "misconception"),
    Resident("res07", "misconception"),
    Resident("res08", "misconception"),
    Resident("res09", "partial"),
    Resident("res10", "crash"),
    Resident("res11", "loop"),
    Resident("res12", "empty"),
)

CRASH_CODE = "import os\n\nos._exit(1)  # the kernel dies here\n"
LOOP_CODE = "while True:  # never ends\n    pass\n"
TYPO_CODE = "{answer} = patients_tabel  # a misspelt name: NameError\n"

#: Per-cell timeout of the demo (s): generous for a cohort build on a busy machine, short
#: enough that the looping resident does not hold a worker for long.
DEMO_CELL_TIMEOUT = 20.0


# ----------------------------------------------------------------------------- notebooks


def _text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _nbg(cell: dict) -> dict:
    return (cell.get("metadata", {}) or {}).get("nbgrader", {}) or {}


def _read_nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_nb(nb: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def solution_text(source: str) -> str:
    """The instructor's answer: the source cell with the solution marker lines removed."""
    return "".join(
        line for line in source.splitlines(keepends=True) if not _SOLUTION_MARKER.match(line)
    )


@dataclass
class Question:
    """A graded question of a source notebook and where its answer is written."""

    grade_id: str
    answer_cell: str  # grade_id of the answer (solution) cell
    answer: str  # answer variable name ("" for plain nbgrader cells)
    misconceptions: list[dict] = field(default_factory=list)
    hidden: str = ""  # the hidden-tests region of the test cell
    compare: dict = field(default_factory=dict)  # metadata.drylab.compare


def questions_of(source_nb: dict) -> list[Question]:
    """The auto-graded questions of a source notebook, in order, each with its answer cell.

    A test cell's answer cell is the last code solution cell before it (the template puts
    the answer cell directly above its checks).
    """
    out: list[Question] = []
    last_answer = None
    for cell in source_nb.get("cells", []):
        nbg = _nbg(cell)
        if cell.get("cell_type") != "code":
            continue
        if nbg.get("solution") and not nbg.get("grade"):
            last_answer = nbg.get("grade_id")
        elif nbg.get("grade") and not nbg.get("solution") and last_answer:
            drylab = (cell.get("metadata", {}) or {}).get("drylab", {}) or {}
            hidden = "\n".join(_HIDDEN_RE.findall(_text(cell)))
            out.append(Question(nbg["grade_id"], last_answer, str(drylab.get("answer", "")),
                                list(drylab.get("misconceptions", []) or []), hidden,
                                dict(drylab.get("compare", {}) or {})))
    return out


# ----------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """A wrong answer a resident would plausibly give, for one question.

    Attributes
    ----------
    question : str
        grade_id of the test cell it targets.
    id : str
        The variant's id; the grader reports it when it is one of the question's
        ``metadata.drylab.misconceptions`` (``targeted``).
    region : str
        What the resident wrote in place of the answer cell's solution region.
    message : str
        Text the grader's message must contain ("" when the variants file names none).
    targeted : bool
        Whether the grader should report ``id`` as the matched misconception.
    """

    question: str
    id: str
    region: str
    message: str = ""
    targeted: bool = True


def _first(entry: dict, *keys: str, default=None):
    for key in keys:
        if entry.get(key) not in (None, ""):
            return entry[key]
    return default


def _variants_from_yaml(path: Path, questions: dict[str, Question]) -> list[Variant]:
    """Read a module's ``misconceptions.yml`` (the curriculum's variants file).

    The curriculum writes a list of entries ``{id, question, replace, expect_message}``:
    ``replace`` goes in place of the solution region of the question's answer cell, and the
    grader's message must contain ``expect_message``. Also accepted: ``code`` / ``answer``
    for ``replace``, ``message`` for ``expect_message``, and the list under a
    ``misconceptions`` / ``variants`` key.
    """
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if isinstance(data, dict):
        data = data.get("misconceptions") or data.get("variants") or []
    out = []
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, dict):
            continue
        question = str(_first(entry, "question", "grade_id", default=""))
        mis_id = str(_first(entry, "id", "misconception", default=""))
        region = _first(entry, "replace", "code", "answer")
        q = questions.get(question)
        if q is None or not mis_id or not isinstance(region, str):
            continue
        known = {str(m.get("id")) for m in q.misconceptions}
        out.append(Variant(question, mis_id, region,
                           str(_first(entry, "expect_message", "message", default="")),
                           targeted=mis_id in known))
    return out


def _variant_from_hidden(q: Question, solution: str) -> list[Variant]:
    """Variants built from the hidden tests when the module has no misconceptions.yml.

    The contract has each misconception's value computed in the hidden region from the
    cohort alone (``value_from``); the statements up to that assignment, asserts left out,
    appended to the correct answer and then assigned to the answer variable, give exactly
    the wrong answer the misconception describes.
    """
    if not q.answer or not q.hidden:
        return []
    try:
        body = ast.parse(q.hidden).body
    except SyntaxError:
        return []
    out = []
    for mis in q.misconceptions:
        target = mis.get("value_from")
        if not target or not mis.get("id"):
            continue
        kept = []
        for stmt in body:
            if isinstance(stmt, ast.Assert):
                continue
            kept.append(ast.get_source_segment(q.hidden, stmt) or "")
            names = {t.id for t in getattr(stmt, "targets", []) if isinstance(t, ast.Name)}
            if target in names:
                break
        else:
            continue
        region = (solution.rstrip("\n") + "\n# a plausible mistake\n" + "\n".join(kept)
                  + f"\n{q.answer} = {target}\n")
        out.append(Variant(q.grade_id, str(mis["id"]), region))
    return out


def replace_solution(source: str, region: str) -> str:
    """The answer cell with its solution region (markers included) replaced by ``region``.

    ``region`` keeps the indentation of the ``### BEGIN SOLUTION`` line. A cell without
    markers is replaced whole.
    """
    lines = source.splitlines(keepends=True)
    begin = next((i for i, ln in enumerate(lines) if "### BEGIN SOLUTION" in ln), None)
    end = next((i for i, ln in enumerate(lines) if "### END SOLUTION" in ln), None)
    if begin is None or end is None or end < begin:
        return region
    indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
    body = "".join(indent + ln if ln.strip() else ln
                   for ln in region.rstrip("\n").splitlines(keepends=True)) + "\n"
    return "".join(lines[:begin]) + body + "".join(lines[end + 1:])


def _solution_region(source: str) -> str:
    """The text between the solution markers (dedented one level), or the whole cell."""
    import textwrap

    m = re.search(r"^[ \t]*### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION", source,
                  flags=re.S | re.M)
    return textwrap.dedent(m.group(1)) if m else source


def module_variants(course_dir: Path, module: str) -> list[Variant]:
    """All misconception variants of a module, from its misconceptions.yml or its tests."""
    source_nb = _read_nb(course_dir / "source" / module / f"{module}.ipynb")
    questions = {q.grade_id: q for q in questions_of(source_nb)}
    yml = course_dir / "source" / module / "misconceptions.yml"
    if yml.is_file():
        variants = _variants_from_yaml(yml, questions)
        if variants:
            return variants
    regions = {
        _nbg(c).get("grade_id"): _solution_region(_text(c)) for c in source_nb.get("cells", [])
    }
    return [v for q in questions.values()
            for v in _variant_from_hidden(q, regions.get(q.answer_cell, ""))]


# ----------------------------------------------------------------------------- the class


@dataclass
class Plan:
    """What one simulated submission should get, checked after grading.

    ``expect`` maps a question's grade_id to ``(status, misconception, message)``:
    ``misconception`` is ``None`` when any is fine, ``message`` a text the grader's message
    must contain ("" for any). ``all_auto`` is a status every automatic question should
    have (``None``: no such rule); ``some`` a status at least one question should have.
    """

    resident: str
    module: str
    role: str
    expect: dict[str, tuple[str, str | None, str]] = field(default_factory=dict)
    all_auto: str | None = None
    some: str | None = None


def _answers(source_nb: dict) -> dict[str, str]:
    """grade_id -> the instructor's text, for every solution cell (code and markdown)."""
    return {
        _nbg(c)["grade_id"]: solution_text(_text(c))
        for c in source_nb.get("cells", [])
        if _nbg(c).get("solution") and _nbg(c).get("grade_id")
    }


def _fill(release_nb: dict, answers: dict[str, str]) -> dict:
    """The release with the given answer cells replaced (everything else untouched)."""
    nb = json.loads(json.dumps(release_nb))
    for cell in nb.get("cells", []):
        gid = _nbg(cell).get("grade_id")
        if _nbg(cell).get("solution") and gid in answers:
            cell["source"] = answers[gid]
    return nb


def _write_exchange_files(folder: Path, resident: str, module: str) -> None:
    """What nbgrader's submit / collect leave next to a submission, so that
    ``nbgrader release_feedback`` can return the demo's feedback pages. Fixed values: the
    same demo gives the same files."""
    import hashlib

    (folder / "timestamp.txt").write_text("2026-01-05 09:00:00.000000 UTC")
    secret = hashlib.sha256(f"drylab-demo/{resident}/{module}".encode()).hexdigest()[:32]
    (folder / "submission_secret.txt").write_text(secret)


def simulate_class(course_dir: str | os.PathLike, modules: list[str],
                   roster=ROSTER) -> list[Plan]:
    """Write every simulated resident's submissions under ``COURSE_DIR/submitted/``.

    Needs the release (``COURSE_DIR/release/<module>/<module>.ipynb``, from
    ``autograder.build``) and the source. Returns what each submission should score.
    """
    course_dir = Path(course_dir)
    plans: list[Plan] = []
    by_role: dict[str, list[Resident]] = {}
    for r in roster:
        by_role.setdefault(r.role, []).append(r)
    for m_index, module in enumerate(modules):
        source_nb = _read_nb(course_dir / "source" / module / f"{module}.ipynb")
        release_nb = _read_nb(course_dir / "release" / module / f"{module}.ipynb")
        questions = questions_of(source_nb)
        solution = _answers(source_nb)
        sources = {_nbg(c).get("grade_id"): _text(c) for c in source_nb.get("cells", [])}
        variants = module_variants(course_dir, module)
        mis_residents = by_role.get("misconception", [])
        for resident in roster:
            answers = dict(solution)
            plan = Plan(resident.id, module, resident.role)
            role = resident.role
            if role == "correct":
                plan.all_auto = "passed"
            elif role == "misconception":
                # One variant each (two at once may interact), round robin shifted per
                # module so the class shows as many different mistakes as it can. Questions
                # before it must pass; later ones may build on the wrong answer, as they
                # would for a real resident, so they are not predicted.
                k = mis_residents.index(resident) + m_index * len(mis_residents)
                if variants:
                    v = variants[k % len(variants)]
                    cell = next(q.answer_cell for q in questions if q.grade_id == v.question)
                    answers[cell] = replace_solution(sources[cell], v.region)
                    plan.expect[v.question] = ("failed", v.id if v.targeted else None,
                                               v.message)
                    for q in questions:
                        if q.grade_id == v.question:
                            break
                        plan.expect[q.grade_id] = ("passed", "", "")
                else:
                    plan.all_auto = "passed"
            elif role == "partial" and questions:
                first = questions[0]
                answers.pop(first.answer_cell, None)  # left as released
                plan.expect[first.grade_id] = ("not attempted", "", "")
                if len(questions) > 1 and questions[-1].answer:
                    last = questions[-1]
                    answers[last.answer_cell] = TYPO_CODE.format(answer=last.answer)
                    plan.expect[last.grade_id] = ("error", "", "NameError")
            elif role in ("crash", "loop") and questions and m_index == 0:
                # In the middle of the first module: earlier questions still score.
                q = questions[len(questions) // 2]
                answers[q.answer_cell] = CRASH_CODE if role == "crash" else LOOP_CODE
                plan.some = "error" if role == "crash" else "timeout"
                for earlier in questions[: len(questions) // 2]:
                    plan.expect[earlier.grade_id] = ("passed", "", "")
            elif role in ("crash", "loop"):
                plan.all_auto = "passed"
            elif role == "empty":
                answers = {}
                plan.all_auto = "not attempted"
            nb = _fill(release_nb, answers)
            folder = course_dir / "submitted" / resident.id / module
            _write_nb(nb, folder / f"{module}.ipynb")
            _write_exchange_files(folder, resident.id, module)
            plans.append(plan)
    return plans


def indistinguishable(course_dir: Path, module: str, resident: str, question: str,
                      mis_id: str) -> bool:
    """Whether a misconception's value equals the right answer on this resident's cohort.

    Then the variant is a right answer (e.g. "glucose >= 200" when no value is exactly 200)
    and ``passed`` is the correct grade. Read from the grader's reference cache.
    """
    from autograder.capture import misconception_key, read_answer
    from autograder.compare import matches

    src = _read_nb(course_dir / "source" / module / f"{module}.ipynb")
    compare = next((q.compare for q in questions_of(src) if q.grade_id == question), {})
    for folder in sorted((course_dir / ".drylab" / "reference" / module).glob(f"*/{resident}")):
        expected = read_answer(folder, question)
        value = read_answer(folder, misconception_key(question, mis_id))
        if matches(value, expected, compare):
            return True
    return False


def check_plans(plans: list[Plan], results,
                course_dir: Path | None = None) -> dict[tuple[str, str], list[str]]:
    """(resident, module) -> what differs from the plan (empty list: as expected).

    With ``course_dir``, a misconception variant that passed is accepted when its value is
    the right answer on that resident's cohort (:func:`indistinguishable`).
    """
    from autograder.export import manual_mask

    out: dict[tuple[str, str], list[str]] = {}
    results = results.assign(_manual=manual_mask(results))
    for plan in plans:
        rows = results.loc[(results["resident"] == plan.resident)
                           & (results["module"] == plan.module)]
        problems = []
        if rows.empty:
            out[(plan.resident, plan.module)] = ["not graded"]
            continue
        auto = rows.loc[~rows["_manual"]]
        status = dict(zip(rows["question"], rows["status"], strict=True))
        mis = dict(zip(rows["question"], rows["misconception"], strict=True))
        message = dict(zip(rows["question"], rows["message"], strict=True))
        if plan.all_auto and not (auto["status"] == plan.all_auto).all():
            problems.append(f"expected every question {plan.all_auto}, got "
                            + ", ".join(f"{q}={s}" for q, s in zip(auto["question"],
                                                                   auto["status"], strict=True)))
        if plan.some and plan.some not in set(auto["status"]):
            problems.append(f"expected a question with status {plan.some}")
        for q, (want, want_mis, want_msg) in plan.expect.items():
            got, got_mis, got_msg = status.get(q), mis.get(q, ""), message.get(q, "")
            if (got == "passed" and want == "failed" and want_mis and course_dir is not None
                    and indistinguishable(course_dir, plan.module, plan.resident, q, want_mis)):
                continue
            if got != want:
                problems.append(f"{q}: expected {want}, got {got} ({got_msg})")
                continue
            if want_msg and " ".join(want_msg.split()) not in " ".join(got_msg.split()):
                problems.append(f"{q}: expected a message with {want_msg!r}, got {got_msg!r}")
            if want_mis is not None and got_mis != want_mis:
                # A variant made from the hidden tests (no variants file, so no expected
                # message) may be caught by a public check before the value is compared,
                # e.g. a mean in mg/dL fails "between 1 and 30 mmol/L"; that check's own
                # message teaches, and no misconception is matched then, as designed.
                caught_by_check = (not want_msg and got_mis == ""
                                   and not got_msg.startswith("does not match"))
                if not caught_by_check:
                    problems.append(f"{q}: expected misconception {want_mis!r}, got {got_mis!r}")
        out[(plan.resident, plan.module)] = problems
    return out


# ----------------------------------------------------------------------------- orchestration


def default_course() -> Path:
    """``curriculum/`` when it has modules, else the autograder's fixture course.

    Raises
    ------
    FileNotFoundError
        Neither exists (the demo runs from a clone of the repository).
    """
    for candidate in (_REPO / "curriculum", _REPO / "tests" / "fixtures" / "course"):
        if any((candidate / "source").glob("*/*.ipynb")):
            return candidate
    raise FileNotFoundError(
        f"no course found: expected module notebooks in {_REPO / 'curriculum' / 'source'} "
        f"or {_REPO / 'tests' / 'fixtures' / 'course' / 'source'}; pass --course DIR"
    )


def prepare_course(course: Path, out: Path, modules: list[str] | None) -> list[str]:
    """Copy the course's configuration and chosen modules into ``out`` (replacing a demo).

    Raises
    ------
    ValueError
        ``out`` exists, is not empty and is not a folder an earlier demo made; or a module
        named in ``modules`` is not in the course.
    """
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ValueError(
            f"{out} exists and was not made by `drylab demo`; choose another --out or empty it"
        )
    known = sorted(p.parent.name for p in (course / "source").glob("*/*.ipynb")
                   if p.stem == p.parent.name)
    chosen = known if modules is None else list(modules)
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ValueError(f"unknown module(s) {unknown} in {course / 'source'}; known: {known}")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by `drylab demo`; the next demo replaces this folder\n")
    for name in ("nbgrader_config.py", "competencies.yml"):
        if (course / name).is_file():
            shutil.copy2(course / name, out / name)
    for module in chosen:
        shutil.copytree(course / "source" / module, out / "source" / module,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return chosen


def _cohort_options(course_dir: Path, modules: list[str]) -> dict | None:
    """Cohort options of the course's ``parameters`` cell, or None if it uses no cohort.

    Only literal ``n_patients`` / ``sites`` assignments are read, so the instructor's copy
    is the cohort the resident's notebook builds.
    """
    opts: dict = {}
    uses = False
    for module in modules:
        nb = _read_nb(course_dir / "source" / module / f"{module}.ipynb")
        for cell in nb.get("cells", []):
            text = _text(cell)
            uses = uses or "synthetic_data" in text
            if "parameters" in (cell.get("metadata", {}) or {}).get("tags", []):
                try:
                    body = ast.parse(text).body
                except SyntaxError:
                    continue
                for stmt in body:
                    if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                            and isinstance(stmt.targets[0], ast.Name)
                            and stmt.targets[0].id in ("n_patients", "sites")
                            and isinstance(stmt.value, ast.Constant)):
                        opts.setdefault(stmt.targets[0].id, stmt.value.value)
    return opts if uses else None


def _write_one_cohort(args: tuple[str, str, dict]) -> dict:
    resident, out, opts = args
    from synthetic_data.cohort import resident_seed
    from synthetic_data.io import write_cohort

    return write_cohort(out, opts.get("n_patients", 5000), sites=opts.get("sites", 3),
                        random_state=resident_seed(resident))


def generate_cohorts(course_dir: Path, modules: list[str], residents: list[str],
                     workers: int) -> str:
    """Write each resident's cohort (with truth and defect log) under ``cohorts/``.

    Returns a one-line summary. The instructor keeps these: the data-quality modules are
    marked against ``defects.parquet``; residents build the same cohort in their notebook.
    """
    opts = _cohort_options(course_dir, modules)
    if opts is None:
        return "skipped: the course's notebooks do not use synthetic_data"
    jobs = [(r, str(course_dir / "cohorts" / r), opts) for r in residents]
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            manifests = list(pool.map(_write_one_cohort, jobs))
    else:
        manifests = [_write_one_cohort(j) for j in jobs]
    persons = sorted({m["counts"]["person"] for m in manifests})
    defects = sum(sum(m["defect_counts"].values()) for m in manifests)
    return (f"{len(manifests)} cohorts ({persons[0]}-{persons[-1]} persons, "
            f"{opts.get('sites', 3)} sites, {defects:,} logged defects) -> cohorts/")


@dataclass
class DemoResult:
    """What the demo made and whether every resident scored as their role predicts."""

    course_dir: Path
    modules: list[str]
    plans: list[Plan]
    deviations: dict[tuple[str, str], list[str]]
    results: object = None
    grades: object = None
    report: Path | None = None
    feedback: list[Path] = field(default_factory=list)
    exports: object = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.deviations.values())


class _Phases:
    """Prints one line per phase: number, name, what it did, seconds.

    A phase with a progress bar of its own (``announce``) gets its line first, the bar
    under it, and its result and time on the line after the bar.
    """

    def __init__(self, total: int, stream):
        self.total, self.n, self.stream, self.timings = total, 0, stream, {}

    def run(self, name: str, fn, describe=lambda value: "", announce: str | None = None):
        self.n += 1
        head = f"[{self.n}/{self.total}] {name:<9}"
        if announce:
            print(f"{head} {announce}", file=self.stream, flush=True)
            head = " " * len(head)
        else:
            print(head, end=" ", file=self.stream, flush=True)
        t0 = time.perf_counter()
        value = fn()
        dt = time.perf_counter() - t0
        self.timings[name] = dt
        print(f"{describe(value):<72} {dt:6.1f} s" if not announce
              else f"{head} {describe(value):<72} {dt:6.1f} s", file=self.stream, flush=True)
        return value


#: One character per automatic question in the summary table.
SYMBOLS = {"passed": "+", "failed": "x", "error": "E", "timeout": "T", "not attempted": "."}
#: Submission statuses worth a word in the summary table.
_SUB_WORDS = {"kernel_died": "kernel died", "timeout": "stopped", "corrupt": "corrupt",
              "non_utf8": "not UTF-8", "wrong_name": "wrong name",
              "unknown_module": "unknown module", "grader_error": "GRADER ERROR"}


def summary_table(grades, results, plans: list[Plan],
                  deviations: dict[tuple[str, str], list[str]]) -> str:
    """Resident x module: automatic points and one symbol per question; role; as expected.

    ``grades`` is :func:`autograder.export.grades_table` of the results. Symbols (see
    :data:`SYMBOLS`): ``+`` passed, ``x`` failed, ``m`` failed with a misconception matched,
    ``E`` error, ``T`` timeout, ``.`` not attempted.
    """
    from autograder.export import manual_mask

    auto = results.loc[~manual_mask(results)]
    modules = sorted({p.module for p in plans})
    roles = {p.resident: p.role for p in plans}
    header = ["resident", "role", *modules, "as expected"]
    lines = []
    for resident in sorted(roles):
        row = [resident, roles[resident]]
        for module in modules:
            mine = auto.loc[(auto["resident"] == resident) & (auto["module"] == module)]
            g = grades.loc[(grades["resident"] == resident) & (grades["module"] == module)]
            sub = str(g["submission_status"].iloc[0]) if len(g) else ""
            symbols = "".join(
                "m" if s == "failed" and m else SYMBOLS.get(s, "?")
                for s, m in zip(mine["status"], mine["misconception"], strict=True)
            )
            cell = (f"{mine['points'].sum():g}/{mine['max_points'].sum():g} {symbols}"
                    if len(mine) else "-")
            if sub in _SUB_WORDS:
                cell += f" ({_SUB_WORDS[sub]})"
            row.append(cell)
        bad = [d for (r, _m), ds in deviations.items() if r == resident for d in ds]
        row.append("yes" if not bad else f"NO, {len(bad)} difference(s), listed below")
        lines.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    widths[-1] = len(header[-1])
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*row) for row in lines]
    return "\n".join(line.rstrip() for line in out)


def _describe_grading(summary) -> str:
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.by_status.items()))
    return f"{summary.graded} graded ({statuses}) -> .drylab/journal.jsonl, gradebook.db"


def _quiet(fn, *args, **kwargs):
    """Call ``fn`` without the warnings the demo reports itself or that only add noise.

    The unsandboxed fallback is printed by the demo from the grading summary (and shown as
    a banner in the report); SQLAlchemy's session warnings come from inside nbgrader's
    gradebook and say nothing to a reader of the demo.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="UNSANDBOXED")
        try:
            from sqlalchemy.exc import SAWarning
        except ImportError:
            pass
        else:
            warnings.filterwarnings("ignore", category=SAWarning)
        return fn(*args, **kwargs)


def _grade(course_dir: Path, *, workers, sandbox: str, cell_timeout):
    """Grade every submission through the grading core's Python API (with a tqdm bar)."""
    from autograder.grade import grade_course

    kwargs = {"sandbox": sandbox, "progress": True}
    if workers is not None:
        kwargs["workers"] = workers
    if cell_timeout is not None:
        kwargs["cell_timeout"] = cell_timeout
    return grade_course(course_dir, **kwargs)


def run_demo(out: str | os.PathLike = "demo", *, course: str | os.PathLike | None = None,
             modules: list[str] | None = None, workers: int | None = None,
             cell_timeout: float | None = None, sandbox: str = "auto",
             roster=ROSTER, cohorts: bool = True, stream=None) -> DemoResult:
    """Run the whole story and print it; returns what was made.

    Parameters
    ----------
    out : path
        Folder for the demo course (created; an earlier demo's folder is replaced).
    course : path, optional
        The course to demo (default :func:`default_course`).
    modules : list of str, optional
        Only these modules.
    workers : int, optional
        Parallel grading workers (default: the grading core's).
    cell_timeout : float, optional
        Per-cell timeout in seconds (default :data:`DEMO_CELL_TIMEOUT`): also how long the
        looping resident holds a worker.
    sandbox : {"auto", "bwrap", "none"}
        Passed to the grader; ``auto`` falls back to no sandbox with a loud warning.
    roster : sequence of Resident
        The simulated class (default :data:`ROSTER`).
    cohorts : bool
        Generate the residents' cohorts (instructor copies); skipped automatically for a
        course whose notebooks do not use ``synthetic_data``.
    stream : file, optional
        Where the phase lines and the summary go (default stdout).
    """
    stream = stream or sys.stdout
    out = Path(out)
    course = Path(course) if course is not None else default_course()
    cell_timeout = DEMO_CELL_TIMEOUT if cell_timeout is None else cell_timeout
    n_workers = workers or min(2, os.cpu_count() or 1)
    residents = [r.id for r in roster]
    phases = _Phases(8, stream)
    print(f"Dry Lab demo: course {course} -> {out}/ ({len(residents)} simulated residents)",
          file=stream)

    chosen = phases.run("course", lambda: prepare_course(course, out, modules),
                        lambda ms: f"{len(ms)} module(s): {', '.join(ms)}")
    phases.run("cohorts", lambda: generate_cohorts(out, chosen, residents, n_workers)
               if cohorts else "skipped", str)

    def _build():
        from autograder.build import build_course

        return build_course(out, chosen)

    phases.run("build", _build,
               lambda b: f"release/ for {len(b.modules)} module(s), "
                         f"{len(b.release_files)} file(s), checksums in .drylab/")
    plans = phases.run("class", lambda: simulate_class(out, chosen, roster),
                       lambda ps: f"{len(ps)} submissions in submitted/<resident>/<module>/")
    graded = phases.run(
        "grade", lambda: _quiet(_grade, out, workers=n_workers, sandbox=sandbox,
                                cell_timeout=cell_timeout),
        _describe_grading,
        announce=f"{len(plans)} submissions, {n_workers} workers, sandbox {sandbox}, "
                 f"cell timeout {cell_timeout:g} s")
    for warning in graded.warnings:
        print(f"  WARNING: {warning}", file=stream, flush=True)

    from autograder.export import grades_table, write_exports
    from autograder.feedback import write_feedback
    from autograder.journal import read_results, read_submissions
    from autograder.report import write_report

    results, subs = read_results(out), read_submissions(out)
    pages = phases.run("feedback", lambda: write_feedback(out, results, subs,
                                                          cell_timeout=cell_timeout),
                       lambda ps: f"{len(ps)} pages in feedback/<resident>/<module>/")
    exports = phases.run("export", lambda: write_exports(out, results, subs),
                         lambda _p: "export/grades.csv, export/questions.csv (+ .parquet)")
    report = phases.run("report", lambda: write_report(out, results, subs),
                        lambda p: str(p.relative_to(out)))
    deviations = check_plans(plans, results, out)
    grades = grades_table(results, subs)
    result = DemoResult(out, chosen, plans, deviations, results, grades, report, pages,
                        exports, phases.timings)

    print("", file=stream)
    print(summary_table(grades, results, plans, deviations), file=stream)
    for (resident, module), problems in sorted(deviations.items()):
        for problem in problems:
            print(f"  {resident}/{module}: {problem}", file=stream)
    print("", file=stream)
    print("Cells: automatic points / max, one symbol per question: + passed, x failed, "
          "m misconception matched,\n       E error, T timeout, . not attempted. Written "
          "answers wait for an instructor in formgrader.", file=stream)
    example = next((p for p in pages if "res04" in p.parts), pages[0] if pages else None)
    print("Open:", file=stream)
    print(f"  report    {report}", file=stream)
    if example is not None:
        print(f"  feedback  {example}  (one page per resident and module)", file=stream)
    print(f"  exports   {exports.grades_csv}, {exports.questions_csv}", file=stream)
    print(f"  grading   cd {out} && nbgrader formgrader   (written answers)", file=stream)
    total = sum(phases.timings.values())
    verdict = ("every resident scored as their role predicts" if result.ok
               else "SOME RESIDENTS DID NOT SCORE AS PREDICTED (see the table)")
    print(f"Done in {total:.0f} s: {verdict}.", file=stream)
    return result
