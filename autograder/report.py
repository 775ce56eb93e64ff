"""The instructor's report: one self-contained HTML page about a graded course.

``drylab report COURSE_DIR`` writes ``COURSE_DIR/report.html`` with

- a loud banner when any submission ran without a sandbox;
- the score distribution per module (box plot with every resident as a dot);
- the class mean per competency, and a resident x competency heat map;
- the most common failed checks and misconceptions (chart and table);
- per-question outcomes per module;
- the submissions that errored or timed out.

Plots are drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display)
and embedded as base64 PNG, so the page is one file that opens offline and can be mailed.
Sizes adapt to the class: every resident is labelled up to :data:`MAX_LABELLED_RESIDENTS`,
beyond that the heat map shows residents as rows sorted by score, unlabelled, and the tables
carry the names.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from autograder.export import grades_table, manual_mask, questions_table
from autograder.feedback import fmt_points, load_competencies, render_template
from autograder.journal import QUESTION_STATUSES

__all__ = ["ReportData", "build_report", "report_path", "write_report"]

#: Up to this many residents the heat map names each row.
MAX_LABELLED_RESIDENTS = 60
#: Bars in the "most common failures" chart.
TOP_FAILURES = 15
#: Sandbox values that mean resident code ran with the grader's own rights.
UNSANDBOXED = {"none", "unsandboxed", "off"}

_DPI = 110
_BLUE = "#2b6cb0"
_ORANGE = "#c05621"


@dataclass
class ReportData:
    """The tables the report is drawn from (all pandas DataFrames)."""

    results: object
    submissions: object
    grades: object


def report_path(course_dir: str | os.PathLike) -> Path:
    """``COURSE_DIR/report.html``."""
    return Path(course_dir) / "report.html"


def _submissions_from_results(results):
    """A stand-in for :func:`autograder.journal.read_submissions` when only rows are given."""
    import pandas as pd

    if results.empty:
        return pd.DataFrame(columns=["resident", "module", "submission_status", "message",
                                     "sandbox", "warnings"])
    subs = results.groupby(["resident", "module"], sort=True).agg(
        submission_status=("submission_status", "first")
    ).reset_index()
    subs["message"] = ""
    subs["sandbox"] = ""
    subs["warnings"] = ""
    return subs


# ----------------------------------------------------------------------------- figures


def _png(fig) -> str:
    buf = io.BytesIO()
    # No "Software" stamp: the same data and versions give the same bytes.
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _auto_percent(results):
    """Per (resident, module): percent of the automatically graded points earned."""
    auto = results.loc[~manual_mask(results)]
    per = auto.groupby(["resident", "module"], sort=True)[["points", "max_points"]].sum()
    per = per.loc[per["max_points"] > 0]
    return (100.0 * per["points"] / per["max_points"]).rename("percent").reset_index()


def plot_score_distribution(results) -> str | None:
    """Box plot per module of the residents' automatic scores (%), every resident a dot."""
    pct = _auto_percent(results)
    if pct.empty:
        return None
    modules = sorted(pct["module"].unique())
    n_res = pct["resident"].nunique()
    fig = _figure(8.0, 1.2 + 0.75 * len(modules))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)  # fixed jitter: the same data draw the same picture
    data = [pct.loc[pct["module"] == m, "percent"].to_numpy() for m in modules]
    ys = np.arange(len(modules))[::-1]  # first module on top
    ax.boxplot(data, positions=ys, orientation="horizontal", widths=0.55, showfliers=False,
               patch_artist=True, boxprops={"facecolor": "#e2e8f0", "edgecolor": "#4a5568"},
               medianprops={"color": "#1a202c", "linewidth": 2},
               whiskerprops={"color": "#4a5568"}, capprops={"color": "#4a5568"})
    size = 28 if n_res <= 40 else 10
    alpha = 0.8 if n_res <= 40 else 0.35
    for y, values in zip(ys, data, strict=True):
        jitter = rng.uniform(-0.18, 0.18, size=len(values))
        ax.scatter(values, y + jitter, s=size, alpha=alpha, color=_BLUE, zorder=3,
                   edgecolors="white", linewidths=0.4)
        # In the right margin, clear of the dots at 100%.
        ax.annotate(f"n={len(values)}\nmedian {np.median(values):.0f}%", (1.0, y),
                    xycoords=("axes fraction", "data"), xytext=(8, 0),
                    textcoords="offset points", va="center", fontsize=9,
                    annotation_clip=False)
    ax.set_yticks(ys, modules)
    ax.set_xlim(-3, 103)
    ax.set_xlabel("Score on automatically graded questions (% of points)")
    ax.set_ylabel("Module")
    ax.set_title("Score distribution per module")
    ax.grid(axis="x", color="#e2e8f0")
    ax.set_axisbelow(True)
    return _png(fig)


