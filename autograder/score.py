"""Scoring: from a submitted notebook to one result row per question.

Three steps, each a function, in the order grade.py runs them:

1. :func:`sanitize` - nbgrader's ``ClearOutput`` / ``DeduplicateIds`` / ``OverwriteKernelspec``
   / ``OverwriteCells`` (with ``add_missing_cells``) semantics, against the *source* notebook:
   locked cells (setup, tests) get the source's text back, points / cell types / locked flags
   are restored, unknown grade ids are dropped, deleted graded cells are restored. Added cells
   are kept.
2. :func:`add_capture_cells` - after each Dry Lab test cell, a capture cell that writes the
   answer variable (see :mod:`autograder.capture`).
3. :func:`score_notebook` - status and points per question from the executed notebook, the
   captured answers and the reference answers (the first matching status wins):

   ``timeout``        execution stopped by the cell timeout or watchdog at or before the cell;
   ``error``          the kernel died at or before the cell;
   ``not attempted``  the answer is ``None`` / missing and the answer cell is unchanged from
                      the release (for plain nbgrader cells: unchanged answer cell and no
                      points), checked before the test cell's own exception so that a check
                      tripping over ``None`` does not count as an error;
   ``error``          the test cell raised something other than ``AssertionError``;
   ``failed``         a check raised ``AssertionError`` (message: the assert's message, or
                      "a hidden check failed" when it was raised in the hidden region), or the
                      captured answer differs from the reference under ``compare`` (plus the
                      misconception's message when it matches a misconception's value);
   ``passed``         full points;
   ``needs manual grading`` manual (written) answers that were changed from the release.

Plain nbgrader test cells (no ``metadata.drylab``) get exactly ``nbgrader.utils.determine_grade``'s
points (error output or stderr -> 0, a numeric result -> partial credit, else full points).
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field

from autograder.capture import CAPTURE_TAG, Missing, capture_cell, misconception_key
from autograder.compare import matches

INJECTED_TAG = "injected-parameters"
NOT_MATCHING = "does not match the expected value"


@dataclass
class Question:
    """One graded cell of the source notebook."""

    grade_id: str
    kind: str  # "test", "manual" or "task"
    max_points: float
    source_index: int
    drylab: dict = field(default_factory=dict)
    answer_id: str | None = None  # grade_id of the solution cell it checks (tests only)
    hidden_lines: tuple[int, int] | None = None  # 1-based, inclusive

    @property
    def competencies(self) -> list[str]:
        return list(self.drylab.get("competencies", []))


@dataclass
class ModuleSpec:
    """What the grader needs from a module's source notebook."""

    module: str
    source_nb: object
    release_nb: object
    questions: list[Question]
    nbgrader_cells: dict  # grade_id -> source cell (any nbgrader cell)
    release_cells: dict  # grade_id -> release cell
    order: list[str]  # grade ids of nbgrader cells, source order
    release_checksums: dict  # grade_id -> nbgrader checksum of the release cell
    source_sha256: str
    is_drylab: bool
    has_parameters: bool = True  # the source has a papermill ``parameters`` cell

    def capture_targets(self, question: Question, *, reference: bool) -> dict[str, str]:
        answer = question.drylab.get("answer")
        targets = {question.grade_id: answer} if answer else {}
        if reference:
            for mis in question.drylab.get("misconceptions", []):
                targets[misconception_key(question.grade_id, mis["id"])] = mis["value_from"]
        return targets


def _nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _is_grade(cell) -> bool:
    return bool(_nbg(cell).get("grade"))


def _is_solution(cell) -> bool:
    return bool(_nbg(cell).get("solution"))


def _is_locked(cell) -> bool:
    nbg = _nbg(cell)
    if _is_solution(cell):
        return False
    return bool(nbg.get("locked")) or _is_grade(cell)


def _is_task(cell) -> bool:
    return bool(_nbg(cell).get("task"))


def _hidden_range(source: str, begin: str = "BEGIN HIDDEN TESTS",
                  end: str = "END HIDDEN TESTS") -> tuple[int, int] | None:
    lines = source.split("\n")
    start = next((i for i, line in enumerate(lines) if begin in line), None)
    if start is None:
        return None
    stop = next((i for i, line in enumerate(lines) if end in line and i > start), len(lines) - 1)
    return start + 1, stop + 1


