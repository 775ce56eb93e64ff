"""Feedback pages: content per status, escaping, no hidden test or expected value shown."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from autograder import RESULT_COLUMNS
from autograder.feedback import (
    feedback_path,
    load_module_info,
    redact,
    render_feedback,
    title_from_grade_id,
    write_feedback,
)

HIDDEN_1 = '_mis_all = len(patients)\nassert n_adults == 1234, "expected 1234 adults exactly"'
MIS_MSG = "This is the number of all patients: count only those aged 18 or over."


def _cell(kind, source, nbgrader=None, drylab=None):
    cell = {"cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    if nbgrader:
        cell["metadata"]["nbgrader"] = nbgrader
    if drylab:
        cell["metadata"]["drylab"] = drylab
    return cell


@pytest.fixture()
def course(tmp_path):
    """A one-module course whose source has a hidden region, a misconception and a manual cell."""
    cells = [
        _cell("markdown", "# Module 1: counting a cohort\n\nTime: 5 minutes."),
        _cell("markdown", "## Question 1.1: adults\nHow many adults? Store an `int` in `n_adults`."),
        _cell("code", "n_adults = None\n### BEGIN SOLUTION\nn_adults = 1234\n### END SOLUTION",
              {"solution": True, "grade": False, "grade_id": "a1_1"}),
        _cell("code", 'assert isinstance(n_adults, int), "n_adults should be an int"\n'
              f"### BEGIN HIDDEN TESTS\n{HIDDEN_1}\n### END HIDDEN TESTS",
              {"grade": True, "solution": False, "locked": True, "grade_id": "q1_1_adults",
               "points": 2},
              {"answer": "n_adults", "competencies": ["cohort-definition"],
               "misconceptions": [{"id": "all_patients", "value_from": "_mis_all",
                                   "message": MIS_MSG}]}),
        _cell("markdown", "## Question 1.2 (manual)\nExplain it.\n"),
        _cell("markdown", "### BEGIN SOLUTION\nThe secret instructor answer.\n### END SOLUTION",
              {"solution": True, "grade": True, "grade_id": "q1_2_explain", "points": 1}),
    ]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    src = tmp_path / "source" / "m1"
    src.mkdir(parents=True)
    (src / "m1.ipynb").write_text(json.dumps(nb))
    (tmp_path / "competencies.yml").write_text(
        "cohort-definition: Define a cohort with inclusion and exclusion criteria\n")
    return tmp_path


def _row(resident="r1", question="q1_1_adults", status="passed", points=2.0, max_points=2.0,
         message="", misconception="", needs_manual=False, submission_status="ok",
         competencies="cohort-definition", cell_index=3, module="m1"):
    return {"resident": resident, "module": module, "question": question,
            "competencies": competencies, "points": points, "max_points": max_points,
            "status": status, "message": message, "misconception": misconception,
            "needs_manual": needs_manual, "cell_index": cell_index,
            "submission_status": submission_status}


def _frame(rows):
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    frame["cell_index"] = frame["cell_index"].astype("Int64")
    return frame


def _manual_row(resident="r1", **kw):
    return _row(resident, "q1_2_explain", "needs manual grading", 0.0, 1.0, needs_manual=True,
                competencies="", cell_index=5, **kw)


def _text(html: str) -> str:
    """The page's visible text: style and tags removed, whitespace collapsed."""
    html = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_module_info_reads_public_facts_only(course):
    info = load_module_info(course, "m1")
    assert info.title == "Module 1: counting a cohort"
    q = info.question("q1_1_adults")
    assert q.title == "Question 1.1: adults"
    assert q.answer == "n_adults"
    assert q.misconceptions == {"all_patients": MIS_MSG}
    assert info.question("q1_2_explain").title == "Question 1.2 (manual)"
    assert "_mis_all = len(patients)" in info.hidden_fragments
    assert "expected 1234 adults exactly" in info.hidden_fragments
    assert info.competencies == {
        "cohort-definition": "Define a cohort with inclusion and exclusion criteria"}
    # An unknown grade id gets a readable stand-in.
    assert info.question("q3_4_mean_age").title == "Question 3.4 (mean age)"
    assert title_from_grade_id("test_squares") == "test_squares"


def test_redact_drops_messages_that_quote_hidden_tests(course):
    info = load_module_info(course, "m1")
    assert redact("n_adults should be an int", info) == "n_adults should be an int"
    assert redact("AssertionError: expected 1234 adults exactly", info) == (
        "A hidden check did not pass.")
    assert redact('line 2: assert n_adults == 1234, "expected', info) == (
        "A hidden check did not pass.")


