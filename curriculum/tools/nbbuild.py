"""Build a curriculum notebook from code (its ``make_notebook.py``) and text (``text.<lang>.yml``).

Each module folder may hold a ``make_notebook.py`` defining ``build(b: Builder) -> None``, and
its resident-facing text in ``text.en.yml``: every markdown cell, check message, misconception
message, plot label and printed sentence of the notebook, by key. The code never holds prose,
so a translated edition is a new ``text.<lang>.yml`` and one rebuild
(``python curriculum/tools/build_notebooks.py --lang zh``), and a reviewer reads the prose in
one file and the code in another.

The built ``<module>.ipynb`` is committed and is the source of truth for nbgrader; the
harness checks that it is what its builder writes, so the two never drift.

Cells follow docs/grading-model.md: a locked ``setup`` cell, a papermill ``parameters`` cell,
answer cells (``<var> = None`` then a solution region), locked test cells with public checks,
a hidden-tests region and ``metadata.drylab``, and manual cells.

Placeholders in code: ``{{t:key}}`` becomes the Python string literal of ``text[key]``, so a
check's message lives in the text file but the code stays valid Python.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

GRADE_ID = re.compile(r"^q\d+_\d+_[a-z0-9_]+$")
_PLACEHOLDER = re.compile(r"\{\{t:([A-Za-z0-9_.]+)\}\}")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def load_text(path: str | Path) -> dict[str, str]:
    """The ``key -> text`` mapping of a ``text.<lang>.yml`` file (values stripped)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    bad = [k for k, v in data.items() if not isinstance(v, str)]
    if bad:
        raise ValueError(f"{path}: the values of {bad} must be text")
    return {k: v.strip() for k, v in data.items()}


@dataclass
class Builder:
    """Collects the cells of one notebook; see the module docstring."""

    text: dict[str, str]
    cells: list[dict] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    # ---- text ------------------------------------------------------------------------

    def t(self, key: str) -> str:
        """The text of ``key`` (KeyError names the missing key and the known ones)."""
        if key not in self.text:
            raise KeyError(f"text key {key!r} is missing from the module's text file")
        self.used.add(key)
        return self.text[key]

    def code_text(self, code: str) -> str:
        """``code`` with every ``{{t:key}}`` replaced by the literal of that text."""
        return _PLACEHOLDER.sub(lambda m: repr(self.t(m.group(1))), code.strip("\n"))

    # ---- cells -----------------------------------------------------------------------

    def _add(self, kind: str, source: str, *, nbgrader=None, drylab=None, tags=None,
             cell_id=None) -> dict:
        cell = {"cell_type": kind, "id": cell_id or f"cell-{len(self.cells):03d}",
                "metadata": {}, "source": source}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        if nbgrader is not None:
            cell["metadata"]["nbgrader"] = {"schema_version": 3, "task": False, **nbgrader}
        if drylab is not None:
            cell["metadata"]["drylab"] = drylab
        if tags:
            cell["metadata"]["tags"] = list(tags)
        self.cells.append(cell)
        return cell

    def md(self, *keys: str) -> None:
        """One markdown cell holding the texts of ``keys``, separated by blank lines."""
        self._add("markdown", "\n\n".join(self.t(k) for k in keys))

    def code(self, code: str) -> None:
        """An ordinary code cell the resident may edit and run (ungraded)."""
        self._add("code", self.code_text(code))

    def locked(self, grade_id: str, code: str) -> None:
        """A read-only code cell (nbgrader restores it at grading)."""
        self._add("code", self.code_text(code), cell_id=grade_id,
                  nbgrader={"grade": False, "solution": False, "locked": True,
                            "grade_id": grade_id})

    def parameters(self, code: str) -> None:
        """The papermill ``parameters`` cell; the grader injects ``resident_id`` after it."""
        self._add("code", self.code_text(code), tags=["parameters"], cell_id="parameters")

    def question(self, grade_id: str, *, points: int, answer: str, solution: str,
                 checks: str, compare: dict, competencies: list[str],
                 misconceptions: list[tuple[str, str, str]], hidden: str = "") -> None:
        """An answer cell and its locked test cell with ``metadata.drylab``.

        Parameters
        ----------
        grade_id : str
            ``qN_M_slug``, the test cell's id (the answer cell is ``<grade_id>_answer``).
        answer : str
            The variable that holds the answer; the release's answer cell sets it to None.
        solution, checks, hidden : str
            The solution region, the public checks, and the hidden region (which defines
            the misconception values from the cohort only, never from resident variables).
        misconceptions : list of (id, value_from, text key of the message)
        """
        if not GRADE_ID.match(grade_id):
            raise ValueError(f"grade_id {grade_id!r} must look like q1_2_slug")
        body = f"{answer} = None\n### BEGIN SOLUTION\n{self.code_text(solution)}\n### END SOLUTION"
        self._add("code", body, cell_id=f"{grade_id}_answer",
                  nbgrader={"grade": False, "solution": True, "locked": False,
                            "grade_id": f"{grade_id}_answer"})
        test = self.code_text(checks)
        if hidden:
            test += f"\n### BEGIN HIDDEN TESTS\n{self.code_text(hidden)}\n### END HIDDEN TESTS"
        drylab = {
            "answer": answer,
            "compare": compare,
            "competencies": list(competencies),
            "misconceptions": [{"id": i, "value_from": v, "message": self.t(k)}
                               for i, v, k in misconceptions],
        }
        self._add("code", test, drylab=drylab, cell_id=grade_id,
                  nbgrader={"grade": True, "solution": False, "locked": True,
                            "grade_id": grade_id, "points": points})

    def manual(self, grade_id: str, *, points: int, competencies: list[str],
               model_answer_key: str) -> None:
        """A markdown answer graded by an instructor (the model answer is the solution)."""
        if not GRADE_ID.match(grade_id):
            raise ValueError(f"grade_id {grade_id!r} must look like q1_2_slug")
        source = f"### BEGIN SOLUTION\n{self.t(model_answer_key)}\n### END SOLUTION"
        self._add("markdown", source, cell_id=grade_id,
                  drylab={"competencies": list(competencies)},
                  nbgrader={"grade": True, "solution": True, "locked": False,
                            "grade_id": grade_id, "points": points})

    # ---- output ----------------------------------------------------------------------

    def notebook(self) -> dict:
        """The notebook as an nbformat 4.5 dict (outputs empty)."""
        unused = sorted(set(self.text) - self.used)
        if unused:
            raise ValueError(f"text keys never used by the builder: {unused}")
        return {
            "cells": self.cells,
            "metadata": {"kernelspec": KERNELSPEC,
                         "language_info": {"name": "python", "version": "3.11"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }


def count_checks(answer: str, label_key: str, *, lo: int = 0, hi: str = 'len(_raw["person"])',
                 unit_key: str = "unit_patients") -> str:
    """The public checks of a question whose answer is a count (an ``int`` in ``[lo, hi]``).

    ``hi`` is code (evaluated in the notebook); ``label_key`` and ``unit_key`` are text keys.
    """
    return (f'check_type({answer}, int, "{answer}")\n'
            f'check_range({answer}, {lo}, {hi}, "{answer}", {{{{t:{unit_key}}}}})\n'
            f"passed({{{{t:{label_key}}}}})")


def dumps(nb: dict) -> str:
    """The notebook's file text: stable key order and indentation, so diffs stay small."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
