"""Answer-key secrecy: the release, the feedback and the grading sandbox never give it away.

- Every solution line and hidden-test line of every source notebook (the fixture courses and
  the curriculum) is looked for in the release built from it, and in every feedback page of a
  graded class (where a resident's own code may of course show their own lines).
- No feedback page of a question that was not passed shows the expected value.
- An attack notebook graded in the sandbox walks the file system, /proc and its environment
  and prints what it saw: nothing of the course (source, gradebook, reference cache, other
  residents' submissions) is in its view.
"""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from autograder import sandbox

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "adversarial"))
import make_corpus as mc  # noqa: E402

COURSES = {
    "fixture": ROOT / "tests" / "fixtures" / "course",
    "plain": ROOT / "tests" / "fixtures" / "plain_course",
    "curriculum": ROOT / "curriculum",
}
MARKERS = {"BEGIN SOLUTION": "secret", "END SOLUTION": None,
           "BEGIN HIDDEN TESTS": "secret", "END HIDDEN TESTS": None}
CANARY = "CANARY-OTHER-RESIDENT-7f3a91"


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def secret_lines(nb: dict) -> set[str]:
    """Lines inside solution / hidden-test regions (or whole marker-less solution cells) that
    appear nowhere in the public part of the notebook; lines under 8 characters are left out."""
    public, secret = set(), set()
    for cell in nb["cells"]:
        lines = [line.strip() for line in _source(cell).splitlines()]
        nbg = cell.get("metadata", {}).get("nbgrader", {})
        has_markers = any(m in line for line in lines for m in MARKERS)
        region = "secret" if nbg.get("solution") and not has_markers else None
        for line in lines:
            marker = next((m for m in MARKERS if m in line), None)
            if marker:
                region = MARKERS[marker]
                continue
            (secret if region else public).add(line)
    public_text = "\n".join(public)
    # a secret line that is part of a public one (a hint quoting a fragment) is no secret
    return {s for s in secret - public if len(s) >= 8 and s not in public_text}


def source_notebooks(course: Path) -> list[Path]:
    return sorted((course / "source").glob("*/*.ipynb"))


def release_text(release: Path) -> str:
    parts = []
    for nb_path in release.rglob("*.ipynb"):
        nb = json.loads(nb_path.read_text())
        parts += [_source(c) for c in nb["cells"]]
        parts += [json.dumps(c.get("outputs", [])) for c in nb["cells"]]
        parts.append(json.dumps(nb["metadata"]))
        assert all("drylab" not in c.get("metadata", {}) for c in nb["cells"]), nb_path
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COURSES))
def test_release_has_no_solution_or_hidden_test_line(name, tmp_path):
    from autograder.build import build_course

    src = COURSES[name]
    if not (src / "source").is_dir():
        pytest.fail(f"{src} has no source/ folder")
    course = tmp_path / name
    shutil.copytree(src, course, ignore=shutil.ignore_patterns(".drylab", "release", "*.db"))
    build_course(course)
    checked = 0
    for nb_path in source_notebooks(course):
        module = nb_path.parent.name
        secrets = secret_lines(json.loads(nb_path.read_text()))
        text = release_text(course / "release" / module)
        leaked = sorted(s for s in secrets if s in text)
        assert not leaked, f"{module}: {leaked[:5]}"
        checked += len(secrets)
    assert checked > 0


# ------------------------------------------------------------------ a graded class


def _fixture_submissions(release: dict) -> dict[str, dict]:
    def with_answers(a1, a2, extra=""):
        nb = copy.deepcopy(release)
        mc._answer(nb, "a1_1", a1 + extra)
        mc._answer(nb, "a1_2", a2)
        return nb

    return {
        "r-solved": with_answers(mc.SOLVED_1, mc.SOLVED_2),
        "r-partial": with_answers(mc.SOLVED_1,
                                  'mean_glucose_mmol = float(patients["glucose_mgdl"].mean())\n'),
        "r-wrong": with_answers("n_adults = 3\n", "mean_glucose_mmol = 2.5\n"),
        "r-other": with_answers(f"# {CANARY}\nn_adults = 1\n", "mean_glucose_mmol = None\n"),
        "r-snoop": json.loads((mc.CORPUS / "snoop_files.ipynb").read_text()),
    }


