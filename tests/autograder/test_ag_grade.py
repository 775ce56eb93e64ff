"""``drylab grade`` end to end on the fixture class: golden results, bad input, secrecy of the
check, gradebook, and that submissions are never modified."""

from __future__ import annotations

import json

import pytest
from conftest import check_golden, results_table, tree_hashes

from autograder.journal import read_results, read_submissions

pytestmark = pytest.mark.slow


def test_results_match_golden(graded_course):
    course, summary, _ = graded_course
    check_golden("grade_results.csv", results_table(course))
    assert summary.graded == len(read_submissions(course))


def test_statuses_of_the_class(graded_course):
    course, _, _ = graded_course
    df = read_results(course)
    got = {(r.resident, r.module, r.question): (r.status, r.points, r.misconception)
           for r in df.itertuples()}
    assert got[("r_correct", "m1_counts", "q1_1_adults")] == ("passed", 2.0, "")
    assert got[("r_correct", "m1_counts", "q1_3_explain")][0] == "needs manual grading"
    assert got[("r_empty", "m1_counts", "q1_2_glucose")] == ("not attempted", 0.0, "")
    assert got[("r_misconception", "m1_counts", "q1_1_adults")] == ("failed", 0.0,
                                                                    "all_patients")
    assert got[("r_misconception", "m1_counts", "q1_2_glucose")] == ("failed", 0.0, "mgdl")
    assert got[("r_misconception", "m2_tables", "q2_2_high")] == ("failed", 0.0, "row_index")
    assert got[("r_error", "m1_counts", "q1_1_adults")][0] == "error"
    assert got[("r_error", "m1_counts", "q1_2_glucose")] == ("passed", 3.0, "")
    assert got[("r_loop", "m1_counts", "q1_1_adults")] == ("passed", 2.0, "")
    assert got[("r_loop", "m1_counts", "q1_2_glucose")] == ("timeout", 0.0, "")
    assert got[("r_crash", "m1_counts", "q1_2_glucose")] == ("error", 0.0, "")
    msg = df.set_index(["resident", "module", "question"]).loc[
        ("r_misconception", "m1_counts", "q1_2_glucose"), "message"]
    assert "mg/dL" in msg


def test_patched_checks_and_builtins_earn_nothing(graded_course):
    course, _, _ = graded_course
    df = read_results(course)
    patched = df[(df.resident == "r_patched")]
    assert patched["points"].sum() == 0.0
    assert set(patched.loc[patched.question != "q1_3_explain", "status"]) == {"failed"}


def test_bad_input_becomes_rows_with_a_status(graded_course):
    course, _, _ = graded_course
    subs = read_submissions(course).set_index(["resident", "module"])
    assert subs.loc[("x_non_utf8", "m1_counts"), "submission_status"] == "non_utf8"
    assert subs.loc[("x_corrupt", "m1_counts"), "submission_status"] == "corrupt"
    assert subs.loc[("x_wrong_name", "m1_counts"), "submission_status"] == "wrong_name"
    assert "m1_counts.ipynb" in subs.loc[("x_wrong_name", "m1_counts"), "message"]
    assert subs.loc[("x_unknown", "m9_nope"), "submission_status"] == "unknown_module"
    missing = subs.loc[("x_missing_cells", "m1_counts")]
    assert missing["submission_status"] == "missing_cells" and missing["points"] == 5.0
    # Editing a test cell or the points in its metadata changes nothing.
    assert subs.loc[("x_edit_test", "m1_counts"), "points"] == 0.0
    assert subs.loc[("x_points", "m1_counts"), ["points", "max_points"]].tolist() == [5.0, 6.0]
    df = read_results(course)
    bad = df[df.resident.isin(["x_non_utf8", "x_corrupt", "x_wrong_name"])]
    assert len(bad) == 9 and set(bad.status) == {"error"} and bad.points.sum() == 0


def test_submissions_unchanged_and_gradebook_agrees(graded_course):
    from autograder.gradebook import gradebook_scores

    course, _, before = graded_course
    assert tree_hashes(course / "submitted") == before
    scores = gradebook_scores(course)
    df = read_results(course)
    for r in df[df.submission_status != "unknown_module"].itertuples():
        assert scores[(r.resident, r.module, r.question)] == r.points, r
    autograded = course / "autograded" / "r_correct" / "m1_counts" / "m1_counts.ipynb"
    nb = json.loads(autograded.read_text())
    assert not any("drylab-capture" in c["metadata"].get("tags", []) for c in nb["cells"])
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"])


def test_messages_never_show_expected_values(graded_course):
    """The reference values of the wrong answers must not appear in any message."""
    from autograder.capture import read_answer
    from autograder.reference import reference_dir
    from autograder.score import parse_source

    course, _, _ = graded_course
    df = read_results(course)
    text = (course / "source" / "m1_counts" / "m1_counts.ipynb").read_text()
    spec = parse_source("m1_counts", text)
    expected = read_answer(reference_dir(course, spec, "r_wrong"), "q1_1_adults")
    assert isinstance(expected, int)
    wrong = df[(df.resident == "r_wrong")]
    assert not any(str(expected) in m for m in wrong.message)
