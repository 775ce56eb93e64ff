"""``drylab demo`` end to end on the fixture course: the tables say what each role predicts."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pytest

from autograder.capture import read_answer
from autograder.demo import MARKER, ROSTER, prepare_course, run_demo

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "course"
HIDDEN_RE = re.compile(r"### BEGIN HIDDEN TESTS\n?(.*?)### END HIDDEN TESTS", re.S)
#: One resident per role (two with misconceptions, so both of m1's variants are used):
#: the full class of 12 would only repeat roles and double the test's time.
CLASS = tuple(r for r in ROSTER if r.id in
              {"res01", "res04", "res05", "res09", "res10", "res11", "res12"})


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    buf = io.StringIO()
    # A short cell timeout keeps the looping resident cheap; the fixture's cells take < 1 s.
    # No sandbox: this tests the story and its tables; the sandbox has its own tests, and
    # `drylab demo` itself runs with --sandbox auto.
    result = run_demo(out, course=FIXTURE, stream=buf, cell_timeout=10.0, roster=CLASS,
                      sandbox="none")
    return result, buf.getvalue()


def _q(results, resident, module, question):
    row = results.loc[(results["resident"] == resident) & (results["module"] == module)
                      & (results["question"] == question)]
    assert len(row) == 1, (resident, module, question)
    return row.iloc[0]


def _g(grades, resident, module):
    row = grades.loc[(grades["resident"] == resident) & (grades["module"] == module)]
    assert len(row) == 1
    return row.iloc[0]


@pytest.mark.slow
def test_every_role_scores_as_predicted(demo):
    result, out = demo
    assert result.modules == ["m1_counts", "m2_tables"]
    assert result.deviations and not any(result.deviations.values()), result.deviations
    assert result.ok
    assert len(result.grades) == len(CLASS) * 2


@pytest.mark.slow
def test_tables_hold_each_roles_outcome(demo):
    result, _ = demo
    res, grades = result.results, result.grades
    auto = res.loc[~res["needs_manual"]]
    for resident in ("res01",):  # correct: full automatic marks
        mine = auto.loc[auto["resident"] == resident]
        assert (mine["status"] == "passed").all()
        assert mine["points"].sum() == mine["max_points"].sum() == 2 + 3 + 2 + 1

    empty = auto.loc[auto["resident"] == "res12"]
    assert set(empty["status"]) == {"not attempted"} and empty["points"].sum() == 0
    assert _g(grades, "res12", "m1_counts")["status"] == "not attempted"
    assert _g(grades, "res12", "m2_tables")["total"] == 0

    loop = _g(grades, "res11", "m1_counts")
    assert loop["status"] == "timeout" and loop["timeout"] >= 1
    assert _q(res, "res11", "m1_counts", "q1_1_adults")["status"] == "passed"  # before the loop
    assert _q(res, "res11", "m1_counts", "q1_2_glucose")["status"] == "timeout"
    assert _g(grades, "res11", "m2_tables")["status"] != "timeout"  # the next module is fine

    crash = _g(grades, "res10", "m1_counts")
    assert crash["status"] == "error" and crash["submission_status"] == "kernel_died"
    assert _q(res, "res10", "m1_counts", "q1_2_glucose")["status"] == "error"

    mis = _q(res, "res04", "m1_counts", "q1_1_adults")
    assert (mis["status"], mis["misconception"], mis["points"]) == ("failed", "all_patients", 0)
    assert "count only those aged 18 or over" in mis["message"]
    # The mg/dL variant is stopped by the public range check first, with its own message.
    mgdl = _q(res, "res05", "m1_counts", "q1_2_glucose")
    assert mgdl["status"] == "failed" and "check the unit" in mgdl["message"]

    partial = _q(res, "res09", "m1_counts", "q1_1_adults")
    assert partial["status"] == "not attempted"
    typo = _q(res, "res09", "m1_counts", "q1_2_glucose")
    assert typo["status"] == "error" and "NameError" in typo["message"]


def _reference_values(course_dir: Path) -> set[str]:
    """Distinctive renderings of every JSON reference value (answers and misconception values)."""
    found: set[str] = set()

    def walk(v):
        if isinstance(v, bool) or v is None:
            return
        if isinstance(v, int) and abs(v) >= 100:
            found.add(str(v))
        elif isinstance(v, float) and math.isfinite(v) and v != int(v):
            found.update({repr(v), f"{v:.2f}", f"{v:.3f}"})
        elif isinstance(v, str) and len(v) >= 4:
            found.add(v)
        elif isinstance(v, list | tuple | set):
            for x in v:
                walk(x)

    for path in (course_dir / ".drylab" / "reference").rglob("*.json"):
        if path.name != "done.json":
            walk(read_answer(path.parent, path.name.removesuffix(".json")))
    return found


@pytest.mark.slow
def test_feedback_shows_no_hidden_test_or_expected_value(demo):
    result, _ = demo
    course = result.course_dir
    assert len(result.feedback) == len(CLASS) * 2
    hidden = set()
    for nb_path in (course / "source").glob("*/*.ipynb"):
        for cell in json.loads(nb_path.read_text())["cells"]:
            for region in HIDDEN_RE.findall("".join(cell["source"])):
                hidden.update(ln.strip() for ln in region.splitlines() if len(ln.strip()) >= 6)
    assert "_mis_all_patients = len(patients)" in hidden
    values = _reference_values(course)
    assert len(values) > 10  # the scan has something to look for
    for page in result.feedback:
        html = page.read_text(encoding="utf-8")
        text = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
        for line in hidden:
            assert line not in html, (page, line)
        for value in values:
            assert not re.search(rf"(?<![\w.]){re.escape(value)}(?![\w])", text), (page, value)
    page = (course / "feedback" / "res04" / "m1_counts" / "m1_counts.html").read_text()
    assert "This is the number of all patients: count only those aged 18 or over." in page
    # What nbgrader's release_feedback reads next to the page is there.
    assert (course / "feedback" / "res04" / "m1_counts" / "timestamp.txt").is_file()
    assert (course / "feedback" / "res04" / "m1_counts" / "submission_secret.txt").is_file()


@pytest.mark.slow
def test_exports_report_and_summary(demo):
    from autograder.journal import read_submissions

    result, out = demo
    course = result.course_dir
    grades_csv = (course / "export" / "grades.csv").read_text().splitlines()
    assert len(grades_csv) == 1 + len(CLASS) * 2
    assert (course / "export" / "questions.parquet").is_file()
    html = result.report.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 4
    subs = read_submissions(course)
    assert (subs["sandbox"] == "none").all()
    assert 'role="alert"' in html  # the loud banner: nothing ran sandboxed

    for n in range(1, 9):
        assert f"[{n}/8]" in out
    table = out[out.index("resident"):]
    for r in CLASS:
        assert re.search(rf"^{r.id}\s+{r.role}\s", table, flags=re.M), r
    assert re.search(r"^res12\s+empty\s+0/5 \.\.\s+0/3 \.\.\s+yes$", table, flags=re.M)
    assert re.search(r"^res11\s+loop\s+2/5 \+T \(stopped\)\s+3/3 \+\+\s+yes$", table,
                     flags=re.M)
    assert re.search(r"^res10\s+crash\s+2/5 \+E \(kernel died\)\s+3/3 \+\+\s+yes$", table,
                     flags=re.M)
    assert re.search(r"^res04\s+misconception\s+3/5 m\+\s", table, flags=re.M)
    assert "every resident scored as their role predicts" in out
    assert str(result.report) in out


def test_refuses_to_replace_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not made by `drylab demo`"):
        prepare_course(FIXTURE, tmp_path, None)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="unknown module"):
        prepare_course(FIXTURE, tmp_path / "new", ["m9_nope"])
    made = prepare_course(FIXTURE, tmp_path / "ok", ["m2_tables"])
    assert made == ["m2_tables"] and (tmp_path / "ok" / MARKER).is_file()
    assert sorted(p.name for p in (tmp_path / "ok" / "source").iterdir()) == ["m2_tables"]
