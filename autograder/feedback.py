"""Feedback pages: one HTML page per resident and module, from the results journal.

The page goes where nbgrader's exchange returns feedback from,
``COURSE_DIR/feedback/<resident>/<module>/<module>.html``, so ``nbgrader release_feedback``
and the JupyterLab assignment list hand it back to the resident unchanged.

What a resident sees: per question the score, the status, the public check's message, the
targeted misconception message where one matched, and a short "what to look at next". What
a resident never sees: a hidden test's code or an expected value. The results rows are
already free of both (the grading core writes only public messages); this module adds a
second fence by dropping any message that quotes a hidden test's code or string literals
(see :func:`redact`), because nbgrader's own feedback leaks exactly that (NOTES.md).

Pages are self-contained (inline CSS, no JavaScript, no external assets) so they open
offline from the exchange, and every resident-made string is HTML-escaped by Jinja2's
autoescape.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from autograder import RESULT_COLUMNS

__all__ = [
    "ModuleInfo",
    "QuestionInfo",
    "feedback_path",
    "load_module_info",
    "redact",
    "render_feedback",
    "write_feedback",
]

#: How each question status is shown: a word and a symbol, so status never relies on colour.
STATUS_LABELS = {
    "passed": ("Passed", "\u2713"),
    "failed": ("Not yet right", "\u2717"),
    "error": ("Error", "!"),
    "timeout": ("Timed out", "\u231b"),
    "not attempted": ("Not attempted", "\u2013"),
    "needs manual grading": ("Awaiting instructor", "\u270e"),
    "graded by instructor": ("Graded by instructor", "\u270e"),
}

#: What happened to a submission as a whole, in words a resident understands. Internal
#: details (tracebacks of the grader itself, file system paths) never reach the page.
SUBMISSION_NOTICES = {
    "timeout": "Your notebook was stopped because it ran past the time limit. "
    "Questions after that point could not be checked.",
    "kernel_died": "The Python kernel running your notebook stopped (it crashed or ran out "
    "of memory). Questions after that point could not be checked.",
    "corrupt": "Your file could not be read as a Jupyter notebook. Download it again from "
    "JupyterLab (File \u2192 Download) and check that it opens before you submit.",
    "non_utf8": "Your file is not UTF-8 text, so it could not be read as a notebook. "
    "Submit the notebook file JupyterLab saved, without converting it.",
    "wrong_name": "No notebook with the module's name was found in your submission. "
    "Submit the notebook you fetched, without renaming it.",
    "missing_cells": "Some graded cells were missing from your notebook; they were restored "
    "from the original and graded.",
    "unknown_module": "This submission is not for a module of this course.",
    "grader_error": "The grader had a problem with your submission. Your instructor has "
    "been told; you do not need to do anything.",
}

_HIDDEN_RE = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.S)
_SOLUTION_RE = re.compile(r"### BEGIN SOLUTION.*?### END SOLUTION", re.S)
_QID_RE = re.compile(r"^q(\d+)_(\d+)(?:_(.*))?$")
#: Fragments shorter than this are too common ("x", "0") to be evidence of a leak.
_MIN_FRAGMENT = 6
#: A shared run of this many characters between a message and a hidden line is a quote.
_MIN_QUOTE = 24


@dataclass(frozen=True)
class QuestionInfo:
    """What the course says about one graded cell, public parts only.

    Attributes
    ----------
    grade_id : str
        nbgrader ``grade_id`` (``qN_M_slug``).
    title : str
        The question's heading line from the notebook's markdown ("Question 1.2 ..."), or
        one made from the grade id.
    answer : str
        Name of the variable that holds the answer (``metadata.drylab.answer``), or ``""``.
    misconceptions : dict
        Misconception id -> the targeted message the resident may read.
    manual : bool
        Graded by an instructor (nbgrader manual answer or task cell).
    """

    grade_id: str
    title: str
    answer: str = ""
    misconceptions: dict[str, str] = field(default_factory=dict)
    manual: bool = False


@dataclass(frozen=True)
class ModuleInfo:
    """Public facts about a module plus the hidden-test fragments that must never be shown.

    Attributes
    ----------
    module : str
        The module's folder name.
    title : str
        The first markdown heading of the notebook, or the module name.
    questions : dict
        grade_id -> :class:`QuestionInfo`.
    hidden_fragments : tuple of str
        Lines and string literals of the source's hidden-test regions (see :func:`redact`).
    competencies : dict
        Competency tag -> one-line description (from ``competencies.yml``; may be empty).
    """

    module: str
    title: str
    questions: dict[str, QuestionInfo] = field(default_factory=dict)
    hidden_fragments: tuple[str, ...] = ()
    competencies: dict[str, str] = field(default_factory=dict)

    def question(self, grade_id: str) -> QuestionInfo:
        """The question's info, or a stand-in made from the grade id."""
        return self.questions.get(grade_id) or QuestionInfo(grade_id, title_from_grade_id(grade_id))


