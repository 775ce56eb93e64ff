"""Differential test: on plain nbgrader notebooks, ``drylab grade`` gives exactly the per-cell
scores of stock ``nbgrader autograde`` (with nbgrader's ``add_missing_cells`` on, which is what
the grading contract asks for: deleted graded cells are restored)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import classroom
import pytest

pytestmark = pytest.mark.slow

#: (student, variant, notebook-level edits): nbgrader's own kinds of cases, several edits per
#: notebook to keep the (serial, slow) stock run short.
CASES = [
    ("s_correct", "correct", ()),
    ("s_empty", "empty", ()),
    ("s_partial", "partial", ()),  # partial credit and an error in a solution
    ("s_stderr", "stderr", ()),  # writing to stderr zeroes a test in nbgrader
    ("s_changed", "wrong", ("edit_test", "points")),  # a test emptied, its points raised
    ("s_restructured", "correct", ("delete_test", "add_cells", "edit_locked")),
]


def _nbgrader(course: Path, *args: str) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"],
        cwd=course, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_scores_equal_stock_nbgrader(tmp_path):
    from autograder.build import build_course
    from autograder.grade import grade_course
    from autograder.gradebook import gradebook_scores
    from autograder.journal import read_results

    stock = classroom.copy_course(classroom.PLAIN, tmp_path / "stock")
    _nbgrader(stock, "generate_assignment", "p1", "--force")
    release = classroom.release_notebook(stock, "p1")
    for student, variant, edits in CASES:
        nb = classroom.fill(release, classroom.P1[variant])
        for how in edits:
            nb = classroom.edit(nb, how)
        classroom.submit(stock, student, "p1", nb)
    ours = tmp_path / "ours"
    shutil.copytree(stock, ours, ignore=shutil.ignore_patterns("gradebook.db", "release"))
    build_course(ours)

    _nbgrader(stock, "autograde", "p1", "--force", "--OverwriteCells.add_missing_cells=True")
    grade_course(ours, workers=2, sandbox="none", progress=False)

    expected, got = gradebook_scores(stock), gradebook_scores(ours)
    assert len(expected) == len(CASES) * 4  # four graded cells per notebook
    assert got == expected
    # The journal's points are the gradebook's (manual answers count 0 until graded).
    df = read_results(ours)
    journal = {(r.resident, r.module, r.question): r.points for r in df.itertuples()}
    assert journal == {k: (v or 0.0) for k, v in expected.items()}
    # Spot checks that the cases exercise what they claim.
    assert expected[("s_correct", "p1", "test_squares")] == 2.0
    assert expected[("s_changed", "p1", "test_squares")] == 0.0
    assert expected[("s_restructured", "p1", "test_squares")] == 2.0  # deleted, restored
    assert expected[("s_restructured", "p1", "test_hyp")] == 1.0  # locked import restored
    assert 0.0 < expected[("s_partial", "p1", "test_partial")] < 4.0
    assert expected[("s_stderr", "p1", "test_hyp")] == 0.0
