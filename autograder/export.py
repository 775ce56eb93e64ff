"""Exports for instructors and registrars: ``grades`` and ``questions`` as CSV and Parquet.

``grades``     one row per resident x module: total, max, a status and per-status counts;
               every resident gets a row for every module, ``not submitted`` where no
               submission was graded, so a spreadsheet pivot has no holes.
``questions``  one row per resident x module x question: the results rows of the journal
               (competency tags ``;``-separated).

Rows are sorted (resident, module, then notebook order) and the files are written the same
way every time, so two exports of the same journal are byte-identical.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from autograder import RESULT_COLUMNS

__all__ = ["GRADE_COLUMNS", "ExportPaths", "grades_table", "manual_mask", "questions_table",
           "write_exports"]

#: Columns of ``grades.csv``.
GRADE_COLUMNS = (
    "resident",
    "module",
    "total",
    "max",
    "status",
    "submission_status",
    "passed",
    "failed",
    "error",
    "timeout",
    "not_attempted",
    "needs_manual",
)

#: Submission statuses after which the submission is reported as an error as a whole.
_COUNTS = ("passed", "failed", "error", "timeout", "not_attempted", "needs_manual")

_SUBMISSION_ERRORS = {"kernel_died", "corrupt", "non_utf8", "wrong_name", "unknown_module",
                      "grader_error"}


def _submission_grade_status(sub_status: str, statuses: list[str]) -> str:
    """One word for a whole submission, most urgent first.

    ``error`` (the submission could not be run to the end: kernel died, unreadable file, ...),
    ``timeout``, ``not attempted`` (no automatic question attempted), ``needs manual
    grading`` (automatic part done, written answers pending), ``graded``.
    """
    if sub_status in _SUBMISSION_ERRORS:
        return "error"
    if sub_status == "timeout" or "timeout" in statuses:
        return "timeout"
    auto = [s for s in statuses if s != "needs manual grading"]
    if auto and all(s == "not attempted" for s in auto):
        return "not attempted"
    if "needs manual grading" in statuses:
        return "needs manual grading"
    return "graded"


def manual_mask(results):
    """Boolean Series: which rows are manually graded questions.

    ``needs_manual`` marks them, but a manual answer left empty may come back as ``not
    attempted`` without the flag; a question flagged manual for anyone is manual for all.
    """
    import pandas as pd

    flagged = results.loc[results["needs_manual"], ["module", "question"]]
    keys = set(zip(flagged["module"], flagged["question"], strict=True))
    pairs = zip(results["module"], results["question"], strict=True)
    flag = [pair in keys for pair in pairs]
    return results["needs_manual"] | pd.Series(flag, index=results.index, dtype="bool")


def questions_table(results):
    """The per-question export: the results rows, sorted, with the contract's columns.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows as returned by :func:`autograder.journal.read_results`.
    """
    missing = set(RESULT_COLUMNS) - set(results.columns)
    if missing:
        raise ValueError(f"results lack the columns {sorted(missing)}")
    frame = results.loc[:, list(RESULT_COLUMNS)].copy()
    frame = frame.sort_values(
        ["resident", "module", "cell_index", "question"], kind="stable", na_position="last"
    )
    return frame.reset_index(drop=True)


def grades_table(results, submissions=None):
    """The per-module export: one row per resident x module (see :data:`GRADE_COLUMNS`).

    ``total`` and ``max`` sum every question, manual ones included (a manual question counts
    0 until graded in formgrader). Pairs without a graded submission get ``not submitted``,
    ``total`` 0 and the module's usual ``max``.

    Parameters
    ----------
    results : pandas.DataFrame
        :func:`autograder.journal.read_results` rows.
    submissions : pandas.DataFrame, optional
        :func:`autograder.journal.read_submissions` rows. A submission the grader journaled
        without question rows (its worker died) then counts as ``error`` instead of ``not
        submitted``.
    """
    import pandas as pd

    questions = questions_table(results)
    recs = []
    if submissions is not None and len(submissions):
        seen = set(zip(questions["resident"], questions["module"], strict=True))
        for sub in submissions.itertuples():
            if (sub.resident, sub.module) not in seen:
                recs.append({"resident": sub.resident, "module": sub.module, "total": 0.0,
                             "max": float("nan"), "submission_status": sub.submission_status,
                             "status": _submission_grade_status(sub.submission_status, []),
                             **dict.fromkeys(_COUNTS, 0)})
    for (resident, module), rows in questions.groupby(["resident", "module"], sort=True):
        statuses = rows["status"].tolist()
        sub_status = str(rows["submission_status"].iloc[0])
        recs.append(
            {
                "resident": resident,
                "module": module,
                "total": float(rows["points"].sum()),
                "max": float(rows["max_points"].sum()),
                "status": _submission_grade_status(sub_status, statuses),
                "submission_status": sub_status,
                "passed": statuses.count("passed"),
                "failed": statuses.count("failed"),
                "error": statuses.count("error"),
                "timeout": statuses.count("timeout"),
                "not_attempted": statuses.count("not attempted"),
                "needs_manual": statuses.count("needs manual grading"),
            }
        )
    grades = pd.DataFrame(recs, columns=list(GRADE_COLUMNS))
    grades = grades.sort_values(["resident", "module"], kind="stable")
    if grades.empty:
        return grades.astype({"resident": "str", "module": "str", "status": "str",
                              "submission_status": "str", "total": "float64",
                              "max": "float64"})
    # A module's maximum is the same for everyone; the most common value guards against one
    # odd row (an ungradeable submission with no question rows).
    module_max = grades.groupby("module")["max"].agg(
        lambda s: s.mode().iloc[0] if s.notna().any() else 0.0)
    full = pd.MultiIndex.from_product(
        [sorted(grades["resident"].unique()), sorted(grades["module"].unique())],
        names=["resident", "module"],
    ).to_frame(index=False)
    grades = full.merge(grades, on=["resident", "module"], how="left")
    grades["total"] = grades["total"].fillna(0.0)
    grades["max"] = grades["max"].fillna(grades["module"].map(module_max))
    grades["status"] = grades["status"].fillna("not submitted")
    grades["submission_status"] = grades["submission_status"].fillna("")
    grades[list(_COUNTS)] = grades[list(_COUNTS)].fillna(0).astype("int64")
    grades = grades.astype({"resident": "str", "module": "str", "status": "str",
                            "submission_status": "str", "total": "float64", "max": "float64"})
    return grades.loc[:, list(GRADE_COLUMNS)].reset_index(drop=True)


@dataclass(frozen=True)
class ExportPaths:
    """Where :func:`write_exports` put the files."""

    grades_csv: Path
    grades_parquet: Path
    questions_csv: Path
    questions_parquet: Path


def _write_frame(frame, csv_path: Path, parquet_path: Path) -> None:
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    # "\n" line ends and a fixed float format keep the CSV identical on every platform.
    frame.to_csv(csv_path, index=False, lineterminator="\n", float_format="%g")
    frame.to_parquet(parquet_path, index=False, engine="pyarrow")


def write_exports(course_dir: str | os.PathLike, results=None, submissions=None, *,
                  out_dir=None) -> ExportPaths:
    """Write ``grades`` and ``questions`` as CSV and Parquet.

    Parameters
    ----------
    course_dir : path
        The graded course; its journal is read when ``results`` is omitted.
    results : pandas.DataFrame, optional
        Results rows (:func:`autograder.journal.read_results`).
    submissions : pandas.DataFrame, optional
        :func:`autograder.journal.read_submissions` rows; read with the results when both
        are omitted.
    out_dir : path, optional
        Where to write; default ``COURSE_DIR/export``.
    """
    course_dir = Path(course_dir)
    if results is None:
        from autograder.gradebook import read_graded

        results, submissions = read_graded(course_dir, submissions)
    out = Path(out_dir) if out_dir is not None else course_dir / "export"
    paths = ExportPaths(
        out / "grades.csv", out / "grades.parquet", out / "questions.csv",
        out / "questions.parquet",
    )
    _write_frame(grades_table(results, submissions), paths.grades_csv, paths.grades_parquet)
    _write_frame(questions_table(results), paths.questions_csv, paths.questions_parquet)
    return paths