def title_from_grade_id(grade_id: str) -> str:
    """``q1_2_n_adults`` -> ``Question 1.2 (n adults)``; other ids are returned as they are."""
    m = _QID_RE.match(grade_id or "")
    if not m:
        return grade_id or "Submission"
    title = f"Question {m.group(1)}.{m.group(2)}"
    return f"{title} ({m.group(3).replace('_', ' ')})" if m.group(3) else title


def _cell_text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _source_notebook(course_dir: Path, module: str) -> Path | None:
    folder = course_dir / "source" / module
    preferred = folder / f"{module}.ipynb"
    if preferred.is_file():
        return preferred
    found = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    return found[0] if found else None


def load_competencies(course_dir: str | os.PathLike) -> dict[str, str]:
    """Competency tag -> description from ``COURSE_DIR/competencies.yml``, ``{}`` if absent.

    Accepts a mapping (``tag: description`` or ``tag: {description: ...}``) or a list of
    mappings with ``id``/``tag`` and ``description`` keys.
    """
    path = Path(course_dir) / "competencies.yml"
    if not path.is_file():
        return {}
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if isinstance(data, dict) and isinstance(data.get("competencies"), list | dict):
        data = data["competencies"]
    out: dict[str, str] = {}
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        if isinstance(value, dict):
            tag = str(value.get("id") or value.get("tag") or key)
            desc = value.get("description") or value.get("title") or value.get("name") or ""
        else:
            tag, desc = str(key), value
        out[tag] = str(desc or "").strip()
    return out


def _hidden_fragments(code: str) -> list[str]:
    """Lines and string literals of a hidden-test region (each at least _MIN_FRAGMENT long)."""
    frags = [ln.strip() for ln in code.splitlines() if len(ln.strip()) >= _MIN_FRAGMENT]
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return frags
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            # An assert's message string would be shown verbatim if the core ever let a
            # hidden AssertionError through; f-string parts arrive here as Constants too.
            frags.extend(
                part.strip()
                for part in node.value.splitlines()
                if len(part.strip()) >= _MIN_FRAGMENT
            )
    return frags


def load_module_info(course_dir: str | os.PathLike, module: str) -> ModuleInfo:
    """Read the public facts of a module from ``COURSE_DIR/source/<module>/``.

    Only cell metadata, the question headings of non-solution markdown cells and the hidden
    regions (kept as fragments for :func:`redact`) are taken; solution text never is. A
    missing source gives a :class:`ModuleInfo` with titles made from grade ids.
    """
    course_dir = Path(course_dir)
    comps = load_competencies(course_dir)
    path = _source_notebook(course_dir, module)
    if path is None:
        return ModuleInfo(module, module, competencies=comps)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = list(nb.get("cells", []))
    except (OSError, ValueError):
        return ModuleInfo(module, module, competencies=comps)

    title = module
    section = ""  # the latest "## " heading: context for a bare "Question N.M"
    headings: list[tuple[str, str]] = []
    questions: dict[str, QuestionInfo] = {}
    hidden: list[str] = []
    for cell in cells:
        text = _cell_text(cell)
        meta = cell.get("metadata", {}) or {}
        nbg = meta.get("nbgrader", {}) or {}
        if cell.get("cell_type") == "markdown" and not nbg.get("solution"):
            public = _SOLUTION_RE.sub("", text)
            for raw in public.splitlines():
                line = raw.strip().lstrip("#").replace("**", "").strip()
                if not line:
                    continue
                if title == module and raw.lstrip().startswith("# "):
                    title = line
                if line.lower().startswith("question"):
                    headings.append((line, section))
                elif re.match(r"^\s*##\s", raw):
                    section = re.sub(r"^\d+(\.\d+)*\.?\s+", "", line)  # "1. Units" -> "Units"
        for region in _HIDDEN_RE.findall(text):
            hidden.extend(_hidden_fragments(region))
        grade_id = nbg.get("grade_id")
        if not grade_id or not (nbg.get("grade") or nbg.get("task")):
            continue
        drylab = meta.get("drylab", {}) or {}
        misc = {
            str(m.get("id")): str(m.get("message", ""))
            for m in drylab.get("misconceptions", []) or []
            if isinstance(m, dict) and m.get("id")
        }
        questions[grade_id] = QuestionInfo(
            grade_id,
            _heading_for(grade_id, headings),
            str(drylab.get("answer", "") or ""),
            misc,
            manual=bool(nbg.get("task") or (nbg.get("grade") and nbg.get("solution"))),
        )
    return ModuleInfo(module, title, questions, tuple(dict.fromkeys(hidden)), comps)