def parse_source(module: str, source_text: str, nbgrader_config=None) -> ModuleSpec:
    """Read a module's source notebook into a :class:`ModuleSpec`.

    Parameters
    ----------
    module : str
    source_text : str
        The source notebook's JSON text.
    nbgrader_config : traitlets Config, optional
        The course's nbgrader configuration (for ``ClearSolutions.code_stub``).
    """
    import nbformat
    from nbgrader.preprocessors import ClearSolutions

    source_nb = nbformat.reads(source_text, as_version=4)
    release_nb = copy.deepcopy(source_nb)
    kwargs = {"config": nbgrader_config} if nbgrader_config is not None else {}
    release_nb, _ = ClearSolutions(**kwargs).preprocess(release_nb, {})
    questions, cells, release, order = [], {}, {}, []
    last_solution = None
    for index, (cell, rcell) in enumerate(zip(source_nb.cells, release_nb.cells, strict=True)):
        nbg = _nbg(cell)
        gid = nbg.get("grade_id")
        if not gid or not (_is_grade(cell) or _is_solution(cell) or _is_locked(cell)
                           or _is_task(cell)):
            continue
        cells[gid], release[gid] = cell, rcell
        order.append(gid)
        drylab = dict(cell.metadata.get("drylab", {}) or {})
        if _is_solution(cell) and not _is_grade(cell):
            last_solution = gid
        if _is_grade(cell) and not _is_solution(cell) and cell.cell_type == "code":
            questions.append(Question(gid, "test", float(nbg.get("points", 0)), index, drylab,
                                      answer_id=last_solution,
                                      hidden_lines=_hidden_range(cell.source)))
        elif _is_grade(cell):
            questions.append(Question(gid, "manual", float(nbg.get("points", 0)), index, drylab))
        elif _is_task(cell):
            questions.append(Question(gid, "task", float(nbg.get("points", 0)), index, drylab))
    return ModuleSpec(
        module=module,
        source_nb=source_nb,
        release_nb=release_nb,
        questions=questions,
        nbgrader_cells=cells,
        release_cells=release,
        order=order,
        release_checksums={gid: _checksum(c) for gid, c in release.items()},
        source_sha256=hashlib.sha256(source_text.encode("utf-8")).hexdigest(),
        is_drylab=any(q.drylab.get("answer") for q in questions),
        has_parameters=any("parameters" in c.metadata.get("tags", []) for c in source_nb.cells),
    )


# --------------------------------------------------------------------------- sanitize
def _checksum(cell) -> str:
    from nbgrader.utils import compute_checksum

    return compute_checksum(cell)


def _restored_cell(spec: ModuleSpec, gid: str):
    """The release version of a source cell (hidden tests kept: nbgrader's SaveCells view)."""
    src = spec.nbgrader_cells[gid]
    cell = copy.deepcopy(spec.release_cells[gid] if _is_solution(src) else src)
    cell.metadata["nbgrader"]["checksum"] = spec.release_checksums[gid]
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    cell.metadata.pop("drylab", None)
    return cell


def sanitize(sub_nb, spec: ModuleSpec) -> tuple[object, list[str]]:
    """Make a submitted notebook gradable, as nbgrader's sanitize preprocessors do.

    Returns
    -------
    (nb, restored)
        A new notebook, and the grade ids of graded cells that were missing and restored.
    """
    nb = copy.deepcopy(sub_nb)
    nb.metadata["kernelspec"] = copy.deepcopy(spec.source_nb.metadata.get("kernelspec", {}))
    for cell in nb.cells:  # ClearOutput
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        for key in ("papermill", "drylab", "execution"):
            cell.metadata.pop(key, None)
        tags = cell.metadata.get("tags")
        if isinstance(tags, list) and (CAPTURE_TAG in tags or INJECTED_TAG in tags):
            cell.metadata["tags"] = [t for t in tags if t not in (CAPTURE_TAG, INJECTED_TAG)]
    seen = set()  # DeduplicateIds: the last occurrence of a grade id keeps it
    for cell in reversed(nb.cells):
        nbg = _nbg(cell)
        gid = nbg.get("grade_id")
        if gid is None:
            continue
        if gid in seen:
            cell.metadata["nbgrader"] = {}
        seen.add(gid)
    for cell in nb.cells:  # OverwriteCells
        nbg = _nbg(cell)
        gid = nbg.get("grade_id")
        if gid is None:
            continue
        if gid not in spec.nbgrader_cells:
            del cell.metadata["nbgrader"]["grade_id"]
            continue
        src = spec.nbgrader_cells[gid]
        if cell.cell_type != src.cell_type:
            cell.cell_type = src.cell_type
            if src.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
            else:
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
        # Every nbgrader field comes from the source (points, grade, solution, locked); the
        # checksum is the release cell's, as nbgrader's gradebook holds it.
        cell.metadata["nbgrader"] = copy.deepcopy(_nbg(src))
        cell.metadata["nbgrader"]["checksum"] = spec.release_checksums[gid]
        if _is_locked(src):
            cell.source = src.source
    restored = _restore_missing(nb, spec)
    return nb, restored


