"""The adversarial corpus, graded in one sandboxed batch with honest residents.

One batch holds three honest residents and every attack of ``corpus/`` (plus the two made at
test time: a 100 MB notebook and a symlink into the reference cache). It is graded with
``--sandbox bwrap``; the honest residents alone are graded in a second batch. Asserted:

- the batch completes: every submission has a journal entry;
- the honest residents' rows are identical to the run without attackers;
- each attack gets the status and exactly the points of ``expected.yaml`` (no point it did
  not earn), with the source's questions and maximum points, and a message wherever a
  question is not passed;
- nothing outside the sandbox changed: the course directory (minus the grader's outputs)
  hashes the same before and after, the files the write attack aimed at (the ``autograder``
  package, the environment's ``sitecustomize.py``, the scratch folders) are untouched, and
  no process of an attack outlives the batch.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import make_corpus as mc
import pytest
import yaml

import autograder
from autograder import sandbox

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox.probe(), reason=f"bwrap sandbox: {sandbox.probe().reason}"),
]

EXPECTED = yaml.safe_load((Path(__file__).parent / "expected.yaml").read_text())
CELL_TIMEOUT, TIME_LIMIT = 8.0, 25.0
#: Written by the grader, so not part of "nothing changed".
GRADER_OUTPUTS = {".drylab", "autograded", "feedback", "gradebook.db"}
HONEST = ("honest-solved", "honest-partial", "honest-empty")


def honest_submissions(release: dict) -> dict[str, dict]:
    solved = copy.deepcopy(release)
    mc._answer(solved, "a1_1", mc.SOLVED_1)
    mc._answer(solved, "a1_2", mc.SOLVED_2)
    partial = copy.deepcopy(release)
    mc._answer(partial, "a1_1", mc.SOLVED_1)
    mc._answer(partial, "a1_2", 'mean_glucose_mmol = float(patients["glucose_mgdl"].mean())\n')
    return {"honest-solved": solved, "honest-partial": partial,
            "honest-empty": copy.deepcopy(release)}


def make_course(path: Path, submissions: dict[str, dict | bytes]) -> Path:
    import shutil

    shutil.copytree(mc.FIXTURE, path)
    for resident, nb in submissions.items():
        folder = path / "submitted" / resident / mc.MODULE
        folder.mkdir(parents=True)
        data = nb if isinstance(nb, bytes) else json.dumps(nb, indent=1).encode("utf-8")
        (folder / f"{mc.MODULE}.ipynb").write_bytes(data)
    return path


def tree_hash(root: Path, skip=frozenset()) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in skip]
            filenames = [f for f in filenames if f not in skip]
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for f in filenames:
            p = Path(dirpath) / f
            out[str(rel / f)] = hashlib.sha256(p.read_bytes()).hexdigest() if not p.is_symlink() \
                else "link:" + os.readlink(p)
    return out


def journal(course: Path) -> dict[str, dict]:
    lines = (course / ".drylab" / "journal.jsonl").read_text().splitlines()
    return {e["resident"]: e for e in map(json.loads, lines)}


def processes_with_cwd_under(root: Path) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.startswith(str(root)):
            found.append(f"{pid} {cwd}")
    return found


def grade(course: Path, scratch: Path):
    from autograder.grade import grade_course

    return grade_course(course, workers=2, sandbox="bwrap", cell_timeout=CELL_TIMEOUT,
                        timeout=TIME_LIMIT, progress=False, scratch=str(scratch))


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    from autograder.build import build_course
    from autograder.course import load_config
    from autograder.reference import reference_dir
    from autograder.score import parse_source

    root = tmp_path_factory.mktemp("adversarial")
    release = mc.build_release()
    honest = honest_submissions(release)

    baseline = make_course(root / "baseline", honest)
    grade(baseline, root / "scratch-baseline")

    attacks = {f"atk-{p.stem}": p.read_bytes() for p in sorted(mc.CORPUS.glob("*.ipynb"))}
    assert len(attacks) >= 20
    course = make_course(root / "course", {**honest, **attacks})
    source_text = (course / "source" / mc.MODULE / f"{mc.MODULE}.ipynb").read_text()
    spec = parse_source(mc.MODULE, source_text, load_config(course))
    ref = reference_dir(course, spec, "atk-symlink_reference") / "q1_1_adults.json"
    extra = {"atk-huge_notebook": mc.huge_notebook(release),
             "atk-symlink_reference": mc.symlink_reference(release, str(ref))}
    for resident, nb in extra.items():
        folder = course / "submitted" / resident / mc.MODULE
        folder.mkdir(parents=True)
        data = nb if isinstance(nb, bytes) else json.dumps(nb).encode("utf-8")
        (folder / f"{mc.MODULE}.ipynb").write_bytes(data)
    build_course(course)  # the release exists before the "before" hash
    before = tree_hash(course, GRADER_OUTPUTS)
    summary = grade(course, root / "scratch")
    after = tree_hash(course, GRADER_OUTPUTS)
    return {"root": root, "baseline": journal(baseline), "course": course,
            "entries": journal(course), "summary": summary, "before": before, "after": after,
            "reference_file": ref,
            "residents": sorted([*honest, *attacks, *extra])}


def test_batch_completes(batch):
    assert sorted(batch["entries"]) == batch["residents"]
    assert batch["summary"].graded == len(batch["residents"])
    assert batch["summary"].by_status.get("grader_error", 0) == 0, {
        r: e["message"] for r, e in batch["entries"].items()
        if e["submission_status"] == "grader_error"}


def test_honest_residents_unaffected_by_attackers(batch):
    def rows(entry):
        return [{k: v for k, v in r.items()} for r in entry["rows"]]

    for resident in HONEST:
        assert rows(batch["entries"][resident]) == rows(batch["baseline"][resident]), resident
        assert batch["entries"][resident]["submission_status"] == "ok"
    solved = {r["question"]: r["points"] for r in batch["entries"]["honest-solved"]["rows"]}
    assert solved == {"q1_1_adults": 2.0, "q1_2_glucose": 3.0, "q1_3_explain": 0.0}


@pytest.mark.parametrize("attack", sorted(EXPECTED))
def test_attack_outcome(batch, attack):
    expected = EXPECTED[attack]
    entry = batch["entries"][f"atk-{attack}"]
    assert entry["submission_status"] in expected["submission"], entry["message"]
    rows = {r["question"]: r for r in entry["rows"]}
    # the source's questions and maximum points, whatever the submission's metadata says
    assert {q: r["max_points"] for q, r in rows.items()} == {
        "q1_1_adults": 2.0, "q1_2_glucose": 3.0, "q1_3_explain": 1.0}
    for question, row in rows.items():
        want = expected.get(question, {"status": None, "points": 0})
        assert row["points"] == want["points"], (question, row)
        if want["status"] is not None:
            assert row["status"] in want["status"], (question, row)
        else:
            assert row["status"] != "passed", (question, row)
        if row["status"] not in ("passed", "needs manual grading"):
            assert row["message"], (question, row)
    if "warning" in expected:
        assert any(expected["warning"] in w for w in entry["warnings"]), entry["warnings"]


def test_nothing_outside_the_sandbox_changed(batch):
    import site

    before, after = batch["before"], batch["after"]
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert not changed, sorted(changed)
    # (other files of the package may change under a developer's hands; these are the
    # write attack's targets)
    package = Path(autograder.__file__).parent
    assert "pwned" not in (package / "checks.py").read_text()
    assert not (package / "drylab-pwned").exists()
    for sp in site.getsitepackages():
        custom = Path(sp) / "sitecustomize.py"
        assert not custom.exists() or "pwned" not in custom.read_text()
    planted = [str(p) for p in batch["root"].rglob("drylab-pwned")]
    assert not planted and not Path("/tmp/drylab-pwned").exists(), planted
    assert batch["reference_file"].is_file() and not batch["reference_file"].is_symlink()


def test_no_attack_process_outlives_the_batch(batch):
    assert processes_with_cwd_under(batch["root"]) == []


def test_attack_reports_show_no_escape(batch):
    """What the network and write attacks saw from inside (printed into their notebooks)."""
    def report(attack):
        nb = json.loads((batch["course"] / "autograded" / f"atk-{attack}" / mc.MODULE
                         / f"{mc.MODULE}.ipynb").read_text())
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                text = "".join(out.get("text", ""))
                if "DRYLAB-ATTACK-REPORT " in text:
                    return json.loads(text.split("DRYLAB-ATTACK-REPORT ", 1)[1].splitlines()[0])
        raise AssertionError(f"no report from {attack}")

    net = report("network")
    assert "CONNECTED" not in net.values(), net
    wrote = report("write_outside")
    # allowed only inside the kernel's private tmpfs (invisible to the host, checked above)
    for target in ("/etc/drylab-pwned", "/usr/lib/drylab-pwned", "/root/drylab-pwned",
                   "/home/drylab-pwned"):
        assert wrote[target] != "WROTE", wrote
    assert not any(v == "WROTE" for k, v in wrote.items()
                   if k.endswith(("sitecustomize.py", "checks.py"))), wrote
