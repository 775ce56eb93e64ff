"""One Kubernetes grading Job per submission, and gathering their results back into the course.

    python deploy/kubernetes/grading/render_jobs.py render COURSE_DIR --module 00_orientation \\
        --image <registry>/drylab-singleuser:<tag> > jobs.yaml
    kubectl apply -n drylab -f deploy/kubernetes/grading/networkpolicy.yaml -f jobs.yaml
    kubectl wait -n drylab --for=condition=complete --timeout=30m \\
        job -l drylab/module=00_orientation
    python deploy/kubernetes/grading/render_jobs.py merge COURSE_DIR RESULTS_DIR

COURSE_DIR is the instructor's course (nbgrader layout, after `nbgrader collect`); the Jobs
read it from the drylab-course volume and write to drylab-grading-results (RESULTS_DIR is
where that volume is mounted for the instructor). `merge` appends each Job's journal line to
COURSE_DIR/.drylab/journal.jsonl and puts its feedback page where `nbgrader release_feedback`
looks, so `drylab export`, `drylab report` and the exchange work as after a local
`drylab grade`. The gradebook (formgrader) is not filled by the Jobs.
"""

import argparse
import hashlib
import re
import shutil
import string
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "job-template.yaml"
# Resident and module names go into a shell command and into YAML: only plain names pass.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _check_name(kind, value):
    if not _SAFE_NAME.match(value):
        raise ValueError(f"{kind} {value!r} is not a plain name (letters, digits, '_', '.', "
                         "'-'; at most 63 characters); rename it before grading on Kubernetes")
    return value


def job_name(module, resident):
    """A DNS-1123 name, unique per (module, resident) even after lower-casing and cutting."""
    digest = hashlib.sha256(f"{module}/{resident}".encode()).hexdigest()[:8]
    stem = re.sub(r"[^a-z0-9-]+", "-", f"grade-{module}-{resident}".lower()).strip("-")
    return f"{stem[:63 - 9].rstrip('-')}-{digest}"


def submissions(course_dir, module):
    """Residents with a submission of `module` in COURSE_DIR/submitted/, sorted."""
    root = Path(course_dir) / "submitted"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist: run `nbgrader collect {module}` first")
    return sorted(p.parent.name for p in root.glob(f"*/{module}") if p.is_dir())


def render(course_dir, module, image, *, memory_limit="2Gi", cell_timeout=60,
           deadline_seconds=900):
    """The Job manifests (dicts), one per submission of `module`."""
    _check_name("module", module)
    template = string.Template(TEMPLATE.read_text())
    jobs = []
    for resident in submissions(course_dir, module):
        _check_name("resident", resident)
        text = template.substitute(
            job_name=job_name(module, resident), module=module, resident=resident,
            image=image, memory_limit=memory_limit, cell_timeout=cell_timeout,
            deadline_seconds=int(deadline_seconds))
        jobs.append(yaml.safe_load(text))
    return jobs


def merge(course_dir, results_dir):
    """Bring the Jobs' results into the course; returns the (module, resident) pairs merged."""
    from autograder.journal import Journal, iter_entries

    course_dir, results_dir = Path(course_dir), Path(results_dir)
    merged = []
    with Journal(course_dir) as journal:
        for line_file in sorted(results_dir.glob("*/*/journal.jsonl")):
            module, resident = line_file.parent.parent.name, line_file.parent.name
            for entry in iter_entries(line_file):
                journal.append(entry)
            page = line_file.parent / f"{module}.html"
            if page.exists():
                dest = course_dir / "feedback" / resident / module
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy2(page, dest / page.name)
                # nbgrader's release_feedback names the returned file by this submission's
                # secret; it reads both stamps next to the page.
                for stamp in ("timestamp.txt", "submission_secret.txt"):
                    shutil.copy2(course_dir / "submitted" / resident / module / stamp,
                                 dest / stamp)
            merged.append((module, resident))
    return merged


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="print one Job per submission (YAML) on stdout")
    r.add_argument("course_dir", type=Path)
    r.add_argument("--module", required=True)
    r.add_argument("--image", required=True, help="the single-user image (it has drylab)")
    r.add_argument("--memory-limit", default="2Gi")
    r.add_argument("--cell-timeout", type=int, default=60, metavar="S")
    r.add_argument("--deadline", type=int, default=900, metavar="S",
                   help="wall-clock limit of one Job (activeDeadlineSeconds)")
    m = sub.add_parser("merge", help="gather the Jobs' results into the course")
    m.add_argument("course_dir", type=Path)
    m.add_argument("results_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "render":
        jobs = render(args.course_dir, args.module, args.image, memory_limit=args.memory_limit,
                      cell_timeout=args.cell_timeout, deadline_seconds=args.deadline)
        yaml.safe_dump_all(jobs, sys.stdout, sort_keys=False)
        print(f"rendered {len(jobs)} job(s)", file=sys.stderr)
    else:
        merged = merge(args.course_dir, args.results_dir)
        print(f"merged {len(merged)} result(s) into {args.course_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
