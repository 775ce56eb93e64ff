"""``drylab build``: source notebooks -> nbgrader release, through nbgrader's own API.

nbgrader's ``GenerateAssignment`` does the work (solutions replaced by the course's
``ClearSolutions.code_stub``, hidden tests removed, read-only cells locked, cell checksums
computed, the assignment and its cells saved into the gradebook). Dry Lab adds one
preprocessor to its list, :class:`ClearDrylabMetadata`, so the release carries no grading
metadata (answer names, tolerances, misconception ids), and afterwards checks the release for
any leftover solution or hidden-test marker and writes a checksum manifest of the release to
``COURSE_DIR/.drylab/release-manifest.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from autograder import course as _course

#: Markers that must never survive into a release.
LEAKY_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def _clear_drylab_metadata_class():
    # Built lazily so importing autograder.build does not import nbgrader.
    from nbgrader.preprocessors import NbGraderPreprocessor

    class ClearDrylabMetadata(NbGraderPreprocessor):
        """Remove ``metadata.drylab`` from every cell of the release.

        The grader reads it from the source notebook; in the release it would only tell a
        resident which variables and tolerances are checked.
        """

        def preprocess_cell(self, cell, resources, cell_index):
            cell.metadata.pop("drylab", None)
            return cell, resources

    return ClearDrylabMetadata


@dataclass
class BuildResult:
    """What ``build_course`` produced."""

    course_dir: Path
    modules: list[str]
    release_files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256

    @property
    def manifest_path(self) -> Path:
        return self.course_dir / ".drylab" / "release-manifest.json"


class BuildError(RuntimeError):
    """nbgrader could not generate a module's release (the message carries its log)."""


def build_course(course_dir: str | os.PathLike, modules: list[str] | None = None) -> BuildResult:
    """Generate the release of some or all modules of a course.

    Parameters
    ----------
    course_dir : path
        An nbgrader course directory (``nbgrader_config.py`` and ``source/``).
    modules : list of str, optional
        Modules to build; all modules in ``source/`` by default.

    Returns
    -------
    BuildResult
        The modules built and the sha256 of every release file.

    Raises
    ------
    ValueError
        An unknown module name.
    BuildError
        nbgrader failed, or a solution / hidden-test marker survived into the release.
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    course_dir = Path(course_dir).resolve()
    cfg = _course.load_config(course_dir)
    known = _course.modules(course_dir)
    modules = list(known if modules is None else modules)
    unknown = sorted(set(modules) - set(known))
    if unknown:
        raise ValueError(f"unknown module(s) {unknown} in {course_dir / 'source'}; known: {known}")
    # First in the list, so checksums are computed on the cells residents receive.
    preprocessors = [
        _clear_drylab_metadata_class(),
        *GenerateAssignment.class_traits()["preprocessors"].default(),
    ]
    cfg.GenerateAssignment.preprocessors = preprocessors
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    result = BuildResult(course_dir=course_dir, modules=modules)
    for module in modules:
        out = api.generate_assignment(module, force=True, create=True)
        if not out.get("success"):
            raise BuildError(
                f"nbgrader could not generate the release of {module!r}:\n"
                f"{out.get('error') or ''}\n{out.get('log') or ''}"
            )
        release = course_dir / "release" / module
        for path in sorted(release.rglob("*")):
            if path.is_file():
                text = path.read_bytes().decode("utf-8", errors="replace")
                leaked = [m for m in LEAKY_MARKERS if m in text]
                if leaked:
                    raise BuildError(f"{path} still contains {leaked}: the release would leak")
                rel = path.relative_to(course_dir).as_posix()
                result.release_files[rel] = _course.sha256_file(path)
    _write_manifest(result)
    return result


def _write_manifest(result: BuildResult) -> None:
    path = result.manifest_path
    path.parent.mkdir(parents=True, exist_ok=True)
    old = {}
    if path.exists():
        old = json.loads(path.read_text()).get("files", {})
    for module in result.modules:
        old = {k: v for k, v in old.items() if not k.startswith(f"release/{module}/")}
    old.update(result.release_files)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"files": dict(sorted(old.items()))}, indent=1) + "\n")
    os.replace(tmp, path)