def test_page_per_status_with_messages_and_next_steps(course):
    info = load_module_info(course, "m1")
    rows = _frame([
        _row(status="failed", points=0.0, misconception="all_patients",
             message=f"does not match the expected value. {MIS_MSG}"),
        _manual_row(),
    ])
    html = render_feedback(rows, resident="r1", module="m1", info=info)
    text = _text(html)
    assert "Feedback: Module 1: counting a cohort" in text
    assert "Question 1.1: adults \u2717 Not yet right 0 / 2" in text
    assert "Question 1.2 (manual) \u270e Awaiting instructor \u2013 / 1" in text
    # The targeted message appears once, in its own box, not glued to the generic one.
    assert text.count(MIS_MSG) == 1
    assert "A common mistake: " + MIS_MSG in text
    assert "What the check said: does not match the expected value." in text
    assert "This question practises: Define a cohort with inclusion and exclusion criteria" in text
    assert "Automatic checks 0 / 2" in text
    assert "The secret instructor answer" not in html

    ok = render_feedback(_frame([_row(), _manual_row()]), resident="r1", module="m1", info=info)
    assert "Every automatic check passed." in _text(ok)
    assert "Automatic checks 2 / 2" in _text(ok)


@pytest.mark.parametrize(
    ("status", "sub_status", "expect"),
    [
        ("error", "kernel_died", "The Python kernel running your notebook stopped"),
        ("timeout", "timeout", "ran past the time limit (30 s)"),
        ("not attempted", "ok", "n_adults is still empty"),
        ("failed", "ok", "Fix the answer cell of Question 1.1"),
    ],
)
def test_advice_follows_the_status(course, status, sub_status, expect):
    info = load_module_info(course, "m1")
    msg = "n_adults should be an int" if status == "failed" else ""
    rows = _frame([_row(status=status, points=0.0, message=msg, submission_status=sub_status)])
    text = _text(render_feedback(rows, resident="r1", module="m1", info=info, cell_timeout=30))
    assert expect in text


def test_resident_text_is_escaped(course):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)> `<b>x</b>`'
    rows = _frame([_row(resident="r<i>1", status="error", points=0.0,
                        message=f"NameError: {evil} in `cohort_tabel`")])
    html = render_feedback(rows, resident="r<i>1", module="m1", info=load_module_info(course, "m1"))
    assert "<script" not in html and "<img" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    # Backticked names become <code>, and only those.
    assert "in <code>cohort_tabel</code>" in html
    assert "<code><b>" not in html


def test_write_feedback_places_pages_where_nbgrader_returns_them(course):
    rows = _frame([
        _row("r1"), _manual_row("r1"),
        _row("r2", status="failed", points=0.0,
             message="AssertionError: expected 1234 adults exactly"),
        _manual_row("r2"),
    ])
    # nbgrader's collect leaves these next to the submission; release_feedback needs them.
    sub = course / "submitted" / "r1" / "m1"
    sub.mkdir(parents=True)
    (sub / "timestamp.txt").write_text("2026-01-05 10:00:00.000000 UTC")
    (sub / "submission_secret.txt").write_text("s3cret")
    paths = write_feedback(course, rows)
    assert paths == [feedback_path(course, "r1", "m1"), feedback_path(course, "r2", "m1")]
    assert (paths[0].parent / "timestamp.txt").read_text() == "2026-01-05 10:00:00.000000 UTC"
    assert (paths[0].parent / "submission_secret.txt").read_text() == "s3cret"
    assert sorted(p.name for p in paths[1].parent.iterdir()) == ["m1.html"]
    assert paths[0] == course / "feedback" / "r1" / "m1" / "m1.html"
    hidden_lines = [ln.strip() for ln in HIDDEN_1.splitlines()]
    for path in paths:
        html = path.read_text(encoding="utf-8")
        # Self-contained: nothing fetched, nothing executed.
        assert not re.search(r"<(script|link|iframe)\b", html)
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
        for line in hidden_lines:
            assert line not in html
        assert "1234" not in html  # the expected value
    assert "A hidden check did not pass." in paths[1].read_text(encoding="utf-8")


def test_missing_columns_is_a_clear_error():
    with pytest.raises(ValueError, match="lack the columns"):
        render_feedback(pd.DataFrame({"resident": ["r"]}), resident="r", module="m")


@pytest.mark.slow  # nbgrader's API creates a gradebook on start (alembic): ~10 s
def test_nbgrader_release_feedback_returns_the_page(course, tmp_path_factory):
    """nbgrader's own exchange finds and releases the page (as after generate_feedback)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    sub = course / "submitted" / "r1" / "m1"
    sub.mkdir(parents=True)
    (sub / "timestamp.txt").write_text("2026-01-05 10:00:00.000000 UTC")
    (sub / "submission_secret.txt").write_text("s3cret")
    [page] = write_feedback(course, _frame([_row("r1"), _manual_row("r1")]))
    exchange = tmp_path_factory.mktemp("exchange")
    cfg = Config()
    cfg.CourseDirectory.root = str(course)
    cfg.CourseDirectory.course_id = "drylab"
    cfg.Exchange.root = str(exchange)
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    out = api.release_feedback("m1", "r1")
    assert out["success"], out
    [released] = (exchange / "drylab" / "feedback").glob("*.html")
    assert released.read_bytes() == page.read_bytes()
