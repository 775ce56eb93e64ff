"""``drylab cohort``: generate a cohort to disk (a thin wrapper over ``write_cohort``)."""

from __future__ import annotations

import argparse


def register_cohort(subparsers) -> None:
    p = subparsers.add_parser(
        "cohort",
        help="generate a synthetic OMOP cohort to a directory",
        description="Generate a synthetic, OMOP-shaped, multi-site EHR cohort with logged "
                    "defects and clean ground truth, streamed to disk chunk by chunk.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--patients", type=int, default=5000, help="number of patients")
    p.add_argument("--sites", type=int, default=3, help="number of care sites (1-8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    p.add_argument("--start", default="2012-01-01", help="first date of observation")
    p.add_argument("--end", default="2022-12-31", help="last date of observation")
    p.add_argument("--no-defects", action="store_true", help="generate clean data only")
    p.add_argument("--resident", help="derive the seed from this resident id instead of --seed")
    p.add_argument("--course-salt", help="course salt for --resident (default: "
                   "$DRYLAB_COURSE_SALT or 'drylab')")
    p.add_argument("--format", default="parquet", choices=["parquet", "csv", "sqlite"])
    p.add_argument("--workers", type=int, default=1, help="processes generating chunks")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from synthetic_data.cohort import resident_seed
    from synthetic_data.io import summarise, write_cohort

    seed = resident_seed(args.resident, args.course_salt) if args.resident else args.seed
    manifest = write_cohort(
        args.out, args.patients, sites=args.sites, start=args.start, end=args.end,
        defects=None if args.no_defects else "default", random_state=seed,
        format=args.format, workers=args.workers, progress=not args.quiet,
    )
    if not args.quiet:
        print(summarise(manifest))
        print(f"written to {args.out}/ (instructor-only: {args.out}/truth/, "
              f"{args.out}/defects.{'sqlite' if args.format == 'sqlite' else args.format})")
    return 0
