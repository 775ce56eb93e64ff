"""Cohort generator: import cost, default build time, 1,000,000 patients to Parquet.

Targets (issue 3): default cohort <= 1 s; 1M patients to Parquet <= 60 s wall and <= 4 GB
peak RSS on a 2-core machine. Options: ``--patients=N`` for the big run (default 1000000),
``--workers=K`` (default 2).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from benchmarks._util import best_of, calibration_seconds, run_with_peak_rss


def _opt(args, name, default):
    for a in args:
        if a.startswith(f"--{name}="):
            return int(a.split("=", 1)[1])
    return default


def main(args: list[str]) -> None:
    n_big = _opt(args, "patients", 1_000_000)
    workers = _opt(args, "workers", 2)
    calib = calibration_seconds()
    print(f"calibration (sort 5M floats): {calib:.3f} s")

    code = ("import time; t = time.perf_counter(); import synthetic_data; "
            "print(time.perf_counter() - t)")
    imports = [float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True, check=True).stdout) for _ in range(5)]
    print(f"import synthetic_data: {min(imports) * 1000:.0f} ms (best of 5; target < 500 ms)")

    from synthetic_data import make_cohort

    make_cohort(5000, random_state=0)  # warm imports and caches
    best, median = best_of(lambda: make_cohort(5000, random_state=0), repeat=5)
    print(f"default cohort (5,000 patients, 3 sites, all defects): best {best:.2f} s, "
          f"median {median:.2f} s (target <= 1 s); {best / calib:.1f}x calibration")

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "big")
        cmd = [sys.executable, "-m", "drylab", "cohort", "--patients", str(n_big),
               "--workers", str(workers), "--seed", "1", "--out", out, "--quiet"]
        wall, peak, res = run_with_peak_rss(cmd)
        if res.returncode != 0:
            print(f"big run FAILED: {res.stderr[-2000:]}")
            return
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
        print(f"{n_big:,} patients to Parquet with {workers} worker(s): {wall:.1f} s wall "
              f"(target <= 60 s for 1M), peak RSS {peak / 2**30:.2f} GiB (target <= 4 GB), "
              f"{size / 2**20:.0f} MiB on disk; {n_big / wall:,.0f} patients/s; "
              f"{wall / calib:.0f}x calibration")
