"""Structure lint of every module (STYLE.md's template, docs/grading-model.md's contract).

Fast: reads the source notebooks and the built release; executes nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import curriculum_harness as h
import yaml

GRADE_ID = re.compile(r"^q(\d+)_(\d+)_[a-z0-9_]+$")
TAG = re.compile(r"`([a-z][a-z0-9-]*)`")
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def _source(module: str) -> dict:
    return h.read_nb(h.CURRICULUM / "source" / module / f"{module}.ipynb")


def _known_competencies() -> set[str]:
    data = yaml.safe_load((h.CURRICULUM / "competencies.yml").read_text(encoding="utf-8"))
    return set(data["competencies"])


def test_competencies_file_is_well_formed():
    data = yaml.safe_load((h.CURRICULUM / "competencies.yml").read_text(encoding="utf-8"))
    tags = data["competencies"]
    assert len(tags) >= 11, "one or more competencies per module of DESIGN.md"
    for tag, line in tags.items():
        assert re.fullmatch(r"[a-z][a-z0-9-]*", tag), tag
        assert isinstance(line, str) and 20 <= len(line) <= 120, (tag, line)


def test_top_cell_has_title_objectives_with_known_tags_and_question(module):
    first = h.text(_source(module)["cells"][0])
    assert first.startswith("# "), "the first cell starts with the module's title"
    assert re.search(r"\d+\s*min", first), "the first cell says how long the module takes"
    objectives = [line for line in first.splitlines() if re.match(r"^\s*\d+\.\s", line)]
    assert 3 <= len(objectives) <= 5, f"3-5 numbered objectives, found {len(objectives)}"
    known = _known_competencies()
    for line in objectives:
        tags = TAG.findall(line)
        assert tags and tags[-1] in known, f"objective not ending in a known competency tag: {line}"
    assert "question" in first.lower(), "the first cell states the clinical question"


def test_setup_then_parameters_then_cohort(module):
    cells = _source(module)["cells"]
    setup = [i for i, c in enumerate(cells) if h.nbg(c).get("grade_id") == "setup"]
    params = [i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])]
    assert setup and h.nbg(cells[setup[0]]).get("locked"), "a locked cell with grade_id setup"
    assert len(params) == 1 and params[0] > setup[0], "one parameters cell, after setup"
    assert re.search(r"^resident_id\s*=", h.text(cells[params[0]]), re.M), (
        "the parameters cell sets resident_id")
    later = "\n".join(h.text(c) for c in cells[params[0] + 1:] if c["cell_type"] == "code")
    assert re.search(r"cohort_for\(resident_id[^)]*\)\.tables", later), (
        "the resident's own cohort is built, and only its tables are kept (no truth, no "
        "defect log in the resident's namespace)")
    code = "\n".join(h.text(c) for c in cells if c["cell_type"] == "code")
    for leak in (".truth", ".defects"):
        assert leak not in code, f"residents get the tables, never the cohort's {leak}"


def test_graded_cells_follow_the_contract(module):
    source = _source(module)
    q = h.questions(source)
    known = _known_competencies()
    from autograder.compare import COMPARE_KINDS

    assert 4 <= len(q.tests) <= 8, f"4-8 auto-graded questions, found {len(q.tests)}"
    assert 1 <= len(q.manual) <= 2, f"1-2 manual questions, found {len(q.manual)}"
    for gid, cell in {**q.tests, **q.manual}.items():
        meta = h.nbg(cell)
        assert GRADE_ID.match(gid), f"grade_id {gid!r} is not qN_M_slug"
        assert meta.get("points", 0) > 0, f"{gid}: points in metadata"
        assert meta.get("locked") or meta.get("solution"), gid
    for gid, cell in q.tests.items():
        drylab = cell["metadata"].get("drylab", {})
        assert drylab.get("answer"), f"{gid}: metadata.drylab.answer"
        assert drylab.get("compare", {}).get("kind") in COMPARE_KINDS, gid
        tags = drylab.get("competencies", [])
        assert tags and set(tags) <= known, f"{gid}: unknown competencies {set(tags) - known}"
        hidden = HIDDEN.search(h.text(cell))
        mis = drylab.get("misconceptions", [])
        assert mis, f"{gid}: at least one targeted misconception"
        for m in mis:
            assert m.get("id") and m.get("message"), f"{gid}: {m}"
            assert hidden and re.search(rf"^{re.escape(m['value_from'])}\s*=", hidden.group(1),
                                        re.M), f"{gid}: {m['value_from']} set in hidden tests"
        answer_cell = next(c for c in source["cells"]
                           if h.nbg(c).get("grade_id") == q.answer_of[gid])
        first_line = h.text(answer_cell).split("\n", 1)[0]
        assert first_line.strip() == f"{drylab['answer']} = None", (
            f"{gid}: the answer cell starts with `{drylab['answer']} = None`")
    for gid, cell in q.manual.items():
        assert cell["metadata"].get("drylab", {}).get("competencies"), gid


def test_each_question_has_a_heading_naming_it_and_its_variable(module):
    cells = _source(module)["cells"]
    q = h.questions({"cells": cells})
    for gid in [*q.tests, *q.manual]:
        n, m = GRADE_ID.match(gid).groups()
        first = q.answer_of.get(gid) or gid
        index = next(i for i, c in enumerate(cells) if h.nbg(c).get("grade_id") == first)
        prose = next(h.text(c) for c in reversed(cells[:index]) if c["cell_type"] == "markdown")
        assert re.search(rf"^#+ .*\b{n}\.{m}\b", prose, re.M), (
            f"{gid}: the markdown above it is headed 'Question {n}.{m}'")
        if gid in q.tests:
            answer = q.tests[gid]["metadata"]["drylab"]["answer"]
            assert f"`{answer}`" in prose, f"{gid}: the text names the variable `{answer}`"


def test_key_points_and_real_data_notes(module):
    prose = "\n".join(h.text(c) for c in _source(module)["cells"] if c["cell_type"] == "markdown")
    assert re.search(r"^#+ Key points", prose, re.M | re.I)
    assert re.search(r"real hospital data", prose, re.I)


def test_every_metadata_misconception_has_a_variant(module):
    q = h.questions(_source(module))
    variants = h.load_variants(h.CURRICULUM / "source" / module)
    covered = {(v.question, v.id) for v in variants}
    for gid, cell in q.tests.items():
        for m in cell["metadata"]["drylab"].get("misconceptions", []):
            assert (gid, m["id"]) in covered, (
                f"{module}: no variant in misconceptions.yml exercises {gid}/{m['id']}")
    for v in variants:
        assert v.question in q.tests, f"{module}: variant {v.id} targets unknown {v.question}"


def test_release_holds_no_solution_or_hidden_text(built_course, module):
    release_text = (built_course / "release" / module / f"{module}.ipynb").read_text(
        encoding="utf-8")
    release = {line.strip() for c in json.loads(release_text)["cells"]
               for line in h.text(c).split("\n")}
    source = _source(module)
    q = h.questions(source)
    outside = {line.strip() for c in source["cells"] if not h.nbg(c).get("solution")
               for line in HIDDEN.sub("", h.text(c)).split("\n")}
    leaks = []
    for gid, region in q.solutions.items():
        for line in region.split("\n"):
            line = line.strip()
            if len(line) >= 12 and line not in outside and line in release:
                leaks.append(f"{gid}: {line}")
    for gid, cell in q.tests.items():
        hidden = HIDDEN.search(h.text(cell))
        for line in (hidden.group(1).split("\n") if hidden else []):
            if len(line.strip()) >= 12 and line.strip() in release:
                leaks.append(f"{gid} (hidden): {line.strip()}")
    assert '"drylab"' not in release_text, "metadata.drylab must not reach the release"
    assert not leaks, "solution text in the release:\n" + "\n".join(leaks)
    extra = sorted(p.name for p in (built_course / "release" / module).iterdir()
                   if p.name != f"{module}.ipynb")
    assert not extra, f"harness / builder files copied into the release: {extra}"


def test_source_notebook_is_ruff_clean(module):
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    path = h.CURRICULUM / "source" / module / f"{module}.ipynb"
    out = subprocess.run([ruff, "check", "--quiet", str(path)], cwd=h.REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_outputs_are_cleared(module):
    for i, cell in enumerate(_source(module)["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"{module}: cell {i} has outputs; commit notebooks cleared")


def test_notebooks_match_their_builders():
    """A module with a make_notebook.py commits exactly what it builds (text and code)."""
    sys.path.insert(0, str(h.CURRICULUM / "tools"))
    try:
        import build_notebooks
    finally:
        sys.path.remove(str(h.CURRICULUM / "tools"))
    found = build_notebooks.builders()
    assert "00_orientation" in found, "module 00 is built by its make_notebook.py"
    stale = [m for m, path in found.items()
             if (path.parent / f"{m}.ipynb").read_text(encoding="utf-8")
             != build_notebooks.render(path.parent)]
    assert not stale, (f"{stale} differ from make_notebook.py + text.en.yml: run "
                       "python curriculum/tools/build_notebooks.py")
