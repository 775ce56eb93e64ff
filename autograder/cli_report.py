"""``drylab feedback | export | report | demo``: thin verbs over the library.

Each ``register_*`` is a ``drylab.commands`` entry point (pyproject.toml): it adds one
sub-parser whose ``func`` parses nothing further and calls one public function.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _course_dir(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is not a directory (expected a course dir)")
    return path


def _course_verb(subparsers, name: str, func, help: str, description: str):
    """A sub-parser taking COURSE_DIR whose ``func`` is ``func``; returned for more options."""
    p = subparsers.add_parser(name, help=help, description=description)
    p.add_argument("course_dir", type=_course_dir, metavar="COURSE_DIR")
    p.set_defaults(func=func)
    return p


def register_feedback(subparsers) -> None:
    p = _course_verb(
        subparsers, "feedback", _feedback,
        "write each resident's HTML feedback from the grading journal",
        "Write COURSE_DIR/feedback/<resident>/<module>/<module>.html for every graded "
        "submission (nbgrader's place, so release_feedback hands them back).",
    )
    p.add_argument("--cell-timeout", type=float, default=None, metavar="S",
                   help="the per-cell timeout used for grading, quoted in timeout advice")


def _feedback(args) -> int:
    from autograder.feedback import write_feedback

    paths = write_feedback(args.course_dir, cell_timeout=args.cell_timeout)
    print(f"wrote {len(paths)} feedback page(s) under {Path(args.course_dir) / 'feedback'}")
    return 0


def register_export(subparsers) -> None:
    p = _course_verb(
        subparsers, "export", _export,
        "grades.csv / questions.csv (and Parquet) from the grading journal",
        "Write grades (resident x module) and questions (resident x module x question) as "
        "CSV and Parquet, default into COURSE_DIR/export/.",
    )
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output folder (default COURSE_DIR/export)")


def _export(args) -> int:
    from autograder.export import write_exports

    paths = write_exports(args.course_dir, out_dir=args.out)
    for path in (paths.grades_csv, paths.questions_csv, paths.grades_parquet,
                 paths.questions_parquet):
        print(path)
    return 0


def register_report(subparsers) -> None:
    p = _course_verb(
        subparsers, "report", _report,
        "the instructor's one-page HTML report with plots",
        "Write a self-contained HTML report (score distributions, competency heat map, "
        "common misconceptions, errors and timeouts), default COURSE_DIR/report.html.",
    )
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="where to write the page (default COURSE_DIR/report.html)")


def _report(args) -> int:
    from autograder.report import write_report

    print(write_report(args.course_dir, out=args.out))
    return 0


def register_demo(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the whole story: build, simulate a class, grade, feedback, exports, report",
        description="Build the embedded course, simulate a class of residents (correct, "
        "misconceptions, a crash, an infinite loop, an empty submission), grade them in "
        "parallel, write feedback, exports and the report, and print a summary.",
    )
    p.add_argument("--out", type=Path, default=Path("demo"), metavar="DIR",
                   help="folder to create the demo course in (default ./demo; replaced)")
    p.add_argument("--course", type=Path, default=None, metavar="DIR",
                   help="course to demo (default: curriculum/ if it has modules, else the "
                   "fixture course)")
    p.add_argument("--modules", nargs="+", default=None, metavar="MODULE",
                   help="only these modules")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="parallel grading workers (default: the grader's)")
    p.add_argument("--cell-timeout", type=float, default=None, metavar="S",
                   help="per-cell timeout in seconds (default: the demo's)")
    p.add_argument("--sandbox", default="auto", choices=["auto", "bwrap", "none"],
                   help="sandbox for residents' code (default auto)")
    p.set_defaults(func=_demo)


def _demo(args) -> int:
    from autograder.demo import run_demo

    result = run_demo(args.out, course=args.course, modules=args.modules,
                      workers=args.workers, cell_timeout=args.cell_timeout,
                      sandbox=args.sandbox)
    return 0 if result.ok else 1
