"""Scores entered in formgrader reach exports, feedback and the report (never a silent 0)."""

from __future__ import annotations

import shutil

import pandas as pd

from autograder.gradebook import INSTRUCTOR_STATUS, _gradebook, instructor_scores, read_graded


def _score_in_formgrader(course, resident, module, grade_id, score):
    """What formgrader does when an instructor types a score."""
    with _gradebook(course) as gb:
        grade = gb.find_grade(grade_id, module, module, resident)
        grade.manual_score = score
        gb.db.commit()


def test_manual_scores_reach_exports_feedback_and_report(graded_course, tmp_path):
    from autograder.export import write_exports
    from autograder.feedback import feedback_path, write_feedback
    from autograder.report import write_report

    source, _, _ = graded_course
    course = tmp_path / "c"
    shutil.copytree(source, course)
    before, _ = read_graded(course)
    manual = before.query("resident == 'r_correct' and question == 'q1_3_explain'")
    assert manual["status"].tolist() == ["needs manual grading"]
    assert manual["points"].tolist() == [0.0]
    auto = before.query("resident == 'r_wrong' and question == 'q1_1_adults'")
    assert auto["points"].tolist() == [0.0] and auto["status"].tolist() == ["failed"]

    _score_in_formgrader(course, "r_correct", "m1_counts", "q1_3_explain", 1.5)
    _score_in_formgrader(course, "r_wrong", "m1_counts", "q1_1_adults", 0.5)  # an override
    assert instructor_scores(course) == {("r_correct", "m1_counts", "q1_3_explain"): 1.5,
                                         ("r_wrong", "m1_counts", "q1_1_adults"): 0.5}

    results, subs = read_graded(course)
    row = results.query("resident == 'r_correct' and question == 'q1_3_explain'")
    assert row["points"].tolist() == [1.5] and row["status"].tolist() == [INSTRUCTOR_STATUS]
    row = results.query("resident == 'r_wrong' and question == 'q1_1_adults'")
    assert row["points"].tolist() == [0.5] and row["status"].tolist() == [INSTRUCTOR_STATUS]
    # nothing else changed
    others = ~(((results["resident"] == "r_correct") & (results["question"] == "q1_3_explain"))
               | ((results["resident"] == "r_wrong") & (results["question"] == "q1_1_adults")))
    pd.testing.assert_frame_equal(results[others], before[others])
    sub = subs.query("resident == 'r_correct' and module == 'm1_counts'")
    old_total = before.query("resident == 'r_correct' and module == 'm1_counts'")["points"].sum()
    assert sub["points"].tolist() == [old_total + 1.5]

    paths = write_exports(course)
    grades = pd.read_csv(paths.grades_csv, keep_default_na=False)
    g = grades.query("resident == 'r_correct' and module == 'm1_counts'")
    assert g["total"].tolist() == [old_total + 1.5]
    assert g["status"].tolist() == ["graded"]  # no longer "needs manual grading"
    questions = pd.read_csv(paths.questions_csv, keep_default_na=False)
    q = questions.query("resident == 'r_correct' and question == 'q1_3_explain'")
    assert q["points"].tolist() == [1.5] and q["status"].tolist() == [INSTRUCTOR_STATUS]

    write_feedback(course)
    page = feedback_path(course, "r_correct", "m1_counts").read_text()
    assert "Graded by instructor" in page and "Awaiting instructor" not in page
    report = write_report(course).read_text()
    assert "Graded by instructor" in report


def test_no_gradebook_means_the_journal_as_is(graded_course, tmp_path):
    from autograder.journal import read_results

    source, _, _ = graded_course
    course = tmp_path / "c"
    shutil.copytree(source, course)
    (course / "gradebook.db").unlink()
    assert instructor_scores(course) == {}
    results, _ = read_graded(course)
    pd.testing.assert_frame_equal(results, read_results(course))
