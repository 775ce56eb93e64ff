"""grades / questions exports: values, statuses, row order, CSV = Parquet, determinism."""

from __future__ import annotations

import pandas as pd
import pytest

from autograder import RESULT_COLUMNS
from autograder.export import GRADE_COLUMNS, grades_table, questions_table, write_exports


def _row(resident, module, question, status, points, max_points, cell_index, *,
         message="", misconception="", competencies="", submission_status="ok"):
    return {"resident": resident, "module": module, "question": question,
            "competencies": competencies, "points": points, "max_points": max_points,
            "status": status, "message": message, "misconception": misconception,
            "needs_manual": status == "needs manual grading", "cell_index": cell_index,
            "submission_status": submission_status}


@pytest.fixture()
def results():
    """Three residents, two modules, rows deliberately out of order; r3 never did m2."""
    rows = [
        _row("r2", "m1", "q1_2_glucose", "failed", 0.0, 3.0, 8,
             message="does not match the expected value. mg/dL!", misconception="mgdl",
             competencies="units;descriptive-statistics"),
        _row("r1", "m1", "q1_1_adults", "passed", 2.0, 2.0, 5, competencies="cohort-definition"),
        _row("r1", "m1", "q1_2_glucose", "passed", 3.0, 3.0, 8,
             competencies="units;descriptive-statistics"),
        _row("r1", "m1", "q1_3_explain", "needs manual grading", 0.0, 1.0, 10),
        _row("r2", "m1", "q1_1_adults", "passed", 2.0, 2.0, 5, competencies="cohort-definition"),
        _row("r2", "m1", "q1_3_explain", "needs manual grading", 0.0, 1.0, 10),
        _row("r1", "m2", "q2_1_decades", "timeout", 0.0, 2.0, 5, submission_status="timeout",
             message="the cell ran past the 30 s limit"),
        _row("r1", "m2", "q2_2_high", "timeout", 0.0, 1.0, 7, submission_status="timeout"),
        _row("r2", "m2", "q2_1_decades", "not attempted", 0.0, 2.0, 5),
        _row("r2", "m2", "q2_2_high", "not attempted", 0.0, 1.0, 7),
        _row("r3", "m1", "q1_1_adults", "error", 0.0, 2.0, 5, submission_status="kernel_died",
             message="the kernel died (cell 5)"),
        _row("r3", "m1", "q1_2_glucose", "error", 0.0, 3.0, 8, submission_status="kernel_died"),
        _row("r3", "m1", "q1_3_explain", "needs manual grading", 0.0, 1.0, 10,
             submission_status="kernel_died"),
    ]
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    frame["cell_index"] = frame["cell_index"].astype("Int64")
    return frame


def test_grades_values_and_statuses(results):
    grades = grades_table(results)
    assert list(grades.columns) == list(GRADE_COLUMNS)
    got = {(r.resident, r.module): (r.total, r.max, r.status) for r in grades.itertuples()}
    assert got == {
        ("r1", "m1"): (5.0, 6.0, "needs manual grading"),
        ("r1", "m2"): (0.0, 3.0, "timeout"),
        ("r2", "m1"): (2.0, 6.0, "needs manual grading"),
        ("r2", "m2"): (0.0, 3.0, "not attempted"),
        ("r3", "m1"): (0.0, 6.0, "error"),
        ("r3", "m2"): (0.0, 3.0, "not submitted"),  # filled in: the grid has no holes
    }
    assert list(zip(grades["resident"], grades["module"], strict=True)) == sorted(got)
    r2m1 = grades.loc[(grades["resident"] == "r2") & (grades["module"] == "m1")].iloc[0]
    assert (r2m1["passed"], r2m1["failed"], r2m1["needs_manual"]) == (1, 1, 1)
    assert grades.loc[grades["status"] == "error", "submission_status"].tolist() == ["kernel_died"]


def test_questions_sorted_in_notebook_order_with_contract_columns(results):
    q = questions_table(results)
    assert list(q.columns) == list(RESULT_COLUMNS)
    assert q.loc[q["resident"] == "r1", "question"].tolist() == [
        "q1_1_adults", "q1_2_glucose", "q1_3_explain", "q2_1_decades", "q2_2_high"]
    mis = q.loc[q["misconception"] != ""].iloc[0]
    assert (mis["resident"], mis["competencies"], mis["points"], mis["max_points"]) == (
        "r2", "units;descriptive-statistics", 0.0, 3.0)


def test_files_agree_and_are_deterministic(results, tmp_path):
    paths = write_exports(tmp_path, results)
    assert paths.grades_csv == tmp_path / "export" / "grades.csv"
    lines = paths.grades_csv.read_text().splitlines()
    assert lines[0] == ",".join(GRADE_COLUMNS)
    assert lines[1] == "r1,m1,5,6,needs manual grading,ok,2,0,0,0,0,1"
    assert lines[6] == "r3,m2,0,3,not submitted,,0,0,0,0,0,0"
    q_csv = pd.read_csv(paths.questions_csv, keep_default_na=False)
    assert len(q_csv) == len(results)
    assert q_csv.loc[1, "competencies"] == "units;descriptive-statistics"
    assert q_csv["needs_manual"].tolist().count(True) == 3

    # Parquet holds the same table with its dtypes.
    pd.testing.assert_frame_equal(pd.read_parquet(paths.questions_parquet),
                                  questions_table(results))
    pd.testing.assert_frame_equal(pd.read_parquet(paths.grades_parquet), grades_table(results))

    # Same journal, shuffled rows -> byte-identical files.
    again = write_exports(tmp_path, results.sample(frac=1.0, random_state=3),
                          out_dir=tmp_path / "again")
    for a, b in zip(
        (paths.grades_csv, paths.questions_csv, paths.grades_parquet, paths.questions_parquet),
        (again.grades_csv, again.questions_csv, again.grades_parquet, again.questions_parquet),
        strict=True,
    ):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_empty_journal_gives_empty_tables_with_columns(results):
    empty = results.iloc[0:0]
    assert list(grades_table(empty).columns) == list(GRADE_COLUMNS)
    assert grades_table(empty).empty and questions_table(empty).empty


def test_missing_columns_is_a_clear_error(results):
    with pytest.raises(ValueError, match="misconception"):
        questions_table(results.drop(columns="misconception"))


def test_cli_verbs_read_the_journal(results, tmp_path, capsys):
    from autograder.journal import Journal
    from drylab.cli import main

    with Journal(tmp_path) as journal:
        for (resident, module), rows in results.groupby(["resident", "module"], sort=True):
            recs = rows.drop(columns=["resident", "module", "submission_status"])
            recs = recs.astype({"cell_index": "object"}).to_dict("records")
            for rec in recs:
                rec["competencies"] = [c for c in rec["competencies"].split(";") if c]
            journal.append({"resident": resident, "module": module, "notebook": f"{module}.ipynb",
                            "submission_status": rows["submission_status"].iloc[0],
                            "message": "", "sandbox": "bwrap", "warnings": [], "rows": recs})
    assert main(["export", str(tmp_path)]) == 0
    assert str(tmp_path / "export" / "grades.csv") in capsys.readouterr().out
    written = pd.read_csv(tmp_path / "export" / "grades.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(written, pd.read_csv(
        write_exports(tmp_path, results, out_dir=tmp_path / "direct").grades_csv,
        keep_default_na=False))
    assert main(["feedback", str(tmp_path)]) == 0
    assert "wrote 5 feedback page(s)" in capsys.readouterr().out
    assert (tmp_path / "feedback" / "r3" / "m1" / "m1.html").is_file()