def _restore_missing(nb, spec: ModuleSpec) -> list[str]:
    present = {_nbg(c).get("grade_id") for c in nb.cells if _nbg(c).get("grade_id")}
    restored = []
    for i, gid in enumerate(spec.order):
        if gid in present:
            continue
        src = spec.nbgrader_cells[gid]
        graded = _is_grade(src) or _is_task(src)
        # nbgrader restores graded cells; a Dry Lab notebook also needs its setup and answer
        # cells back to be gradable at all.
        if not (graded or spec.is_drylab):
            continue
        cell = _restored_cell(spec, gid)
        prev = next((p for p in reversed(spec.order[:i]) if p in present), None)
        if prev is None:
            at = 0
        else:
            at = 1 + max(j for j, c in enumerate(nb.cells) if _nbg(c).get("grade_id") == prev)
        nb.cells.insert(at, cell)
        present.add(gid)
        if graded:
            restored.append(gid)
    return restored


def add_capture_cells(nb, spec: ModuleSpec, *, reference: bool = False):
    """Insert a capture cell after each Dry Lab test cell (in place; returns ``nb``)."""
    by_id = {q.grade_id: q for q in spec.questions}
    out = []
    for cell in nb.cells:
        out.append(cell)
        q = by_id.get(_nbg(cell).get("grade_id"))
        if q is not None and q.kind == "test":
            targets = spec.capture_targets(q, reference=reference)
            if targets:
                out.append(capture_cell(targets))
    nb.cells = out
    return nb


def strip_grader_cells(nb):
    """A copy of an executed notebook without the capture cells (for formgrader)."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if CAPTURE_TAG not in c.metadata.get("tags", [])]
    return nb


# --------------------------------------------------------------------------- score
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _error_line(output) -> int | None:
    """The line (1-based, in the cell) an IPython traceback points at, if it says."""
    text = _ANSI.sub("", "\n".join(output.get("traceback", [])))
    hits = re.findall(r"^-+>\s*(\d+)", text, flags=re.MULTILINE)
    return int(hits[0]) if hits else None


def _first_error(cell):
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return out
    return None


def _row(spec, q, *, points=0.0, status, message="", misconception="", needs_manual=False,
         cell_index=None):
    return {
        "question": q.grade_id,
        "competencies": q.competencies,
        "points": float(points),
        "max_points": q.max_points,
        "status": status,
        "message": message,
        "misconception": misconception,
        "needs_manual": needs_manual,
        "cell_index": cell_index,
    }


def rows_for_unscorable(spec: ModuleSpec, status: str, message: str) -> list[dict]:
    """Rows of a submission that could not be run at all: every question, 0 points."""
    return [
        _row(spec, q, status=status, message=message, needs_manual=False)
        for q in spec.questions
    ]


def _unchanged(cell, spec: ModuleSpec, gid: str | None) -> bool:
    if gid is None or cell is None:
        return False
    return cell.source.strip() == spec.release_cells[gid].source.strip()


def score_notebook(executed, spec: ModuleSpec, answers: dict, reference: dict,
                   *, stopped_at: int | None = None, stop_reason: str | None = None) -> list[dict]:
    """One row per question of the module.

    Parameters
    ----------
    executed : NotebookNode
        The executed notebook (with injected-parameters and capture cells).
    spec : ModuleSpec
    answers : dict
        ``grade_id -> captured value`` from the resident's run (:class:`Missing` when absent).
    reference : dict
        ``key -> value`` from the reference run (answers and misconception values).
    stopped_at, stop_reason :
        From :class:`autograder.execute.ExecutionResult`.
    """
    from nbgrader.utils import determine_grade

    positions, cells_by_id, visible = {}, {}, 0
    for i, cell in enumerate(executed.cells):
        tags = cell.metadata.get("tags", [])
        if CAPTURE_TAG in tags or INJECTED_TAG in tags:
            continue
        gid = _nbg(cell).get("grade_id")
        if gid:
            positions[gid] = (i, visible)
            cells_by_id[gid] = cell
        visible += 1
    rows = []
    for q in spec.questions:
        i, shown = positions[q.grade_id]
        cell = cells_by_id[q.grade_id]
        kw = {"cell_index": shown}
        if q.kind in ("manual", "task"):
            if q.kind == "manual" and _nbg(cell).get("checksum") == _checksum(cell):
                rows.append(_row(spec, q, status="not attempted",
                                 message="no answer was written", **kw))
            else:
                rows.append(_row(spec, q, status="needs manual grading", needs_manual=True, **kw))
            continue
        if stopped_at is not None and i >= stopped_at:
            if stop_reason == "timeout":
                rows.append(_row(spec, q, status="timeout", message=(
                    f"the notebook was stopped at cell {_shown(positions, stopped_at, executed)}"
                    " for running too long"), **kw))
            else:
                rows.append(_row(spec, q, status="error", message=(
                    f"the kernel died at cell {_shown(positions, stopped_at, executed)}"), **kw))
            continue
        answer_cell = cells_by_id.get(q.answer_id) if q.answer_id else None
        unchanged = _unchanged(answer_cell, spec, q.answer_id)
        error = _first_error(cell)
        if q.drylab.get("answer"):
            rows.append(_score_drylab(spec, q, cell, error, answers, reference, unchanged, kw))
        else:
            rows.append(_score_plain(spec, q, cell, error, unchanged, determine_grade, kw))
    return rows


def _shown(positions, stopped_at: int, executed) -> int:
    visible = 0
    for i, cell in enumerate(executed.cells):
        tags = cell.metadata.get("tags", [])
        if CAPTURE_TAG in tags or INJECTED_TAG in tags:
            continue
        if i >= stopped_at:
            return visible
        visible += 1
    return visible


def _error_message(q: Question, error, shown: int) -> tuple[str, str]:
    """(status, message) for a test cell's error output."""
    ename, evalue = error.get("ename", "Error"), str(error.get("evalue", ""))
    if ename == "CellTimeoutError":
        return "timeout", f"cell {shown} ran longer than the cell timeout"
    if ename == "AssertionError":
        line = _error_line(error)
        hidden = q.hidden_lines and line and q.hidden_lines[0] <= line <= q.hidden_lines[1]
        if hidden or not evalue:
            return "failed", "a hidden check failed" if hidden else "a check failed"
        return "failed", evalue
    evalue = evalue if len(evalue) <= 300 else evalue[:300] + "..."
    return "error", f"{ename}: {evalue} (in cell {shown})"


