"""Sandbox overhead: the same batch graded with ``--sandbox bwrap`` and ``--sandbox none``.

A class of the fixture course (``tests/fixtures/course``, module ``m1_counts``: solved,
partly wrong and empty submissions) is graded once per mode and round, each time in a fresh
copy of the course (so no run reuses another's reference cache), rotating the order between
rounds. Four modes:

- ``bwrap-started`` / ``none-started`` (``--no-fork``): every kernel, the reference runs'
  included, a new interpreter, with and without the sandbox: the same work but the
  isolation, so their ratio is what the sandbox itself costs (target <= 1.1x);
- ``bwrap`` / ``none``: the defaults. Without a sandbox every kernel is forked from a warm
  template process; with it, the residents' kernels are new interpreters (docs/security.md
  says why) and only the reference runs fork. Their ratio is the price of grading sandboxed.

Printed: wall time of each run, the best of each mode, both ratios, and whether all modes gave
the same scores.

Options (``python -m benchmarks sandbox --residents=N``): ``--residents=N`` (default 12),
``--rounds=R`` (default 2), ``--workers=W`` (default 2).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "course"
MODULE = "m1_counts"


def _release(tmp: Path) -> dict:
    from autograder.build import build_course

    course = tmp / "release-build"
    shutil.copytree(FIXTURE, course)
    build_course(course, [MODULE])
    return json.loads((course / "release" / MODULE / f"{MODULE}.ipynb").read_text())


def _class(release: dict, n: int) -> dict[str, dict]:
    sys.path.insert(0, str(ROOT / "tests" / "adversarial"))
    import make_corpus as mc

    variants = [
        (mc.SOLVED_1, mc.SOLVED_2),
        (mc.SOLVED_1, 'mean_glucose_mmol = float(patients["glucose_mgdl"].mean())\n'),
        (None, None),
    ]
    out = {}
    for i in range(n):
        nb = copy.deepcopy(release)
        a1, a2 = variants[i % len(variants)]
        if a1:
            mc._answer(nb, "a1_1", a1)
            mc._answer(nb, "a1_2", a2)
        out[f"r{i:02d}"] = nb
    return out


MODES = {"bwrap-started": ("bwrap", False), "none-started": ("none", False),
         "bwrap": ("bwrap", True), "none": ("none", True)}


def _grade_once(tmp: Path, submissions: dict, mode: str, workers: int, tag: str):
    from autograder.grade import grade_course

    course = tmp / f"course-{tag}"
    shutil.copytree(FIXTURE, course)
    for resident, nb in submissions.items():
        folder = course / "submitted" / resident / MODULE
        folder.mkdir(parents=True)
        (folder / f"{MODULE}.ipynb").write_text(json.dumps(nb))
    from autograder.build import build_course

    build_course(course, [MODULE])
    t0 = time.perf_counter()
    sandbox, fork = MODES[mode]
    summary = grade_course(course, workers=workers, sandbox=sandbox, progress=False,
                           scratch=str(tmp / f"scratch-{tag}"), fork=fork)
    wall = time.perf_counter() - t0
    lines = (course / ".drylab" / "journal.jsonl").read_text().splitlines()
    scores = sorted((e["resident"], r["question"], r["points"], r["status"])
                    for e in map(json.loads, lines) for r in e["rows"])
    return wall, summary, scores


def main(args: list[str]) -> None:
    p = argparse.ArgumentParser(prog="bench_sandbox")
    p.add_argument("--residents", type=int, default=12)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    opts = p.parse_args(args)

    from autograder import sandbox

    probe = sandbox.probe()
    print(f"sandbox probe: usable={probe.usable} ({probe.reason})")
    if not probe.usable:
        print("bwrap is not usable here: nothing to compare")
        return
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp_name:
        tmp = Path(tmp_name)
        subs = _class(_release(tmp), opts.residents)
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        scores = {}
        names = list(MODES)
        for rnd in range(opts.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for mode in order:
                wall, summary, sc = _grade_once(tmp, subs, mode, opts.workers, f"{mode}{rnd}")
                times[mode].append(wall)
                scores.setdefault(mode, sc)
                print(f"round {rnd} {mode:12s}: {wall:7.2f} s for {summary.graded} submissions "
                      f"({wall / max(1, summary.graded):.2f} s each) {summary.by_status}",
                      flush=True)
        best = {m: min(v) for m, v in times.items()}
        for mode in MODES:
            print(f"best {mode:12s}: {best[mode]:.2f} s")
        print(f"sandbox overhead ratio (bwrap-started / none-started, best of {opts.rounds}): "
              f"{best['bwrap-started'] / best['none-started']:.3f}x (target <= 1.1x)")
        print(f"sandboxed vs unsandboxed defaults (bwrap / none, forked): "
              f"{best['bwrap'] / best['none']:.3f}x")
        same = all(scores[m] == scores["none"] for m in MODES)
        print(f"same scores in all modes: {same}")


if __name__ == "__main__":
    main(sys.argv[1:])
