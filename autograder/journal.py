"""The grading journal: one JSON line per finished submission, appended with fsync.

The journal lives at ``COURSE_DIR/.drylab/journal.jsonl``. A line is written (and fsynced)
when a submission is completely scored and *before* its grades go into the gradebook, so the
journal is the record of truth: ``drylab grade --resume`` skips every (resident, module)
whose line is there, and a crash (even ``kill -9``) at any moment loses at most the
submissions that were still running, which the resumed run grades again. A line cut short by
the crash is not valid JSON; readers ignore it and :meth:`Journal.open` truncates it away
before appending, so no submission is ever counted twice.

A line looks like::

    {"resident": "r01", "module": "m1", "notebook": "m1.ipynb",
     "submission_status": "ok", "message": "", "sandbox": "none", "warnings": [],
     "submission_sha256": "...", "source_sha256": "...", "duration_s": 2.4,
     "finished": "2026-01-01T00:00:00+00:00", "rows": [{...one per question...}]}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autograder import RESULT_COLUMNS

#: What can happen to one submission as a whole (``submission_status``):
#:
#: ``ok``            executed and scored (questions may still have failed or errored);
#: ``timeout``       the wall-clock watchdog stopped it; questions after the stop are ``timeout``;
#: ``kernel_died``   the kernel died (os._exit, memory limit, ...); later questions are ``error``;
#: ``corrupt``       the .ipynb is not a readable notebook (bad JSON, not nbformat 4);
#: ``non_utf8``      the file is not UTF-8 text;
#: ``too_large``     the file is larger than the grader opens (see grade.MAX_NOTEBOOK_BYTES);
#: ``wrong_name``    the module folder holds no notebook named after the module;
#: ``missing_cells`` graded cells were deleted (they are restored from the source and graded;
#:                   this status is informational, scores stand);
#: ``unknown_module`` no source notebook for this module;
#: ``grader_error``  the grader itself failed on this submission (a bug: see ``message``).
SUBMISSION_STATUSES = (
    "ok",
    "timeout",
    "kernel_died",
    "corrupt",
    "non_utf8",
    "too_large",
    "wrong_name",
    "missing_cells",
    "unknown_module",
    "grader_error",
)

#: Per-question statuses, as in the contract.
QUESTION_STATUSES = (
    "passed",
    "failed",
    "error",
    "timeout",
    "not attempted",
    "needs manual grading",
    "graded by instructor",  # only in what autograder.gradebook.read_graded returns
)


def journal_path(course_dir: str | os.PathLike) -> Path:
    """Where the journal of a course lives."""
    return Path(course_dir) / ".drylab" / "journal.jsonl"


def iter_entries(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield the complete entries of a journal file, oldest first.

    A last line cut short by a crash (no newline, or not valid JSON) is skipped. A missing
    file yields nothing.
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # torn write at the end: the submission was not finished
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict) and "resident" in entry and "module" in entry:
                yield entry


def latest_entries(course_dir: str | os.PathLike) -> dict[tuple[str, str], dict[str, Any]]:
    """The last journal entry per (resident, module): a regrade supersedes older lines."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in iter_entries(journal_path(course_dir)):
        latest[(entry["resident"], entry["module"])] = entry
    return latest