def _score_drylab(spec, q, cell, error, answers, reference, unchanged, kw) -> dict:
    answer = answers.get(q.grade_id, Missing())
    empty = answer is None or (isinstance(answer, Missing)
                               and not type(answer).__name__ == "Unsupported")
    if empty and (unchanged or q.answer_id is None):
        return _row(spec, q, status="not attempted",
                    message=f"{q.drylab['answer']} has no answer yet", **kw)
    compare = q.drylab.get("compare", {"kind": "exact"})
    mis = _misconception(q, answer, reference, compare)
    if error is not None:
        status, message = _error_message(q, error, kw["cell_index"])
        if status == "failed" and mis is not None:
            # A public check caught it, and we know which mistake it is: say so.
            return _row(spec, q, status="failed", message=f"{message}. {mis['message']}",
                        misconception=mis["id"], **kw)
        return _row(spec, q, status=status, message=message, **kw)
    expected = reference.get(q.grade_id, Missing("no reference"))
    if isinstance(expected, Missing):
        return _row(spec, q, status="error",
                    message="the grader has no reference answer for this question", **kw)
    if matches(answer, expected, compare):
        return _row(spec, q, points=q.max_points, status="passed", **kw)
    if mis is not None:
        return _row(spec, q, status="failed", message=f"{NOT_MATCHING}. {mis['message']}",
                    misconception=mis["id"], **kw)
    return _row(spec, q, status="failed", message=NOT_MATCHING, **kw)


def _misconception(q: Question, answer, reference: dict, compare: dict) -> dict | None:
    """The first misconception whose value the answer matches, if any."""
    for mis in q.drylab.get("misconceptions", []):
        value = reference.get(misconception_key(q.grade_id, mis["id"]), Missing())
        if matches(answer, value, compare):
            return mis
    return None


def _score_plain(spec, q, cell, error, unchanged, determine_grade, kw) -> dict:
    points, _ = determine_grade(cell)
    points = float(points or 0.0)
    if points >= q.max_points:
        return _row(spec, q, points=points, status="passed", **kw)
    if unchanged and points == 0:
        return _row(spec, q, status="not attempted", message="no answer yet", **kw)
    if error is not None:
        status, message = _error_message(q, error, kw["cell_index"])
        return _row(spec, q, points=points, status=status, message=message, **kw)
    if points == 0:
        return _row(spec, q, status="failed", message="the cell wrote to stderr", **kw)
    return _row(spec, q, points=points, status="failed",
                message=f"partial credit: {points:g} of {q.max_points:g}", **kw)
