"""Every module, graded by the grading core: solution, release, misconceptions, residents.

The grading runs once per session (conftest.py, ``graded``); each test reads its rows.
"""

from __future__ import annotations

import curriculum_harness as h
import pytest

pytestmark = pytest.mark.slow

def _is_manual(run: h.Run, module: str, gid: str) -> bool:
    source = h.read_nb(run.course / "source" / module / f"{module}.ipynb")
    return gid in h.questions(source).manual


def _describe(sub: h.Submission) -> str:
    return "\n".join(f"  {q}: {r['status']} {r['points']}/{r['max_points']} {r['message']}"
                     for q, r in sub.rows().items())


@pytest.mark.parametrize("resident", h.RESIDENTS)
def test_solution_scores_full_marks(graded, module, resident):
    (sub,) = graded.of(module, "solution", resident)
    assert sub.entry["submission_status"] == "ok", sub.entry["message"]
    rows = sub.rows()
    assert rows, f"{sub.label}: the grader returned no question rows"
    for gid, row in rows.items():
        if _is_manual(graded, module, gid):
            assert row["status"] == "needs manual grading", f"{sub.label} {gid}: {row}"
        else:
            assert row["status"] == "passed" and row["points"] == row["max_points"] > 0, (
                f"{sub.label}: {gid} is {row['status']}: {row['message']}\n{_describe(sub)}")


def test_release_scores_zero_without_errors(graded, module):
    (sub,) = graded.of(module, "release")
    rows = sub.rows()
    assert sum(r["points"] for r in rows.values()) == 0
    not_attempted = {gid: r["status"] for gid, r in rows.items() if r["status"] != "not attempted"}
    assert not not_attempted, f"{sub.label}: expected all 'not attempted', got {not_attempted}"


def test_release_errors_only_in_answer_or_test_cells(graded, module):
    """Run as released, no cell raises except a check failing on a missing answer."""
    nb = graded.executed_release(module)
    bad = []
    for index, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            meta = h.nbg(cell)
            is_test = meta.get("grade") and not meta.get("solution")
            if is_test and out.get("ename") == "AssertionError":
                continue
            bad.append(f"cell {index} ({meta.get('grade_id', 'ungraded')}): "
                       f"{out.get('ename')}: {out.get('evalue')}")
    assert not bad, "the release raises outside its checks:\n" + "\n".join(bad)


def test_variant_loses_points_on_its_question_only(graded, variant):
    module = next(m for m in h.module_names()
                  if variant in h.load_variants(h.CURRICULUM / "source" / m))
    (sub,) = [s for s in graded.of(module, "variant") if variant in s.variants]
    (solution,) = graded.of(module, "solution")
    rows, good = sub.rows(), solution.rows()
    target = rows[variant.question]
    assert target["points"] < target["max_points"], f"{sub.label} kept its points: {target}"
    assert target["status"] == "failed", f"{sub.label}: {target}"
    assert variant.expect_message in target["message"], (
        f"{sub.label}: message {target['message']!r} lacks {variant.expect_message!r}")
    source = h.read_nb(graded.course / "source" / module / f"{module}.ipynb")
    meta_ids = {m["id"] for m in
                source_drylab(source, variant.question).get("misconceptions", [])}
    if variant.id in meta_ids:
        assert target["misconception"] == variant.id, f"{sub.label}: {target}"
    targeted = {v.question for v in sub.variants}
    others = {q: (r["status"], r["points"]) for q, r in rows.items()
              if q not in targeted and (r["status"], r["points"])
              != (good[q]["status"], good[q]["points"])}
    assert not others, f"{sub.label} changed questions no variant targets: {others}"


def source_drylab(source_nb: dict, grade_id: str) -> dict:
    cell = h.questions(source_nb).tests[grade_id]
    return cell["metadata"].get("drylab", {})


def test_residents_get_their_own_cohort_and_answers(graded, module):
    from synthetic_data import resident_seed

    seeds = {r: resident_seed(r) for r in h.RESIDENTS}
    assert len(set(seeds.values())) == len(h.RESIDENTS), seeds
    refs = {r: graded.reference(module, r) for r in h.RESIDENTS}
    keys = [k for k in refs[h.RESIDENTS[0]] if ".mis." not in k]
    assert keys, f"{module}: no reference answers were captured"
    for i, a in enumerate(h.RESIDENTS):
        for b in h.RESIDENTS[i + 1:]:
            differ = [k for k in keys if not _same(refs[a][k], refs[b][k])]
            assert len(differ) * 2 >= len(keys), (
                f"{module}: residents {a} and {b} share the expected answers of "
                f"{sorted(set(keys) - set(differ))}: most answers should depend on the cohort")


def _same(x, y) -> bool:
    import pandas as pd

    if isinstance(x, (pd.DataFrame, pd.Series)) or isinstance(y, (pd.DataFrame, pd.Series)):
        if type(x) is not type(y) or x.shape != y.shape:
            return False
        return x.reset_index(drop=True).equals(y.reset_index(drop=True))
    return x == y


def test_orientation_has_a_public_check_that_fails_then_passes(graded):
    """Module 00 walks residents through a failing public check: the typical wrong answer
    (``person.shape``) fails a public check with a message, and the fixed answer passes."""
    (sub,) = [s for s in graded.of("00_orientation", "variant")
              if any(v.id == "shape_tuple" for v in s.variants)]
    row = sub.rows()["q0_1_n_patients"]
    assert row["status"] == "failed" and "should be a whole number (int)" in row["message"]
    assert "does not match" not in row["message"], "the public check, not the value, fails"
    (solution,) = graded.of("00_orientation", "solution")
    assert solution.rows()["q0_1_n_patients"]["status"] == "passed"