def competency_matrix(results):
    """Resident x competency: percent of the tagged automatic points earned (NaN: none tagged).

    Rows sorted by the resident's overall automatic score (best first, then by id); columns
    by class mean (weakest first, then by tag), so the group's gaps stand on the left.
    """
    import pandas as pd

    manual = manual_mask(results)
    auto = results.loc[~manual & (results["competencies"] != "")]
    if auto.empty:
        return pd.DataFrame()
    long = auto.assign(competency=auto["competencies"].str.split(";")).explode("competency")
    long = long.loc[long["competency"] != ""]
    sums = long.groupby(["resident", "competency"])[["points", "max_points"]].sum()
    sums = sums.loc[sums["max_points"] > 0]
    mat = (100.0 * sums["points"] / sums["max_points"]).unstack("competency")
    overall = results.loc[~manual].groupby("resident")[["points", "max_points"]].sum()
    score = (overall["points"] / overall["max_points"].where(overall["max_points"] > 0)).fillna(0)
    order = sorted(mat.index, key=lambda r: (-score.get(r, 0.0), r))
    cols = sorted(mat.columns, key=lambda c: (mat[c].mean(), c))
    return mat.loc[order, cols]


def plot_competency_means(mat, descriptions: dict[str, str]) -> str | None:
    """Horizontal bars: class mean per competency (%), weakest at the top."""
    if mat.empty:
        return None
    means = mat.mean(axis=0)
    fig = _figure(8.0, 1.2 + 0.42 * len(means))
    ax = fig.add_subplot()
    ys = np.arange(len(means))[::-1]
    ax.barh(ys, means.to_numpy(), color=_BLUE, height=0.6)
    for y, v in zip(ys, means.to_numpy(), strict=True):
        ax.annotate(f"{v:.0f}%", (v, y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=9)
    ax.set_yticks(ys, list(means.index))
    ax.set_xlim(0, 108)
    ax.set_xlabel("Class mean (% of tagged automatic points earned)")
    ax.set_ylabel("Competency")
    ax.set_title(f"Competencies across the class (n={len(mat)} residents)")
    ax.grid(axis="x", color="#e2e8f0")
    ax.set_axisbelow(True)
    return _png(fig)


def plot_competency_heatmap(mat) -> str | None:
    """Resident x competency heat map (viridis, 0-100%; grey where no question was tagged)."""
    if mat.empty:
        return None
    import matplotlib as mpl

    n_res, n_comp = mat.shape
    labelled = n_res <= MAX_LABELLED_RESIDENTS
    row_h = 0.3 if labelled else min(0.05, 9.0 / n_res)
    width = max(6.0, min(12.0, 2.6 + 0.75 * n_comp))
    fig = _figure(width, 2.2 + row_h * n_res)
    ax = fig.add_subplot()
    cmap = mpl.colormaps["viridis"].with_extremes(bad="#cbd5e0")
    values = np.ma.masked_invalid(mat.to_numpy(dtype=float))
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=100, aspect="auto",
                      interpolation="nearest")
    ax.set_xticks(np.arange(n_comp), list(mat.columns), rotation=35, ha="right",
                  rotation_mode="anchor")
    if labelled:
        ax.set_yticks(np.arange(n_res), list(mat.index), fontsize=8 if n_res > 30 else 9)
        ax.set_ylabel("Resident (best overall score at the top)")
        if n_res * n_comp <= 400:
            for (i, j), v in np.ndenumerate(mat.to_numpy(dtype=float)):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if v < 60 else "black")
    else:
        ax.set_yticks([0, n_res - 1], ["best", "lowest"])
        ax.set_ylabel(f"{n_res} residents, sorted by overall score")
    ax.set_xlabel("Competency (weakest class mean on the left)")
    ax.set_title("Resident \u00d7 competency: % of tagged points earned")
    fig.colorbar(image, ax=ax, label="% of points", shrink=0.8 if labelled else 0.6,
                 pad=0.02)
    return _png(fig)


