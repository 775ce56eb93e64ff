"""The instructor report: tables behind the plots, the banner, self-containment, scale."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from autograder import RESULT_COLUMNS
from autograder.report import (
    build_report,
    common_failures,
    competency_matrix,
    question_outcomes,
    troubled_submissions,
    unsandboxed,
    write_report,
)

QUESTIONS = {  # module -> (question, competencies, points)
    "m1": [("q1_1_adults", "cohort-definition", 2.0), ("q1_2_glucose", "units;statistics", 3.0),
           ("q1_3_explain", "", 1.0)],
    "m2": [("q2_1_decades", "aggregation", 2.0), ("q2_2_high", "filtering;units", 1.0)],
}


def _class(n: int, seed: int = 0) -> pd.DataFrame:
    """A seeded class of n residents with every status represented."""
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        resident = f"res{i:03d}"
        skill = (i + 1) / n
        for module, qs in QUESTIONS.items():
            for k, (q, comps, pts) in enumerate(qs):
                manual = q.endswith("explain")
                u = rng.random()
                status = ("needs manual grading" if manual else "passed" if u < skill
                          else "failed" if u < skill + 0.5 else "error")
                mis = "mgdl" if status == "failed" and q == "q1_2_glucose" else ""
                msg = {"failed": "does not match the expected value" + (
                    ". <b>mg/dL</b> before conversion" if mis else ""),
                    "error": "NameError: name 'patients2' is not defined (cell 7)"}.get(status, "")
                recs.append({
                    "resident": resident, "module": module, "question": q,
                    "competencies": comps, "points": pts if status == "passed" else 0.0,
                    "max_points": pts, "status": status, "message": msg,
                    "misconception": mis, "needs_manual": manual, "cell_index": 4 + 2 * k,
                    "submission_status": "ok"})
    frame = pd.DataFrame(recs, columns=list(RESULT_COLUMNS))
    frame["cell_index"] = frame["cell_index"].astype("Int64")
    return frame


def _subs(results, sandbox="bwrap"):
    subs = results.groupby(["resident", "module"]).agg(
        submission_status=("submission_status", "first")).reset_index()
    return subs.assign(message="", sandbox=sandbox, warnings="")


def _pngs(html: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)]


def test_competency_matrix_values_and_order():
    rows = _class(4)
    mat = competency_matrix(rows)
    # res003 has skill 1.0: every automatic question passed, so 100 in every column, top row.
    assert mat.index[0] == "res003"
    assert (mat.loc["res003"] == 100.0).all()
    # "units" pools q1_2 (3 points) and q2_2 (1 point) of each resident.
    r0 = rows.loc[(rows["resident"] == "res000") & rows["competencies"].str.contains("units")]
    assert mat.loc["res000", "units"] == pytest.approx(100 * r0["points"].sum() / 4.0)
    means = mat.mean(axis=0)
    assert list(means) == sorted(means)  # weakest competency first
    assert "" not in mat.columns  # the manual question has no tag and is not a column


def test_common_failures_group_misconceptions_and_count_residents():
    rows = _class(12)
    fails = common_failures(rows)
    mis = fails.loc[fails["kind"] == "misconception"]
    assert mis["what"].tolist() == ["mgdl"]
    expected = rows.loc[rows["misconception"] == "mgdl", "resident"].nunique()
    assert mis["residents"].iloc[0] == expected
    assert mis["share"].iloc[0] == pytest.approx(expected / 12)
    assert list(fails["residents"]) == sorted(fails["residents"], reverse=True)


def test_outcomes_and_troubled_submissions():
    rows = _class(6)
    rows.loc[(rows["resident"] == "res001") & (rows["module"] == "m2"),
             ["status", "submission_status", "points"]] = ["timeout", "timeout", 0.0]
    out = question_outcomes(rows)
    assert out["question"].tolist() == [q for qs in QUESTIONS.values() for q, _, _ in qs]
    per_q = out.set_index("question")
    assert per_q.loc["q1_3_explain", "needs manual grading"] == 6
    assert (per_q.drop(columns="module").sum(axis=1) == 6).all()
    subs = _subs(rows)
    subs.loc[(subs["resident"] == "res001") & (subs["module"] == "m2"), "message"] = "stopped at 60 s"
    trouble = {(t["resident"], t["module"]): t for t in troubled_submissions(rows, subs)}
    assert trouble[("res001", "m2")]["submission_status"] == "timeout"
    assert trouble[("res001", "m2")]["message"] == "stopped at 60 s"
    assert "q2_1_decades (timeout)" in trouble[("res001", "m2")]["questions"]
    errors = set(zip(rows.loc[rows["status"] == "error", "resident"],
                     rows.loc[rows["status"] == "error", "module"], strict=True))
    assert set(trouble) == errors | {("res001", "m2")}


def test_banner_when_something_ran_unsandboxed(tmp_path):
    rows = _class(12)
    subs = _subs(rows, "bwrap")
    assert unsandboxed(subs) == []
    subs.loc[5, "warnings"] = "UNSANDBOXED: --sandbox auto fell back to no sandbox"
    assert unsandboxed(subs) == [(subs.loc[5, "resident"], subs.loc[5, "module"])]
    subs.loc[5, "warnings"] = ""
    subs.loc[3, "sandbox"] = "none"
    assert unsandboxed(subs) == [(subs.loc[3, "resident"], subs.loc[3, "module"])]
    loud = build_report(tmp_path, rows, subs)
    assert 'role="alert"' in loud
    assert "1 of 24 submissions were graded WITHOUT a sandbox" in loud


@pytest.mark.parametrize("n", [12, 200])
def test_report_is_self_contained_with_four_readable_plots(tmp_path, n):
    rows = _class(n)
    path = write_report(tmp_path, rows, _subs(rows))
    assert path == tmp_path / "report.html"
    html = path.read_text(encoding="utf-8")
    assert 'role="alert"' not in html  # everything ran in the sandbox: no banner
    assert not re.search(r"<(script|link|iframe)\b", html)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    pngs = _pngs(html)
    assert len(pngs) == 4
    import io

    from matplotlib.image import imread

    for png in pngs:
        assert png.startswith(b"\x89PNG")
        img = imread(io.BytesIO(png))
        height, width = img.shape[:2]
        assert 400 <= width <= 1500 and 200 <= height <= 1500, (width, height)
    assert "<b>mg/dL</b>" not in html
    assert f"<li>Residents <b>{n}</b></li>" in html
    # Every resident has a row in the residents table (the heat map names them only up to 60).
    best = f"res{n - 1:03d}"
    assert re.search(rf'<th scope="row">{best}</th><td class="num">5 / 6</td>'
                     rf'<td class="num">3 / 3</td><td class="num">100%</td>', html)
    assert len(re.findall(r'<tr class="resident">', html)) == n
