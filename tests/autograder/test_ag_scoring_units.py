"""Scoring pieces without a kernel: value comparison, answer capture, sanitize."""

from __future__ import annotations

import math

import classroom
import nbformat
import numpy as np
import pandas as pd
import pytest

from autograder.capture import Missing, Unsupported, capture_source, read_answer
from autograder.compare import matches
from autograder.score import parse_source, sanitize


@pytest.mark.parametrize(
    "answer, expected, compare, ok",
    [
        (1.004, 1.0, {"kind": "number", "atol": 0.005}, True),
        (1.006, 1.0, {"kind": "number", "atol": 0.005}, False),
        (110.0, 100.0, {"kind": "number", "rtol": 0.1}, True),
        (math.nan, math.nan, {"kind": "number"}, True),
        (True, 1, {"kind": "number", "atol": 1}, False),
        (True, 1, {"kind": "exact"}, False),
        ("a", "a", {"kind": "exact"}, True),
        ([3, 1, 2], {1, 2, 3}, {"kind": "set"}, True),
        ({1, 2}, {1, 2, 3}, {"kind": "set"}, False),
        ([1, 2.0001], [1, 2], {"kind": "sequence", "atol": 0.001}, True),
        ([2, 1], [1, 2], {"kind": "sequence"}, False),
        (None, 3, {"kind": "exact"}, False),
        (Missing(), 3, {"kind": "exact"}, False),
    ],
)
def test_matches(answer, expected, compare, ok):
    assert matches(answer, expected, compare) is ok


def test_matches_frames_and_series():
    a = pd.DataFrame({"decade": [10, 0], "n": [5, 3]})
    b = pd.DataFrame({"n": [3, 5], "decade": [0, 10]})
    assert matches(a, b, {"kind": "frame", "check_like": True, "sort_by": ["decade"]})
    assert not matches(a, b, {"kind": "frame", "sort_by": ["decade"]})  # column order counts
    assert not matches(a.assign(n=[5, 4]), b, {"kind": "frame", "check_like": True,
                                               "sort_by": "decade"})
    s = pd.Series([1.0, 2.0], index=["x", "y"])
    assert matches(s, s.iloc[::-1], {"kind": "series", "sort_by": "index"})
    assert not matches(s, s * 1.1, {"kind": "series", "rtol": 0.01})
    with pytest.raises(ValueError, match="compare kind"):
        matches(1, 1, {"kind": "fuzzy"})


def test_capture_cell_writes_json_parquet_and_refuses_pickle_types(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope = {
        "n": np.int64(7), "x": 2.5, "s": {1, 2}, "lst": [np.float64(1.5), "a"],
        "df": pd.DataFrame({"a": [1, 2]}), "ser": pd.Series([1.0], name="v"),
        "obj": object(), "none": None,
    }
    targets = {k: k for k in scope} | {"gone": "not_defined"}
    exec(capture_source(targets), scope)  # noqa: S102 - the cell's code, run as a kernel would
    folder = tmp_path / ".drylab" / "answers"
    assert read_answer(folder, "n") == 7 and isinstance(read_answer(folder, "n"), int)
    assert read_answer(folder, "x") == 2.5
    assert read_answer(folder, "s") == {1, 2}
    assert read_answer(folder, "lst") == [1.5, "a"]
    assert read_answer(folder, "df").equals(pd.DataFrame({"a": [1, 2]}))
    assert read_answer(folder, "ser").tolist() == [1.0]
    assert isinstance(read_answer(folder, "obj"), Unsupported)
    assert read_answer(folder, "none") is None
    assert isinstance(read_answer(folder, "gone"), Missing)
    assert not list(folder.glob("*.pkl")) and "__drylab_capture" not in scope
    secret = tmp_path / "expected.json"
    secret.write_text('{"type": "json", "value": 42}')
    (folder / "linked.json").symlink_to(secret)
    assert isinstance(read_answer(folder, "linked"), Unsupported)


def _spec():
    text = (classroom.COURSE / "source" / "m1_counts" / "m1_counts.ipynb").read_text()
    from autograder.course import load_config

    return parse_source("m1_counts", text, load_config(classroom.COURSE))


def _release_like(spec):
    return nbformat.reads(nbformat.writes(spec.release_nb), as_version=4)


def test_parse_source_finds_questions_answers_and_hidden_region():
    spec = _spec()
    assert [(q.grade_id, q.kind, q.max_points, q.answer_id) for q in spec.questions] == [
        ("q1_1_adults", "test", 2.0, "a1_1"),
        ("q1_2_glucose", "test", 3.0, "a1_2"),
        ("q1_3_explain", "manual", 1.0, None),
    ]
    assert spec.questions[0].hidden_lines == (3, 5)
    assert "BEGIN SOLUTION" not in spec.release_cells["a1_1"].source
    assert spec.release_cells["a1_1"].source.startswith("n_adults = None")
    assert spec.is_drylab


def test_sanitize_restores_tests_locked_cells_points_and_deleted_cells():
    spec = _spec()
    nb = _release_like(spec)
    cells = nb.cells
    test_cell = next(c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id")
                     == "q1_1_adults")
    test_cell.source = "pass"
    test_cell.metadata.nbgrader.points = 100
    setup = next(c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    setup.source = "import os"
    cells.remove(next(c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id")
                      == "q1_2_glucose"))
    cells.insert(0, nbformat.v4.new_code_cell("extra = 1"))
    dup = nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": "q1_1_adults",
        "points": 50}})
    cells.insert(1, dup)
    out, restored = sanitize(nb, spec)
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in out.cells}
    assert restored == ["q1_2_glucose"]
    assert by_id["q1_1_adults"].source == spec.nbgrader_cells["q1_1_adults"].source
    assert "_mis_all_patients" in by_id["q1_1_adults"].source  # hidden tests are back
    assert by_id["q1_1_adults"].metadata.nbgrader.points == 2
    assert by_id["setup"].source == spec.nbgrader_cells["setup"].source
    assert out.cells[0].source == "extra = 1"  # added cells are kept
    assert out.cells[1].metadata.nbgrader == {}  # a duplicate id loses its grading role
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in out.cells]
    assert ids.index("q1_2_glucose") == ids.index("a1_2") + 1
    assert nb.cells[0].source == "extra = 1" and test_cell.source == "pass"  # input untouched
