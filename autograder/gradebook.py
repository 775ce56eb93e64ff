"""Scores into nbgrader's gradebook, through nbgrader's ``Gradebook`` API.

Written only by the grading process (never by workers), after the journal line is durable.
Writing an entry sets values (``auto_score``, ``needs_manual_grade``, the "No response."
comment), so doing it twice gives the same gradebook: a resumed batch can re-record
everything the journal holds. Manual scores entered in formgrader are never overwritten, and
a question an instructor already scored by hand stays flagged for review when its
auto-score changes, exactly as nbgrader's ``SaveAutoGrades`` does.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path

from autograder import course as _course
from autograder.journal import latest_entries

#: Submission statuses whose rows are not recorded (there is no assignment to attach them to).
UNRECORDED = ("unknown_module",)


def _gradebook(course_dir):
    from nbgrader.api import Gradebook

    cfg = _course.load_config(course_dir)
    course_id = cfg.CourseDirectory.get("course_id", "") or ""
    return Gradebook(_course.db_url(course_dir), course_id=course_id)


def known_assignments(course_dir: str | os.PathLike) -> set[str]:
    """Assignment (module) names in the course's gradebook (empty when there is none)."""
    if not (Path(course_dir) / "gradebook.db").exists():
        return set()
    with _gradebook(course_dir) as gb:
        return {a.name for a in gb.assignments}


def _timestamp(course_dir: Path, entry: dict):
    path = course_dir / "submitted" / entry["resident"] / entry["module"] / "timestamp.txt"
    if not path.is_file():
        return None
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(path.read_text(encoding="utf-8").strip())
    except Exception:  # noqa: BLE001 - a bad timestamp is no reason to lose the grades
        return None


def _record(gb, course_dir: Path, entry: dict) -> None:
    from nbgrader.api import MissingEntry

    if entry.get("submission_status") in UNRECORDED:
        return
    resident, module = entry["resident"], entry["module"]
    gb.update_or_create_student(resident)
    kwargs = {}
    ts = _timestamp(course_dir, entry)
    if ts is not None:
        kwargs["timestamp"] = ts
    gb.update_or_create_submission(module, resident, **kwargs)
    for row in entry.get("rows", []):
        if not row.get("question"):
            continue
        try:
            grade = gb.find_grade(row["question"], module, module, resident)
        except MissingEntry:
            continue
        if row.get("needs_manual"):
            grade.auto_score = None
        else:
            grade.auto_score = float(row.get("points") or 0.0)
        grade.needs_manual_grade = (grade.manual_score is not None
                                    or grade.auto_score is None)
        if row.get("status") == "not attempted":
            try:
                comment = gb.find_comment(row["question"], module, module, resident)
                comment.auto_comment = "No response."
            except MissingEntry:
                pass
    gb.db.commit()


@contextmanager
def _quiet():
    # nbgrader's update_or_create_submission trips SQLAlchemy's autoflush warning on every
    # new submission; it is harmless (nbgrader's own autograde shows it too).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not in session.*")
        yield


class GradebookWriter:
    """One open gradebook for a whole batch (opening nbgrader's Gradebook costs ~0.3 s).

    Use as a context manager; :meth:`record` writes one journal entry.
    """

    def __init__(self, course_dir: str | os.PathLike):
        self.course_dir = Path(course_dir)
        self._gb = None

    def __enter__(self) -> GradebookWriter:
        self._gb = _gradebook(self.course_dir)
        return self

    def record(self, entry: dict) -> None:
        with _quiet():
            _record(self._gb, self.course_dir, entry)

    def __exit__(self, *exc) -> None:
        if self._gb is not None:
            self._gb.close()
            self._gb = None


def sync_gradebook(course_dir: str | os.PathLike) -> int:
    """Re-record the latest journal entry of every submission; returns how many."""
    course_dir = Path(course_dir)
    entries = list(latest_entries(course_dir).values())
    if not entries:
        return 0
    with _quiet(), _gradebook(course_dir) as gb:
        for entry in entries:
            _record(gb, course_dir, entry)
    return len(entries)


def _grades(course_dir):
    """``((resident, module, grade_id), nbgrader Grade)`` for every grade in the gradebook."""
    with _gradebook(course_dir) as gb:
        for assignment in gb.assignments:
            for sub in assignment.submissions:
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        yield (sub.student.id, assignment.name, grade.name), grade


def gradebook_scores(course_dir: str | os.PathLike) -> dict:
    """``{(resident, module, grade_id): score}`` from the gradebook (manual score if given,
    else auto score; ``None`` when neither), e.g. to compare with ``nbgrader autograde``."""
    return {key: grade.score for key, grade in _grades(course_dir)}


#: The status of a question an instructor scored in formgrader (manual answers, or an
#: automatic score the instructor overrode).
INSTRUCTOR_STATUS = "graded by instructor"


def instructor_scores(course_dir: str | os.PathLike) -> dict:
    """``{(resident, module, grade_id): manual score}`` for every score an instructor entered
    in formgrader (empty when there is no gradebook)."""
    if not (Path(course_dir) / "gradebook.db").exists():
        return {}
    return {key: float(grade.manual_score) for key, grade in _grades(course_dir)
            if grade.manual_score is not None}


def read_graded(course_dir: str | os.PathLike, submissions=None):
    """``(results, submissions)`` of a course, as exports, feedback and the report show them.

    The journal's latest grading (:func:`autograder.journal.read_results` and
    ``read_submissions``), with the scores instructors entered in formgrader: such a question
    gets the instructor's points and the status :data:`INSTRUCTOR_STATUS`, and the
    submission's total follows. The journal itself keeps the automatic grading.
    """
    from autograder.journal import read_results, read_submissions

    results = read_results(course_dir)
    if submissions is None:
        submissions = read_submissions(course_dir)
    scores = instructor_scores(course_dir)
    if not scores or results.empty:
        return results, submissions
    keys = list(zip(results["resident"], results["module"], results["question"], strict=True))
    hit = [k in scores for k in keys]
    results = results.copy()
    results.loc[hit, "points"] = [scores[k] for k, h in zip(keys, hit, strict=True) if h]
    results.loc[hit, "status"] = INSTRUCTOR_STATUS
    if submissions is not None and not submissions.empty:
        totals = results.groupby(["resident", "module"])["points"].sum()
        submissions = submissions.copy()
        submissions["points"] = [
            float(totals.get((r, m), p)) for r, m, p in
            zip(submissions["resident"], submissions["module"], submissions["points"],
                strict=True)]
    return results, submissions

