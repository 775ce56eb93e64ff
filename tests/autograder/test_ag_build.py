"""``drylab build``: the fixture course's release against golden files."""

from __future__ import annotations

import json

import pytest
from conftest import check_golden

from autograder.build import LEAKY_MARKERS

pytestmark = pytest.mark.slow  # nbgrader generate_assignment takes ~10 s


def _release_view(path) -> str:
    """What matters in a release notebook, one line per cell."""
    nb = json.loads(path.read_text())
    lines = []
    for cell in nb["cells"]:
        meta = cell["metadata"]
        nbg = meta.get("nbgrader", {})
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        lines.append(json.dumps({
            "type": cell["cell_type"], "id": nbg.get("grade_id"), "locked": nbg.get("locked"),
            "points": nbg.get("points"), "checksum": nbg.get("checksum"),
            "editable": meta.get("editable", True), "source": src,
        }, sort_keys=True))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("module", ["m1_counts", "m2_tables"])
def test_release_matches_golden(built_course, module):
    release = built_course / "release" / module / f"{module}.ipynb"
    check_golden(f"release_{module}.jsonl", _release_view(release))


def test_release_hides_solutions_hidden_tests_and_grading_metadata(built_course):
    sources = (built_course / "source").rglob("*.ipynb")
    secret_lines = set()
    for src in sources:
        for cell in json.loads(src.read_text())["cells"]:
            text = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            inside = False
            for line in text.split("\n"):
                if "BEGIN SOLUTION" in line or "BEGIN HIDDEN TESTS" in line:
                    inside = True
                elif "END SOLUTION" in line or "END HIDDEN TESTS" in line:
                    inside = False
                elif inside and line.strip():
                    secret_lines.add(line.strip())
    assert len(secret_lines) >= 6
    for path in (built_course / "release").rglob("*.ipynb"):
        text = path.read_text()
        nb = json.loads(text)
        for cell in nb["cells"]:
            assert "drylab" not in cell["metadata"], f"{path.name}: grading metadata leaked"
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            leaked = [line for line in secret_lines if line in src]
            assert not leaked, f"{path.name} leaks {leaked}"
        assert not any(m in text for m in LEAKY_MARKERS)


def test_manifest_and_gradebook(built_course):
    from autograder.course import sha256_file
    from autograder.gradebook import known_assignments

    manifest = json.loads((built_course / ".drylab" / "release-manifest.json").read_text())
    files = manifest["files"]
    assert set(files) == {"release/m1_counts/m1_counts.ipynb", "release/m2_tables/m2_tables.ipynb"}
    for rel, sha in files.items():
        assert sha256_file(built_course / rel) == sha
    assert known_assignments(built_course) == {"m1_counts", "m2_tables"}


def test_unknown_module_is_a_clear_error(built_course):
    from autograder.build import build_course

    with pytest.raises(ValueError, match="unknown module.*m7_nope"):
        build_course(built_course, ["m7_nope"])
