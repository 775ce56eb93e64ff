"""Make submissions for the fixture courses: a release notebook with answers filled in.

Used by the autograder tests and by benchmarks/bench_grading.py. A *variant* names what the
resident did; :data:`M1`, :data:`M2` and :data:`P1` map variants to
``{answer cell grade_id: new source}`` (and a few notebook-level edits).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT / "tests" / "fixtures" / "course"
PLAIN = ROOT / "tests" / "fixtures" / "plain_course"

_M1_RIGHT = {
    "a1_1": 'n_adults = int((patients["age"] >= 18).sum())',
    "a1_2": 'mean_glucose_mmol = float(patients["glucose_mgdl"].mean() / 18.0)',
    "q1_3_explain": "Because a mean in mg/dL is 18 times larger than in mmol/L.",
}
_M2_RIGHT = {
    "a2_1": ('by_decade = (patients.assign(decade=patients["age"] // 10 * 10)\n'
             '             .groupby("decade", as_index=False).size()\n'
             '             .rename(columns={"size": "n"}))'),
    "a2_2": 'high_ids = set(patients.loc[patients["glucose_mgdl"] > 160, "person_id"])',
}

M1 = {
    "correct": _M1_RIGHT,
    "empty": {},
    "misconception": {
        "a1_1": "n_adults = len(patients)",
        "a1_2": 'mean_glucose_mmol = float(patients["glucose_mgdl"].mean())',
    },
    "wrong": {"a1_1": "n_adults = 3", "a1_2": "mean_glucose_mmol = 5.0"},
    "error": {"a1_1": "n_adults = 1 // 0", "a1_2": _M1_RIGHT["a1_2"]},
    "loop": {"a1_1": _M1_RIGHT["a1_1"], "a1_2": "while True:\n    pass"},
    "crash": {"a1_1": _M1_RIGHT["a1_1"], "a1_2": "import os\nos._exit(3)"},
    # Patching the check helpers or a builtin from an answer cell: the public checks pass,
    # the values are still compared outside the kernel.
    "patched": {
        "a1_1": "def isinstance(*args):\n    return True\n\nn_adults = 12345",
        "a1_2": ("class Anything(float):\n"
                 "    def __eq__(self, other):\n        return True\n"
                 "    __lt__ = __gt__ = __le__ = __ge__ = __eq__\n"
                 "    __hash__ = float.__hash__\n\n"
                 "mean_glucose_mmol = Anything(99.0)"),
    },
}
M2 = {
    "correct": _M2_RIGHT,
    "empty": {},
    "misconception": {
        "a2_1": _M2_RIGHT["a2_1"],
        "a2_2": 'high_ids = set(patients.index[patients["glucose_mgdl"] > 160])',
    },
    "wrong": {"a2_1": 'by_decade = pd.DataFrame({"decade": [0], "n": [1]})',
              "a2_2": "high_ids = {1, 2}"},
}

_P1_RIGHT = {
    "squares": ("def squares(n):\n    \"\"\"The first n squares.\"\"\"\n"
                "    return [i * i for i in range(1, n + 1)]"),
    "hyp": "def hyp(a, b):\n    return math.sqrt(a * a + b * b)",
    "explain": "They grow quadratically.",
}
P1 = {
    "correct": _P1_RIGHT,
    "empty": {},
    "wrong": {"squares": "def squares(n):\n    return [i * i for i in range(n)]",
              "hyp": _P1_RIGHT["hyp"]},
    "partial": {"squares": ("def squares(n):\n    return [i * i if n < 3 else 0 "
                            "for i in range(1, n + 1)]"),
                "hyp": "def hyp(a, b):\n    raise ValueError('no idea')"},
    "stderr": {"squares": _P1_RIGHT["squares"],
               "hyp": ("import sys\ndef hyp(a, b):\n    print('debug', file=sys.stderr)\n"
                       "    return math.sqrt(a * a + b * b)")},
}


def release_notebook(course: Path, module: str) -> dict:
    return json.loads((course / "release" / module / f"{module}.ipynb").read_text())


def _gid(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def fill(nb: dict, answers: dict) -> dict:
    """A copy of a release notebook with answer cells replaced."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        gid = _gid(cell)
        if gid in answers:
            cell["source"] = answers[gid]
    return nb


def edit(nb: dict, how: str) -> dict:
    """Notebook-level edits a resident might make (nbgrader's own test cases)."""
    nb = copy.deepcopy(nb)
    cells = nb["cells"]
    tests = [c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")
             and not c["metadata"]["nbgrader"].get("solution")]
    if how == "edit_test":  # a resident makes a test pass by emptying it
        tests[0]["source"] = "pass"
    elif how == "delete_test":
        cells.remove(tests[0])
    elif how == "add_cells":
        cells.insert(1, {"cell_type": "code", "execution_count": None, "id": "added1",
                         "metadata": {}, "outputs": [], "source": "extra = 1"})
        cells.append({"cell_type": "markdown", "id": "added2", "metadata": {},
                      "source": "my notes"})
    elif how == "edit_locked":  # a locked cell's text changed: the source's text comes back
        locked = [c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("locked")
                  and not c["metadata"]["nbgrader"].get("grade")]
        locked[0]["source"] = "import math\nmath = None"
    elif how == "points":  # metadata edit: more points for a test
        tests[0]["metadata"]["nbgrader"]["points"] = 100
    else:
        raise ValueError(f"unknown edit {how!r}")
    return nb


def submit(course: Path, resident: str, module: str, nb: dict | bytes | str,
           name: str | None = None) -> Path:
    """Write a submission in nbgrader's layout."""
    folder = course / "submitted" / resident / module
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{module}.ipynb")
    if isinstance(nb, dict):
        path.write_text(json.dumps(nb, indent=1))
    elif isinstance(nb, bytes):
        path.write_bytes(nb)
    else:
        path.write_text(nb)
    return path


def copy_course(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("submitted", "autograded",
                                                             ".drylab", "gradebook.db"))
    return dest
