"""Writes the fixture courses under tests/fixtures/ (run it after changing them by hand here).

``python tests/autograder/make_fixtures.py`` rewrites:

- ``tests/fixtures/course/``: two tiny Dry Lab modules following docs/grading-model.md
  (setup cell, ``parameters`` cell with ``resident_id``, answer cells, test cells with
  ``metadata.drylab`` incl. misconceptions, one manual cell). Data come from ``resident_id``
  through hashlib + numpy only, so the fixture does not depend on ``synthetic_data``.
- ``tests/fixtures/plain_course/``: one plain nbgrader assignment (plain asserts, hidden
  tests, a partial-credit cell, a manual answer) for the differential test against
  ``nbgrader autograde``.
"""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

CONFIG = '''c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "{course_id}"
c.CourseDirectory.source_directory = "source"
c.ClearSolutions.code_stub = {{"python": "{stub}"}}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
'''

_counter = iter(range(10_000))


def _cell(kind, source, *, nbgrader=None, drylab=None, tags=None):
    cell = {"cell_type": kind, "id": f"c{next(_counter):04d}", "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    if nbgrader is not None:
        cell["metadata"]["nbgrader"] = {"schema_version": 3, **nbgrader}
    if drylab is not None:
        cell["metadata"]["drylab"] = drylab
    if tags:
        cell["metadata"]["tags"] = tags
    return cell


def md(source):
    return _cell("markdown", source)


def locked(grade_id, source, kind="code"):
    return _cell(kind, source, nbgrader={"grade": False, "solution": False, "locked": True,
                                         "grade_id": grade_id})


def answer(grade_id, source):
    return _cell("code", source, nbgrader={"grade": False, "solution": True, "locked": False,
                                           "grade_id": grade_id})


def test(grade_id, points, source, drylab=None):
    return _cell("code", source, drylab=drylab,
                 nbgrader={"grade": True, "solution": False, "locked": True,
                           "grade_id": grade_id, "points": points})


def manual(grade_id, points, source):
    return _cell("markdown", source, nbgrader={"grade": True, "solution": True, "locked": False,
                                               "grade_id": grade_id, "points": points})


def params():
    return _cell("code", 'resident_id = "demo"', tags=["parameters"])


def notebook(cells):
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


SETUP = "import hashlib\n\nimport numpy as np\nimport pandas as pd"
LOAD = (
    "# Each resident's data come from their id (sha256, never Python's salted hash()).\n"
    'seed = int.from_bytes(hashlib.sha256(resident_id.encode("utf-8")).digest()[:8], "little")\n'
    "rng = np.random.default_rng(seed)\n"
    "n = int(rng.integers(150, 250))\n"
    "patients = pd.DataFrame({\n"
    '    "person_id": np.arange(1, n + 1),\n'
    '    "age": rng.integers(5, 95, size=n),\n'
    '    "glucose_mgdl": rng.normal(110.0, 30.0, size=n).round(1),\n'
    "})\n"
    "patients.head()"
)


def m1_counts():
    return notebook([
        md("# Module 1: counting a cohort\n\nTime: 5 minutes."),
        locked("setup", SETUP),
        params(),
        locked("load_cohort", LOAD),
        md("## Question 1.1\nHow many patients are adults (age 18 or over)? Store an `int` in "
           "`n_adults`."),
        answer("a1_1", "n_adults = None\n### BEGIN SOLUTION\n"
                       "n_adults = int((patients[\"age\"] >= 18).sum())\n### END SOLUTION"),
        test("q1_1_adults", 2,
             'assert isinstance(n_adults, int), "n_adults should be an int: a count of patients"\n'
             "assert 0 <= n_adults <= len(patients), \"a count cannot exceed the cohort's size\"\n"
             "### BEGIN HIDDEN TESTS\n_mis_all_patients = len(patients)\n### END HIDDEN TESTS",
             drylab={"answer": "n_adults", "compare": {"kind": "exact"},
                     "competencies": ["cohort-definition"],
                     "misconceptions": [{
                         "id": "all_patients", "value_from": "_mis_all_patients",
                         "message": "This is the number of all patients: count only those "
                                    "aged 18 or over."}]}),
        md("## Question 1.2\nThe mean glucose in **mmol/L** (divide mg/dL by 18.0), as a "
           "`float` named `mean_glucose_mmol`."),
        answer("a1_2", "mean_glucose_mmol = None\n### BEGIN SOLUTION\n"
                       'mean_glucose_mmol = float(patients["glucose_mgdl"].mean() / 18.0)\n'
                       "### END SOLUTION"),
        test("q1_2_glucose", 3,
             "assert isinstance(mean_glucose_mmol, float), \"mean_glucose_mmol should be a float\"\n"
             "assert 1.0 < mean_glucose_mmol < 30.0, "
             "\"a mean glucose in mmol/L lies between 1 and 30: check the unit\"\n"
             "### BEGIN HIDDEN TESTS\n"
             '_mis_mgdl = float(patients["glucose_mgdl"].mean())\n### END HIDDEN TESTS',
             drylab={"answer": "mean_glucose_mmol",
                     "compare": {"kind": "number", "atol": 0.01, "rtol": 0.0},
                     "competencies": ["units", "descriptive-statistics"],
                     "misconceptions": [{
                         "id": "mgdl", "value_from": "_mis_mgdl",
                         "message": "This looks like the mean in mg/dL, before unit "
                                    "conversion."}]}),
        md("## Question 1.3 (manual)\nExplain to a colleague why the unit matters."),
        manual("q1_3_explain", 1, "### BEGIN SOLUTION\nBecause 110 mg/dL is 6.1 mmol/L.\n"
                                  "### END SOLUTION"),
    ])


def m2_tables():
    return notebook([
        md("# Module 2: tables"),
        locked("setup", SETUP),
        params(),
        locked("load_cohort", LOAD),
        md("## Question 2.1\nA DataFrame `by_decade` with columns `decade` (0, 10, ...) and "
           "`n`, one row per decade present, sorted by decade."),
        answer("a2_1", "by_decade = None\n### BEGIN SOLUTION\n"
                       'by_decade = (patients.assign(decade=patients["age"] // 10 * 10)\n'
                       '             .groupby("decade", as_index=False).size()\n'
                       '             .rename(columns={"size": "n"}))\n### END SOLUTION'),
        test("q2_1_decades", 2,
             'assert isinstance(by_decade, pd.DataFrame), "by_decade should be a DataFrame"\n'
             'assert list(by_decade.columns) == ["decade", "n"], '
             '"by_decade needs the columns decade and n"',
             drylab={"answer": "by_decade",
                     "compare": {"kind": "frame", "rtol": 0.0, "check_like": True,
                                 "sort_by": ["decade"]},
                     "competencies": ["aggregation"]}),
        md("## Question 2.2\nThe set `high_ids` of `person_id`s whose glucose is above "
           "160 mg/dL."),
        answer("a2_2", "high_ids = None\n### BEGIN SOLUTION\n"
                       'high_ids = set(patients.loc[patients["glucose_mgdl"] > 160, '
                       '"person_id"].tolist())\n### END SOLUTION'),
        test("q2_2_high", 1,
             'assert isinstance(high_ids, set), "high_ids should be a set"\n'
             "### BEGIN HIDDEN TESTS\n"
             '_mis_row_index = set(patients.index[patients["glucose_mgdl"] > 160].tolist())\n'
             "### END HIDDEN TESTS",
             drylab={"answer": "high_ids", "compare": {"kind": "set"},
                     "competencies": ["filtering"],
                     "misconceptions": [{
                         "id": "row_index", "value_from": "_mis_row_index",
                         "message": "These look like row positions (the index), not "
                                    "person_id values."}]}),
    ])


def p1_plain():
    return notebook([
        md("# Plain nbgrader assignment"),
        locked("intro_code", "import math"),
        answer("squares", "def squares(n):\n    \"\"\"The first n squares.\"\"\"\n"
                          "    ### BEGIN SOLUTION\n    return [i * i for i in range(1, n + 1)]\n"
                          "    ### END SOLUTION"),
        test("test_squares", 2,
             "assert squares(1) == [1]\nassert squares(3) == [1, 4, 9]\n"
             "### BEGIN HIDDEN TESTS\nassert squares(10)[-1] == 100\n### END HIDDEN TESTS"),
        answer("hyp", "def hyp(a, b):\n    ### BEGIN SOLUTION\n"
                      "    return math.sqrt(a * a + b * b)\n    ### END SOLUTION"),
        test("test_hyp", 1, "assert abs(hyp(3, 4) - 5) < 1e-9"),
        test("test_partial", 4,
             "# partial credit, nbgrader-style: the cell's value is the score\n"
             "sum(1.0 for n in (1, 2, 3, 4) if squares(n)[-1] == n * n)"),
        manual("explain", 2, "### BEGIN SOLUTION\nSquares grow fast.\n### END SOLUTION"),
    ])


def write(course: Path, course_id: str, stub: str, modules: dict) -> None:
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(CONFIG.format(course_id=course_id, stub=stub))
    for name, nb in modules.items():
        path = course / "source" / name / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(nb, indent=1) + "\n")


def main() -> None:
    write(FIXTURES / "course", "drylab-fixture", "# your answer here",
          {"m1_counts": m1_counts(), "m2_tables": m2_tables()})
    write(FIXTURES / "plain_course", "plain-fixture",
          "# YOUR CODE HERE\\nraise NotImplementedError()", {"p1": p1_plain()})


if __name__ == "__main__":
    main()