def _heading_for(grade_id: str, headings: list[tuple[str, str]]) -> str:
    """The question's heading; a bare "Question N.M" gets its section's name after it."""
    m = _QID_RE.match(grade_id)
    if m:
        pat = re.compile(rf"^question\s+{m.group(1)}\.{m.group(2)}\b", re.I)
        bare = re.compile(rf"^question\s+{m.group(1)}\.{m.group(2)}\s*(\(.*\))?\s*$", re.I)
        for heading, section in reversed(headings):
            if pat.match(heading):
                if bare.match(heading) and section:
                    return f"{heading} \u00b7 {section}"[:200]
                return heading[:200]
    return title_from_grade_id(grade_id)


def redact(message: str, info: ModuleInfo) -> str:
    """Return ``message``, or a neutral sentence if it quotes a hidden test.

    A message that contains a line of a hidden-test region, one of its string literals, or a
    run of :data:`_MIN_QUOTE` characters of such a line, is replaced whole (a partial cut could still leave an expected value next to it).
    """
    if not message:
        return ""
    from difflib import SequenceMatcher

    for frag in info.hidden_fragments:
        if frag in message:
            return "A hidden check did not pass."
        if len(frag) >= _MIN_QUOTE:
            # A traceback may cut a line short; a long enough piece of it is still a quote.
            match = SequenceMatcher(None, frag, message, autojunk=False).find_longest_match()
            if match.size >= _MIN_QUOTE:
                return "A hidden check did not pass."
    return message


def feedback_path(course_dir: str | os.PathLike, resident: str, module: str) -> Path:
    """``COURSE_DIR/feedback/<resident>/<module>/<module>.html`` (nbgrader's place)."""
    return Path(course_dir) / "feedback" / resident / module / f"{module}.html"


def fmt_points(x: float) -> str:
    """Points without trailing zeros: 2.0 -> "2", 1.5 -> "1.5"."""
    return f"{float(x):g}"


def codespans(text: str):
    """Escape ``text`` for HTML, then show `backticked` names as ``<code>``.

    Escaping comes first, so only the ``<code>`` tags added here are markup.
    """
    from markupsafe import Markup, escape

    return Markup(re.sub(r"`([^`<>]+)`", r"<code>\1</code>", str(escape(text))))


