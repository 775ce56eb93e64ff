"""Fixtures of the curriculum harness: the built course and the graded run, once a session.

Tests take a ``module`` (every module under curriculum/source/) or a ``variant`` (every entry
of every module's misconceptions.yml) parameter; the graded run grades only the modules the
selected tests need.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import curriculum_harness as h  # noqa: E402 (after the path set-up above)


def pytest_generate_tests(metafunc):
    if "module" in metafunc.fixturenames:
        metafunc.parametrize("module", h.module_names(), scope="session")
    if "variant" in metafunc.fixturenames:
        cases = [(m, v) for m in h.module_names()
                 for v in h.load_variants(h.CURRICULUM / "source" / m)]
        metafunc.parametrize("variant", [c[1] for c in cases],
                             ids=[f"{m}-{v.question}-{v.id}" for m, v in cases], scope="session")


def _modules_of(items) -> list[str]:
    known = set(h.module_names())
    wanted = set()
    for item in items:
        # other test files (e.g. the autograder's) also parametrize on "module"; only the
        # harness's own tests select curriculum modules
        if Path(str(item.fspath)).parent != Path(__file__).resolve().parent:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "module" in params:
            wanted.add(params["module"])
        if "variant" in params:
            wanted.update(m for m in h.module_names()
                          if params["variant"] in h.load_variants(h.CURRICULUM / "source" / m))
    return sorted(wanted & known) or h.module_names()


@pytest.fixture(scope="session")
def built_course(tmp_path_factory) -> Path:
    """The course copied and built (nbgrader release) once for the session."""
    return h.build(tmp_path_factory.mktemp("curriculum"), h.module_names())


@pytest.fixture(scope="session")
def graded(request, built_course) -> h.Run:
    """Every harness submission of the selected modules, graded by the grading core."""
    return h.grade_all(built_course, _modules_of(request.session.items),
                       workers=h.workers_default())