def _plain_submissions(release: dict) -> dict[str, dict]:
    wrong = copy.deepcopy(release)
    for cell in wrong["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid == "squares":  # passes the public asserts, fails the hidden one
            cell["source"] = "def squares(n):\n    return [1, 4, 9][:n]\n"
    return {"p-empty": copy.deepcopy(release), "p-hidden-fails": wrong}


def _make_class(src: Path, dest: Path, module: str, make_subs) -> Path:
    from autograder.build import build_course

    shutil.copytree(src, dest)
    build_course(dest)
    release = json.loads((dest / "release" / module / f"{module}.ipynb").read_text())
    for resident, nb in make_subs(release).items():
        folder = dest / "submitted" / resident / module
        folder.mkdir(parents=True)
        (folder / f"{module}.ipynb").write_text(json.dumps(nb))
    return dest


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not sandbox.probe():
        pytest.skip(f"bwrap sandbox: {sandbox.probe().reason}")
    from autograder.feedback import write_feedback
    from autograder.grade import grade_course

    root = tmp_path_factory.mktemp("secrecy")
    fixture = _make_class(COURSES["fixture"], root / "fixture", "m1_counts", _fixture_submissions)
    plain = _make_class(COURSES["plain"], root / "plain", "p1", _plain_submissions)
    for course in (fixture, plain):
        grade_course(course, workers=2, sandbox="bwrap", cell_timeout=20, timeout=60,
                     progress=False, scratch=str(root / f"scratch-{course.name}"))
        write_feedback(course)
    return {"fixture": fixture, "plain": plain}


def _page_text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", path.read_text()))


def _journal(course: Path) -> dict[str, dict]:
    lines = (course / ".drylab" / "journal.jsonl").read_text().splitlines()
    return {e["resident"]: e for e in map(json.loads, lines)}


@pytest.mark.slow
@pytest.mark.parametrize("which", ["fixture", "plain"])
def test_feedback_has_no_solution_or_hidden_test_line(graded, which):
    course = graded[which]
    pages = sorted((course / "feedback").rglob("*.html"))
    residents = sorted(p.name for p in (course / "submitted").iterdir())
    assert len(pages) == len(residents), pages
    for nb_path in source_notebooks(course):
        module = nb_path.parent.name
        secrets = secret_lines(json.loads(nb_path.read_text()))
        assert secrets
        for page in (course / "feedback").glob(f"*/{module}/*.html"):
            resident = page.parent.parent.name
            own = (course / "submitted" / resident / module / f"{module}.ipynb").read_text()
            own_lines = {line.strip() for c in json.loads(own)["cells"]
                         for line in _source(c).splitlines()}
            text = _page_text(page)
            leaked = sorted(s for s in secrets - own_lines if s in text)
            assert not leaked, f"{page}: {leaked[:5]}"


@pytest.mark.slow
def test_feedback_never_shows_an_expected_value(graded):
    course = graded["fixture"]
    entries = _journal(course)
    checked = 0
    for ref in (course / ".drylab" / "reference" / "m1_counts").glob("*/*/*.json"):
        resident, key = ref.parent.name, ref.stem
        if resident not in entries or "." in key:
            continue
        rec = json.loads(ref.read_text())
        value = rec.get("value")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        row = next(r for r in entries[resident]["rows"] if r["question"] == key)
        if row["status"] == "passed":
            continue
        forms = {repr(value)} | ({f"{value:.1f}", f"{value:.2f}", f"{value:.3f}"}
                                 if isinstance(value, float) else {str(value)})
        text = _page_text(next((course / "feedback" / resident).rglob("*.html")))
        shown = [f for f in forms if re.search(rf"(?<![\d.]){re.escape(f)}(?![\d])", text)]
        assert not shown, (resident, key, shown)
        checked += 1
    assert checked >= 3


@pytest.mark.slow
def test_resident_code_cannot_see_the_course(graded):
    course = graded["fixture"]
    nb = json.loads((course / "autograded" / "r-snoop" / "m1_counts" / "m1_counts.ipynb")
                    .read_text())
    outputs = "".join("".join(o.get("text", "")) for c in nb["cells"]
                      for o in c.get("outputs", []))
    assert "DRYLAB-ATTACK-REPORT " in outputs, outputs[:2000]
    seen = json.loads(outputs.split("DRYLAB-ATTACK-REPORT ", 1)[1].splitlines()[0])
    blob = json.dumps(seen)
    # nothing of the course: not its path, not another resident's work, not the answer key
    assert str(course) not in blob
    assert CANARY not in blob
    # (file contents may name these: the grader's own source code is public and readable)
    paths = json.dumps([seen["found"], seen["listdir"]])
    for name in ("gradebook.db", "journal.jsonl", "submitted", "autograded", "release"):
        assert name not in paths, name
    for guess in ("../../source/m1_counts/m1_counts.ipynb", "../../../gradebook.db"):
        assert seen["read"][guess] == "FileNotFoundError", guess
    source = json.loads((course / "source" / "m1_counts" / "m1_counts.ipynb").read_text())
    assert not [s for s in secret_lines(source) if s in blob]
    assert not any("/reference/" in p for p in seen["found"])
    # what it could list is the system, the Python environment and its own scratch dir
    bound = [Path(p) for p in (sys.prefix, sys.base_prefix, str(ROOT))]
    assert set(seen["listdir"]["/"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64",
                                         "libx32", "proc", "root", "sbin", "tmp", "usr",
                                         *{p.parts[1] for p in bound}}
    home = seen["listdir"]["/home"]
    assert home == "FileNotFoundError" or set(home) <= {
        p.parts[2] for p in bound if p.parts[1] == "home"}
    assert seen["read"]["/etc/shadow"] == "FileNotFoundError"
    # its processes are its own: the kernel and the sandbox's init
    assert len(seen["procs"]) <= 3, seen["procs"]
    assert not any(k.startswith(("JPY_SESSION", "DRYLAB_")) for k in seen["env"])
