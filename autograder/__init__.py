"""Dry Lab's autograder: build a release, execute submissions, score, record.

The pipeline runs in one direction (see docs/grading-model.md)::

    build.py      source notebooks -> nbgrader release
    grade.py      discover submissions, run them in parallel, journal the results
      execute.py    one submission through papermill in a fresh (pooled) kernel
      kernels.py    kernel provisioning; the sandbox hook
      score.py      re-insert test cells, capture answers, compare outside the kernel
      reference.py  the instructor's answers per resident, cached
    journal.py    append-only results journal; ``read_results`` for feedback/export/report
    gradebook.py  scores into nbgrader's gradebook (formgrader)

Importing the package is cheap on purpose: nbformat, nbgrader and papermill are imported by
the modules that need them, never here.
"""

__all__ = ["RESULT_COLUMNS"]

#: Columns of one results row (one row per resident x module x question). The first eleven
#: are the contract's (docs/grading-model.md, "Results"); ``submission_status`` says what
#: happened to the whole submission (see :data:`autograder.journal.SUBMISSION_STATUSES`).
RESULT_COLUMNS = (
    "resident",
    "module",
    "question",
    "competencies",
    "points",
    "max_points",
    "status",
    "message",
    "misconception",
    "needs_manual",
    "cell_index",
    "submission_status",
)
