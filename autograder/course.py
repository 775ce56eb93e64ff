"""The course directory: nbgrader's configuration and layout, read once.

A Dry Lab course is an nbgrader course directory (docs/grading-model.md)::

    COURSE_DIR/nbgrader_config.py
    COURSE_DIR/source/<module>/<module>.ipynb
    COURSE_DIR/release/<module>/...                  (drylab build)
    COURSE_DIR/submitted/<resident>/<module>/*.ipynb (collected)
    COURSE_DIR/autograded/<resident>/<module>/...    (drylab grade, for formgrader)
    COURSE_DIR/gradebook.db                          (nbgrader's gradebook)
    COURSE_DIR/.drylab/                              (journal, reference cache, manifest)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def load_config(course_dir: str | os.PathLike):
    """nbgrader's configuration for a course: its ``nbgrader_config.py`` plus the root.

    Raises
    ------
    FileNotFoundError
        When ``course_dir`` does not exist or has no ``source/`` folder.
    """
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    course_dir = Path(course_dir).resolve()
    if not (course_dir / "source").is_dir():
        raise FileNotFoundError(
            f"{course_dir} is not a course directory: expected a source/ folder with one "
            "folder per module (see docs/grading-model.md)"
        )
    cfg = Config()
    if (course_dir / "nbgrader_config.py").exists():
        cfg.merge(PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config())
    cfg.CourseDirectory.root = str(course_dir)
    cfg.CourseDirectory.source_directory = "source"
    return cfg


def modules(course_dir: str | os.PathLike) -> list[str]:
    """Module names: the folders of ``source/`` that hold ``<module>.ipynb``, sorted."""
    src = Path(course_dir) / "source"
    return sorted(p.name for p in src.iterdir() if (p / f"{p.name}.ipynb").is_file())


def source_notebook(course_dir: str | os.PathLike, module: str) -> Path:
    """The instructor's notebook of a module."""
    return Path(course_dir) / "source" / module / f"{module}.ipynb"


def db_url(course_dir: str | os.PathLike) -> str:
    """The gradebook URL nbgrader uses for this course (its default location)."""
    return f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}"


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
