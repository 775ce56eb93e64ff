"""``drylab build`` and ``drylab grade``: argument parsing only; the library does the work."""

from __future__ import annotations

import argparse
from pathlib import Path


def register_build(subparsers) -> None:
    p = subparsers.add_parser(
        "build", help="generate the nbgrader release of a course (solutions and hidden tests "
                      "stripped, cells locked, checksums)")
    p.add_argument("course_dir", nargs="?", default="curriculum", type=Path,
                   help="an nbgrader course directory (default: curriculum)")
    p.add_argument("--module", action="append", dest="modules", metavar="MODULE",
                   help="build only this module (repeatable)")
    p.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    from autograder.build import build_course

    result = build_course(args.course_dir, args.modules)
    for rel, sha in sorted(result.release_files.items()):
        print(f"{sha[:12]}  {rel}")
    print(f"built {len(result.modules)} module(s); manifest: {result.manifest_path}")
    return 0


def register_grade(subparsers) -> None:
    p = subparsers.add_parser(
        "grade", help="grade every submission in COURSE_DIR/submitted/<resident>/<module>/")
    p.add_argument("course_dir", type=Path)
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: number of CPUs)")
    p.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                   help="isolate residents' code with bubblewrap (auto: when available)")
    p.add_argument("--cell-timeout", type=float, default=60.0, metavar="S",
                   help="seconds one cell may run (default 60)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="seconds one submission may run in total (default 600)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted batch: skip submissions already journaled")
    p.add_argument("--scheduler", metavar="URL", default=None,
                   help="run on a Dask cluster (tcp://host:8786) instead of local processes")
    p.add_argument("--no-fork", action="store_true",
                   help="start every unsandboxed kernel as a new interpreter instead of forking "
                        "it from a warm template process (slower; for diagnosing a library "
                        "that misbehaves after fork)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_grade)


def _grade(args: argparse.Namespace) -> int:
    import sys

    from autograder.grade import grade_course
    from autograder.kernels import SandboxUnavailable

    try:
        summary = grade_course(args.course_dir, workers=args.workers, sandbox=args.sandbox,
                               cell_timeout=args.cell_timeout, timeout=args.timeout,
                               resume=args.resume, scheduler=args.scheduler,
                               progress=not args.no_progress, fork=not args.no_fork)
    except SandboxUnavailable as exc:  # --sandbox bwrap where it cannot work: say why, no trace
        print(f"drylab grade: {exc}", file=sys.stderr)
        return 2
    for warning in summary.warnings:
        print(f"WARNING: {warning}")
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(summary.by_status.items())) or "-"
    print(f"graded {summary.graded} submission(s), skipped {summary.skipped} already graded "
          f"({statuses}) in {summary.wall_s:.1f} s")
    print(f"journal: {summary.course_dir / '.drylab' / 'journal.jsonl'}")
    return 0