@cache
def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("autograder", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["codespans"] = codespans
    return env


def render_template(name: str, **context) -> str:
    """Render one of ``autograder/templates/`` with autoescape on."""
    return _env().get_template(name).render(**context)


def _next_step(row: dict, q: QuestionInfo, info: ModuleInfo, cell_timeout: str) -> str:
    """One or two sentences on what the resident should look at next."""
    status = row["status"]
    var = f"`{q.answer}`" if q.answer else "the answer variable"
    short = q.title.split(":")[0].split("(")[0].strip() or "this question"
    comps = [c for c in row["competencies"].split(";") if c]
    practise = ""
    if comps:
        descs = [(info.competencies.get(c) or c).rstrip(". ") for c in comps]
        practise = " This question practises: " + "; ".join(descs) + "."
    if status == "failed":
        if row["misconception"]:
            return (f"Your answer matches a common mistake (see the note above). Redo {short} "
                    f"step by step and compare each intermediate result." + practise)
        if "does not match" in row["message"]:
            return (f"Your answer has the expected form but not the expected value. Re-check "
                    f"the filters, joins and units behind {var}, and test them on a few rows "
                    f"you can verify by hand." + practise)
        return (f"The check's message says what is off. Fix the answer cell of {short}, then "
                f"run the check cell below it until it passes." + practise)
    if status == "error" and "kernel died" in row["message"]:
        return ("Something in or before this cell stopped the Python kernel: a call such as "
                "os._exit() or exit(), or a table too large for memory. Run the notebook from "
                "the top and watch which cell makes the kernel restart.")
    if status == "error":
        return ("Restart the kernel and run all cells (Kernel \u2192 Restart Kernel and Run "
                "All Cells); fix the first error you see, it is often the cause of the "
                "later ones.")
    if status == "timeout":
        return (f"A cell ran past the time limit{cell_timeout}. Look for a loop that never "
                f"ends, or a row-by-row loop that a vectorised pandas operation can replace.")
    if status == "not attempted" and q.manual:
        return f"This written answer is empty. Write it in the cell under {short} before you submit."
    if status == "not attempted":
        return f"{var[0].upper() + var[1:]} is still empty. Write your answer in the cell under {short}."
    return ""


def _question_view(row: dict, info: ModuleInfo, cell_timeout: str) -> dict:
    q = info.question(row["question"])
    message = redact(row["message"], info)
    targeted = q.misconceptions.get(row["misconception"], "") if row["misconception"] else ""
    if targeted:
        # The core appends the misconception's text to "does not match ..."; shown once, in
        # its own box, it reads as advice rather than as part of an error.
        message = message.replace(targeted, "").strip().rstrip(".").strip()
        message = f"{message}." if message else ""
    label, symbol = STATUS_LABELS.get(row["status"], (row["status"].capitalize(), "?"))
    manual = bool(row["needs_manual"])
    pending = manual and row["status"] == "needs manual grading"
    return {
        "id": row["question"] or "submission",
        "title": q.title,
        "status": row["status"],
        "css": re.sub(r"[^a-z]+", "-", row["status"]),
        "label": label,
        "symbol": symbol,
        "points": "\u2013" if pending else fmt_points(row["points"]),
        "max_points": fmt_points(row["max_points"]),
        "message": message,
        "message_label": "What the check said" if row["status"] == "failed" else "What happened",
        "misconception": bool(row["misconception"]),
        "targeted": targeted,
        "competencies": [c for c in row["competencies"].split(";") if c],
        "next": _next_step(row, q, info, cell_timeout),
        "manual": manual,
    }


def _manual_state(manual: list[dict]) -> str:
    """The written answers' card: pending, not written, or the points given."""
    if any(r["status"] == "needs manual grading" for r in manual):
        return "pending"
    if manual and all(r["status"] == "not attempted" for r in manual):
        return "not written"
    return fmt_points(sum(r["points"] for r in manual)) + " / " + fmt_points(
        sum(r["max_points"] for r in manual))


def render_feedback(
    rows,
    *,
    resident: str,
    module: str,
    info: ModuleInfo | None = None,
    submission_status: str | None = None,
    cell_timeout: float | None = None,
) -> str:
    """The feedback page of one resident's module, as an HTML string.

    Parameters
    ----------
    rows : pandas.DataFrame
        The results rows (columns of :data:`autograder.RESULT_COLUMNS`) of this resident and
        module, in notebook order.
    resident, module : str
        Whose page, for which module.
    info : ModuleInfo, optional
        Question titles, answer names and misconception texts; stand-ins when omitted.
    submission_status : str, optional
        Overrides the ``submission_status`` column (one value per submission).
    cell_timeout : float, optional
        Seconds, quoted in the advice for timed-out questions.
    """
    missing = set(RESULT_COLUMNS) - set(rows.columns)
    if missing:
        raise ValueError(f"results rows lack the columns {sorted(missing)}")
    info = info or ModuleInfo(module, module)
    records = rows.to_dict("records")
    sub_status = submission_status or (records[0]["submission_status"] if records else "ok")
    timeout_txt = f" ({cell_timeout:g} s)" if cell_timeout else ""
    questions = [_question_view(r, info, timeout_txt) for r in records]
    # An empty manual answer may come back "not attempted" without the needs_manual flag.
    is_manual = [r["needs_manual"] or info.question(r["question"]).manual for r in records]
    auto = [r for r, m in zip(records, is_manual, strict=True) if not m]
    manual = [r for r, m in zip(records, is_manual, strict=True) if m]
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return render_template(
        "feedback.html.j2",
        resident=resident,
        module=module,
        module_title=info.title,
        notice=SUBMISSION_NOTICES.get(sub_status, ""),
        questions=questions,
        auto_points=fmt_points(sum(r["points"] for r in auto)),
        auto_max=fmt_points(sum(r["max_points"] for r in auto)),
        manual_state=_manual_state(manual),
        manual_max=fmt_points(sum(r["max_points"] for r in manual)),
        manual_pending=any(r["status"] == "needs manual grading" for r in manual),
        total=fmt_points(sum(r["points"] for r in records)),
        total_max=fmt_points(sum(r["max_points"] for r in records)),
        counts=[
            (STATUS_LABELS.get(s, (s, ""))[0].lower(), counts[s])
            for s in [*STATUS_LABELS, *sorted(set(counts) - set(STATUS_LABELS))]
            if s in counts
        ],
        to_review=[q for q in questions if q["status"] not in ("passed", "needs manual grading",
                                                                "graded by instructor")],
    )


def write_feedback(
    course_dir: str | os.PathLike,
    results=None,
    submissions=None,
    *,
    cell_timeout: float | None = None,
) -> list[Path]:
    """Write every feedback page of a course; returns the paths written, sorted.

    Parameters
    ----------
    course_dir : path
        The graded course (``source/`` for question titles, the journal for results).
    results : pandas.DataFrame, optional
        Results rows; read from the journal (:func:`autograder.journal.read_results`) when
        omitted.
    submissions : pandas.DataFrame, optional
        :func:`autograder.journal.read_submissions` rows, so that a submission journaled
        without question rows (e.g. its grading worker died) still gets a page that says
        so. Read from the journal with the results when both are omitted.
    cell_timeout : float, optional
        The per-cell timeout used for grading, quoted in the advice for timeouts.
    """
    course_dir = Path(course_dir)
    if results is None:
        from autograder.gradebook import read_graded

        results, submissions = read_graded(course_dir, submissions)
    groups = {key: (rows, None) for key, rows in
              results.groupby(["resident", "module"], sort=True)}
    if submissions is not None:
        for sub in submissions.itertuples():
            if (sub.resident, sub.module) not in groups:
                groups[(sub.resident, sub.module)] = (results.iloc[0:0], sub.submission_status)
    infos: dict[str, ModuleInfo] = {}
    written = []
    for (resident, module), (rows, sub_status) in sorted(groups.items()):
        if module not in infos:
            infos[module] = load_module_info(course_dir, module)
        html = render_feedback(
            rows, resident=resident, module=module, info=infos[module],
            submission_status=sub_status, cell_timeout=cell_timeout,
        )
        path = feedback_path(course_dir, resident, module)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".html.tmp")
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, path)
        _copy_exchange_files(course_dir, resident, module, path.parent)
        written.append(path)
    return sorted(written)


#: Files nbgrader's ``release_feedback`` reads next to the page: when the submission was
#: made, and the secret that names the returned file in the exchange.
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


def _copy_exchange_files(course_dir: Path, resident: str, module: str, dest: Path) -> None:
    """Copy :data:`EXCHANGE_FILES` from the autograded or submitted folder, as nbgrader's
    ``generate_feedback`` does, so ``nbgrader release_feedback`` can return the page."""
    import shutil

    for name in EXCHANGE_FILES:
        for folder in ("autograded", "submitted"):
            src = course_dir / folder / resident / module / name
            if src.is_file() and not src.is_symlink():
                shutil.copyfile(src, dest / name)
                break
