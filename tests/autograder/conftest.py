"""Shared fixtures for the autograder tests: the fixture course built once, and graded once.

Golden files live in tests/autograder/golden/; ``DRYLAB_UPDATE_GOLDEN=1 pytest
tests/autograder`` rewrites them (review the diff before committing).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import classroom  # noqa: E402

GOLDEN = HERE / "golden"
UPDATE = os.environ.get("DRYLAB_UPDATE_GOLDEN") == "1"

# Generous limits: the CI machine is shared and slow; the loop variant pays cell_timeout once.
CELL_TIMEOUT = 8.0
TIMEOUT = 60.0

#: (resident, module) -> variant, for the class graded once per session.
CLASS = {
    **{(f"r_{v}", "m1_counts"): v for v in classroom.M1},
    **{(f"r_{v}", "m2_tables"): v for v in classroom.M2},
}


def check_golden(name: str, text: str) -> None:
    """Compare ``text`` with golden/<name> (or rewrite it when updating)."""
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"golden file {path} did not exist and was written; review and rerun")
    assert text == path.read_text(), f"differs from golden/{name} (DRYLAB_UPDATE_GOLDEN=1 rewrites)"


def tree_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def add_class(course: Path, pairs=None) -> None:
    """Submissions of the standard class, plus the bad-input ones."""
    for (resident, module), variant in CLASS.items():
        if pairs is not None and (resident, module) not in pairs:
            continue
        answers = (classroom.M1 if module == "m1_counts" else classroom.M2)[variant]
        classroom.submit(course, resident, module,
                         classroom.fill(classroom.release_notebook(course, module), answers))
    if pairs is None:
        release = classroom.release_notebook(course, "m1_counts")
        right = classroom.M1["correct"]
        classroom.submit(course, "x_non_utf8", "m1_counts", b"\xff\xfe{\x00 not utf-8")
        classroom.submit(course, "x_corrupt", "m1_counts", '{"cells": [')
        classroom.submit(course, "x_wrong_name", "m1_counts", classroom.fill(release, right),
                         name="my_copy.ipynb")
        classroom.submit(course, "x_missing_cells", "m1_counts",
                         classroom.edit(classroom.fill(release, right), "delete_test"))
        classroom.submit(course, "x_edit_test", "m1_counts",
                         classroom.edit(classroom.fill(release, classroom.M1["wrong"]),
                                        "edit_test"))
        classroom.submit(course, "x_points", "m1_counts",
                         classroom.edit(classroom.fill(release, right), "points"))
        classroom.submit(course, "x_unknown", "m9_nope", classroom.fill(release, right))


@pytest.fixture(scope="session")
def built_course(tmp_path_factory) -> Path:
    from autograder.build import build_course

    course = classroom.copy_course(classroom.COURSE, tmp_path_factory.mktemp("built") / "c")
    build_course(course)
    return course


def copy_built(built: Path, dest: Path) -> Path:
    """A copy of the built course (release, gradebook, reference cache) without submissions."""
    shutil.copytree(built, dest, ignore=shutil.ignore_patterns("submitted", "autograded",
                                                               "journal.jsonl*"))
    return dest


@pytest.fixture(scope="session")
def graded_course(built_course, tmp_path_factory):
    """The class graded once with the local process pool: (course, summary, hashes before)."""
    from autograder.grade import grade_course

    course = copy_built(built_course, tmp_path_factory.mktemp("graded") / "c")
    add_class(course)
    before = tree_hashes(course / "submitted")
    summary = grade_course(course, workers=2, sandbox="none", cell_timeout=CELL_TIMEOUT,
                           timeout=TIMEOUT, progress=False)
    # Later tests reuse the reference cache (keyed by source hash, so it stays valid).
    shutil.copytree(course / ".drylab" / "reference", built_course / ".drylab" / "reference",
                    dirs_exist_ok=True)
    return course, summary, before


def results_table(course: Path) -> str:
    """The results as stable CSV text (the columns a golden file pins)."""
    from autograder.journal import read_results

    frame = read_results(course)
    return frame.to_csv(index=False, lineterminator="\n")


def load_json(path: Path):
    return json.loads(path.read_text())
