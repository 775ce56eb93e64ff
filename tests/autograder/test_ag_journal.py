"""The journal: durable appends, torn tails, resume bookkeeping, read_results' shape."""

from __future__ import annotations

import json

from autograder import RESULT_COLUMNS
from autograder.journal import Journal, journal_path, read_results, read_submissions


def _entry(resident, module, points, status="passed"):
    return {
        "resident": resident, "module": module, "submission_status": "ok",
        "rows": [{"question": "q1", "competencies": ["a", "b"], "points": points,
                  "max_points": 2.0, "status": status, "message": "", "misconception": "",
                  "needs_manual": False, "cell_index": 4}],
    }


def test_read_results_columns_and_types(tmp_path):
    with Journal(tmp_path) as j:
        j.append(_entry("r2", "m1", 2.0))
        j.append(_entry("r1", "m1", 0.0, "failed"))
    df = read_results(tmp_path)
    assert tuple(df.columns) == RESULT_COLUMNS
    assert list(df["resident"]) == ["r1", "r2"]
    assert list(df["points"]) == [0.0, 2.0]
    assert df.loc[0, "competencies"] == "a;b"
    assert str(df["cell_index"].dtype) == "Int64"
    assert df["needs_manual"].dtype == bool
    empty = read_results(tmp_path / "nothing")
    assert tuple(empty.columns) == RESULT_COLUMNS and len(empty) == 0


def test_torn_tail_is_ignored_then_truncated(tmp_path):
    with Journal(tmp_path) as j:
        j.append(_entry("r1", "m1", 2.0))
    path = journal_path(tmp_path)
    with open(path, "ab") as fh:  # what kill -9 in the middle of a write leaves
        fh.write(b'{"resident": "r2", "module": "m1", "rows": [{"que')
    assert list(read_results(tmp_path)["resident"]) == ["r1"]
    with Journal(tmp_path) as j:  # reopening cuts the torn line before appending
        assert j.done() == {("r1", "m1")}
        j.append(_entry("r2", "m1", 1.0))
    lines = path.read_bytes().splitlines()
    assert [json.loads(x)["resident"] for x in lines] == ["r1", "r2"]


def test_latest_entry_wins_and_fresh_keeps_a_backup(tmp_path):
    with Journal(tmp_path) as j:
        j.append(_entry("r1", "m1", 0.0, "failed"))
        j.append(_entry("r1", "m1", 2.0))
    assert read_results(tmp_path)["points"].tolist() == [2.0]
    assert read_submissions(tmp_path)["points"].tolist() == [2.0]
    with Journal(tmp_path, fresh=True) as j:
        assert j.done() == set()
    assert (journal_path(tmp_path).parent / "journal.jsonl.1.bak").exists()