class Journal:
    """Append-only writer for one course's journal.

    Parameters
    ----------
    course_dir : path
        The course; the journal is ``course_dir/.drylab/journal.jsonl``.
    fresh : bool
        Start a new journal (the old one is kept as ``journal.jsonl.<n>.bak``) instead of
        appending to it. ``drylab grade`` without ``--resume`` starts fresh.
    """

    def __init__(self, course_dir: str | os.PathLike, *, fresh: bool = False):
        self.path = journal_path(course_dir)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fresh and self.path.exists():
            n = 1
            while self.path.with_name(f"{self.path.name}.{n}.bak").exists():
                n += 1
            self.path.rename(self.path.with_name(f"{self.path.name}.{n}.bak"))
        self._truncate_torn_tail()
        self._fh = open(self.path, "ab")

    def _truncate_torn_tail(self) -> None:
        # A kill -9 during a write leaves a partial last line; appending after it would glue
        # the next entry onto garbage. Cut the file back to the last complete line.
        if not self.path.exists():
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)
                fh.flush()
                os.fsync(fh.fileno())

    def done(self) -> set[tuple[str, str]]:
        """(resident, module) pairs that already have a complete entry."""
        return {(e["resident"], e["module"]) for e in iter_entries(self.path)}

    def append(self, entry: dict[str, Any]) -> None:
        """Write one submission's entry durably (flush + fsync) before returning."""
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False, allow_nan=False)
        self._fh.write(line.encode("utf-8") + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_results(course_dir: str | os.PathLike):
    """All question rows of a course's latest grading, as a DataFrame.

    One row per (resident, module, question), from the last journal entry of each
    (resident, module); rows are sorted by resident, module, then the question's position in
    the notebook. Columns (exactly these, in this order):

    ============== ========= ===============================================================
    resident       str       the resident id (folder name under ``submitted/``)
    module         str       the module (folder name under ``source/``)
    question       str       nbgrader ``grade_id`` of the test or manual cell; ``""`` for
                             the single row of a submission that could not be graded at all
    competencies   str       competency tags, ``;``-separated (``""`` when none)
    points         float     points earned; manual cells 0 (the journal keeps the automatic
                             grading; ``autograder.gradebook.read_graded`` adds the scores
                             instructors entered in formgrader)
    max_points     float     points possible
    status         str       passed / failed / error / timeout / not attempted /
                             needs manual grading
    message        str       what the resident may see: a public check's message, the
                             exception name and value, or "does not match the expected
                             value"; never a hidden test's code or an expected value
    misconception  str       id of the matched misconception, ``""`` when none
    needs_manual   bool      True for manually graded cells
    cell_index     Int64     index of the cell in the graded notebook (<NA> when unknown)
    submission_status str    see :data:`SUBMISSION_STATUSES` (``ok`` for a normal run)
    ============== ========= ===============================================================

    A submission that cannot be graded (corrupt file, wrong name, unknown module) still
    gives one row per question of its module with status ``error``, 0 points and the reason
    in ``message``, so totals and maxima stay comparable between residents.

    Parameters
    ----------
    course_dir : path
        The course directory given to ``drylab grade``.

    Returns
    -------
    pandas.DataFrame
        Empty (with these columns) when nothing was graded yet.
    """
    import pandas as pd

    rows = []
    for entry in latest_entries(course_dir).values():
        for order, row in enumerate(entry.get("rows", [])):
            rec = {c: row.get(c) for c in RESULT_COLUMNS}
            rec["resident"] = entry["resident"]
            rec["module"] = entry["module"]
            rec["submission_status"] = entry.get("submission_status", "ok")
            rec["_order"] = order
            rows.append(rec)
    frame = pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "_order"])
    frame = frame.sort_values(["resident", "module", "_order"], kind="stable")
    frame = frame.drop(columns="_order").reset_index(drop=True)
    for col in ("resident", "module", "question", "status", "message", "misconception",
                "submission_status"):
        frame[col] = frame[col].fillna("").astype("str")
    frame["competencies"] = [
        ";".join(c) if isinstance(c, list) else (c or "") for c in frame["competencies"]
    ]
    frame["competencies"] = frame["competencies"].astype("str")
    frame["points"] = frame["points"].astype("float64")
    frame["max_points"] = frame["max_points"].astype("float64")
    frame["needs_manual"] = frame["needs_manual"].fillna(False).astype("bool")
    frame["cell_index"] = frame["cell_index"].astype("Int64")
    return frame


def read_submissions(course_dir: str | os.PathLike):
    """One row per graded submission: what happened to it as a whole.

    Columns: ``resident, module, notebook, submission_status, message, sandbox, warnings``
    (``;``-separated, e.g. the loud "unsandboxed" warning of ``--sandbox auto``),
    ``points, max_points, duration_s, finished``.
    """
    import pandas as pd

    recs = []
    for entry in latest_entries(course_dir).values():
        rows = entry.get("rows", [])
        recs.append(
            {
                "resident": entry["resident"],
                "module": entry["module"],
                "notebook": entry.get("notebook", ""),
                "submission_status": entry.get("submission_status", "ok"),
                "message": entry.get("message", ""),
                "sandbox": entry.get("sandbox", ""),
                "warnings": ";".join(entry.get("warnings", [])),
                "points": float(sum(r.get("points") or 0 for r in rows)),
                "max_points": float(sum(r.get("max_points") or 0 for r in rows)),
                "duration_s": float(entry.get("duration_s") or 0.0),
                "finished": entry.get("finished", ""),
            }
        )
    cols = ["resident", "module", "notebook", "submission_status", "message", "sandbox",
            "warnings", "points", "max_points", "duration_s", "finished"]
    frame = pd.DataFrame(recs, columns=cols)
    return frame.sort_values(["resident", "module"]).reset_index(drop=True)