def common_failures(results, descriptions_by_module=None):
    """Failed questions grouped by what went wrong, most frequent first.

    A failure that matched a misconception is grouped under that misconception's id; any
    other under its check message. Columns: module, question, kind (``misconception`` /
    ``check``), what, residents (distinct residents), share (of those graded on the module).
    """
    import pandas as pd

    failed = results.loc[results["status"] == "failed"]
    cols = ["module", "question", "kind", "what", "residents", "share"]
    if failed.empty:
        return pd.DataFrame(columns=cols)
    kind = np.where(failed["misconception"] != "", "misconception", "check")
    what = np.where(failed["misconception"] != "", failed["misconception"], failed["message"])
    tagged = failed.assign(kind=kind, what=what)
    grouped = (tagged.groupby(["module", "question", "kind", "what"], sort=True)["resident"]
               .nunique().rename("residents").reset_index())
    graded = results.groupby("module")["resident"].nunique()
    grouped["share"] = grouped["residents"] / grouped["module"].map(graded)
    grouped = grouped.sort_values(["residents", "module", "question", "what"],
                                  ascending=[False, True, True, True], kind="stable")
    return grouped.reset_index(drop=True)[cols]


def _short(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def plot_common_failures(failures) -> str | None:
    """Horizontal bars of the most common failures; misconceptions in orange."""
    if failures.empty:
        return None
    top = failures.head(TOP_FAILURES)
    fig = _figure(9.0, 1.4 + 0.4 * len(top))
    ax = fig.add_subplot()
    ys = np.arange(len(top))[::-1]
    colors = [_ORANGE if k == "misconception" else _BLUE for k in top["kind"]]
    ax.barh(ys, top["residents"].to_numpy(), color=colors, height=0.6)
    labels = [
        f"{m} \u00b7 {q}: {_short(w, 48)}"
        for m, q, w in zip(top["module"], top["question"], top["what"], strict=True)
    ]
    ax.set_yticks(ys, labels, fontsize=8)
    for y, (r, s) in zip(ys, zip(top["residents"], top["share"], strict=True), strict=True):
        ax.annotate(f"{r} ({100 * s:.0f}%)", (r, y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_xlim(0, max(top["residents"]) * 1.2 + 0.5)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("Residents")
    ax.set_title(f"Most common failed checks and misconceptions (top {len(top)})")
    from matplotlib.patches import Patch

    kinds = set(top["kind"])
    handles = [Patch(color=_ORANGE, label="misconception matched")] * ("misconception" in kinds)
    handles += [Patch(color=_BLUE, label="check failed / wrong value")] * ("check" in kinds)
    # Below the axes, so it never covers a bar or its count.
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8,
               frameon=False)
    ax.grid(axis="x", color="#e2e8f0")
    ax.set_axisbelow(True)
    return _png(fig)


# ----------------------------------------------------------------------------- tables


def question_outcomes(results):
    """Per module and question: how many residents got each status (notebook order)."""
    import pandas as pd

    if results.empty:
        return pd.DataFrame()
    q = questions_table(results)
    order = q.groupby(["module", "question"], sort=False)["cell_index"].min()
    counts = pd.crosstab([q["module"], q["question"]], q["status"])
    statuses = list(QUESTION_STATUSES)
    for status in statuses:
        if status not in counts.columns:
            counts[status] = 0
    counts = counts[statuses]
    counts["cell_index"] = order.reindex(counts.index)
    counts = counts.reset_index().sort_values(["module", "cell_index", "question"],
                                              na_position="last", kind="stable")
    counts = counts.loc[counts["question"] != ""]
    return counts.drop(columns="cell_index").reset_index(drop=True)


def troubled_submissions(results, submissions):
    """Submissions with an error or a timeout: the whole submission, or any question."""
    bad_q = results.loc[results["status"].isin(["error", "timeout"])]
    recs = []
    keys = set(zip(bad_q["resident"], bad_q["module"], strict=True))
    subs = submissions.set_index(["resident", "module"]) if not submissions.empty else None
    for _, row in submissions.iterrows():
        if row["submission_status"] not in ("ok", "missing_cells"):
            keys.add((row["resident"], row["module"]))
    for resident, module in sorted(keys):
        rows = bad_q.loc[(bad_q["resident"] == resident) & (bad_q["module"] == module)]
        sub = subs.loc[(resident, module)] if subs is not None and (resident, module) in subs.index else None
        first = rows.iloc[0] if len(rows) else None
        recs.append({
            "resident": resident,
            "module": module,
            "submission_status": "" if sub is None else str(sub["submission_status"]),
            "questions": ", ".join(f"{q} ({s})" for q, s in
                                   zip(rows["question"], rows["status"], strict=True)),
            "message": (str(sub["message"]) if sub is not None and str(sub["message"])
                        else ("" if first is None else str(first["message"]))),
        })
    return recs


def unsandboxed(submissions) -> list[tuple[str, str]]:
    """(resident, module) of every submission that ran without a sandbox."""
    if submissions.empty:
        return []
    sandbox = submissions["sandbox"].fillna("").str.lower()
    warned = submissions["warnings"].fillna("").str.lower().str.contains("unsandboxed")
    mask = sandbox.isin(UNSANDBOXED) | warned
    return list(zip(submissions.loc[mask, "resident"], submissions.loc[mask, "module"],
                    strict=True))


def _resident_rows(grades, pct) -> list[dict]:
    """One row per resident: points per module (``total / max``) and the overall auto %."""
    overall = pct.groupby("resident")["percent"].mean() if not pct.empty else {}
    rows = []
    for resident, g in grades.groupby("resident", sort=True):
        cells = [
            "\u2013" if r.status == "not submitted" else f"{fmt_points(r.total)} / {fmt_points(r.max)}"
            for r in g.sort_values("module").itertuples()
        ]
        pct_r = overall.get(resident) if len(overall) else None
        rows.append({"resident": resident, "cells": cells,
                     "overall": "\u2013" if pct_r is None else f"{pct_r:.0f}%"})
    return rows


# ----------------------------------------------------------------------------- page


def build_report(course_dir: str | os.PathLike, results=None, submissions=None,
                 *, title: str | None = None) -> str:
    """The report as an HTML string.

    Parameters
    ----------
    course_dir : path
        The graded course (its journal is read when the tables are not given, and its
        ``competencies.yml`` gives tag descriptions).
    results : pandas.DataFrame, optional
        :func:`autograder.journal.read_results` rows.
    submissions : pandas.DataFrame, optional
        :func:`autograder.journal.read_submissions` rows (sandbox, submission messages);
        derived from ``results`` when omitted (then no sandbox information).
    title : str, optional
        Page heading; default "Dry Lab: grading report for <course folder name>".
    """
    course_dir = Path(course_dir)
    if results is None:
        from autograder.gradebook import read_graded

        results, submissions = read_graded(course_dir, submissions)
    if submissions is None:
        submissions = _submissions_from_results(results)
    descriptions = load_competencies(course_dir)
    grades = grades_table(results, submissions)
    mat = competency_matrix(results)
    failures = common_failures(results)
    outcomes = question_outcomes(results)
    pct = _auto_percent(results)
    no_sandbox = unsandboxed(submissions)

    module_rows = []
    for module, g in grades.groupby("module", sort=True):
        p = pct.loc[pct["module"] == module, "percent"]
        module_rows.append({
            "module": module,
            "submitted": int((g["status"] != "not submitted").sum()),
            "max": fmt_points(g["max"].max()),
            "median": f"{p.median():.0f}%" if len(p) else "\u2013",
            "full": int((p >= 100).sum()),
            "statuses": ", ".join(f"{s}: {n}" for s, n in
                                  g["status"].value_counts().sort_index().items()),
        })
    resident_rows = _resident_rows(grades, pct)
    figures = {
        "scores": plot_score_distribution(results),
        "comp_means": plot_competency_means(mat, descriptions),
        "heatmap": plot_competency_heatmap(mat),
        "failures": plot_common_failures(failures),
    }
    return render_template(
        "report.html.j2",
        title=title or f"Dry Lab: grading report for {course_dir.resolve().name}",
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        n_residents=results["resident"].nunique(),
        n_modules=results["module"].nunique(),
        n_submissions=len(submissions),
        no_sandbox=no_sandbox,
        module_rows=module_rows,
        figures=figures,
        competencies=[(c, descriptions.get(c, ""), f"{mat[c].mean():.0f}%")
                      for c in mat.columns] if not mat.empty else [],
        failures=[{**r, "share": f"{100 * r['share']:.0f}%"}
                  for r in failures.head(3 * TOP_FAILURES).to_dict("records")],
        outcomes=outcomes.to_dict("records") if not outcomes.empty else [],
        troubled=troubled_submissions(results, submissions),
        modules=sorted(grades["module"].unique()),
        resident_rows=resident_rows,
        not_attempted=grades.loc[grades["status"].isin(["not attempted", "not submitted"]),
                                 ["resident", "module", "status"]].to_dict("records"),
    )


def write_report(course_dir: str | os.PathLike, results=None, submissions=None, *,
                 out: str | os.PathLike | None = None) -> Path:
    """Write the report (default ``COURSE_DIR/report.html``) and return its path."""
    path = Path(out) if out is not None else report_path(course_dir)
    html = build_report(course_dir, results, submissions)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path
