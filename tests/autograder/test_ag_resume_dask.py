"""Crash safety and the Dask path: ``kill -9`` mid-batch then ``--resume`` grades every
submission exactly once with the same totals; a Dask LocalCluster gives the process pool's
results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from conftest import CELL_TIMEOUT, TIMEOUT, add_class, copy_built

from autograder.journal import journal_path, read_results

pytestmark = pytest.mark.slow

PAIRS = [(f"r_{v}", "m1_counts") for v in ("correct", "wrong", "empty", "misconception")] + \
        [(f"r_{v}", "m2_tables") for v in ("correct", "wrong")]


def _expected(graded_course, pairs):
    course, _, _ = graded_course
    df = read_results(course)
    keep = df[[(r, m) in pairs for r, m in zip(df.resident, df.module, strict=True)]]
    return keep.reset_index(drop=True)


def _complete_lines(path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for raw in path.read_bytes().split(b"\n")[:-1]:
        try:
            out.append(json.loads(raw))
        except ValueError:
            pass
    return out


def test_resume_after_kill_9_grades_each_submission_once(graded_course, built_course,
                                                          tmp_path):
    from autograder.grade import grade_course
    from autograder.gradebook import gradebook_scores

    course = copy_built(built_course, tmp_path / "c")
    add_class(course, set(PAIRS))
    journal = journal_path(course)
    cmd = [sys.executable, "-m", "drylab", "grade", str(course), "--workers", "2",
           "--sandbox", "none", "--no-progress", "--cell-timeout", str(CELL_TIMEOUT),
           "--timeout", str(TIMEOUT)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(_complete_lines(journal)) < 2 and time.monotonic() < deadline:
        assert proc.poll() is None, "the batch ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = len(_complete_lines(journal))
    assert 2 <= killed_at < len(PAIRS), "kill -9 must land mid-batch"
    time.sleep(2.5)  # the orphaned workers notice and stop their kernels

    summary = grade_course(course, workers=2, sandbox="none", resume=True, progress=False,
                           cell_timeout=CELL_TIMEOUT, timeout=TIMEOUT)
    assert summary.skipped == killed_at
    assert summary.graded == len(PAIRS) - killed_at
    counts = Counter((e["resident"], e["module"]) for e in _complete_lines(journal))
    assert set(counts) == set(PAIRS) and set(counts.values()) == {1}, counts
    got = read_results(course)
    expected = _expected(graded_course, set(PAIRS))
    assert got.drop(columns="cell_index").equals(expected.drop(columns="cell_index"))
    assert got.points.sum() == expected.points.sum()
    scores = gradebook_scores(course)
    assert {k: v for k, v in scores.items()} == {
        (r.resident, r.module, r.question): r.points for r in got.itertuples()}


def test_dask_localcluster_gives_the_process_pool_results(graded_course, built_course,
                                                           tmp_path):
    from distributed import Client, LocalCluster

    from autograder.grade import grade_course

    pairs = set(PAIRS[:2] + PAIRS[-2:])
    course = copy_built(built_course, tmp_path / "c")
    add_class(course, pairs)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        summary = grade_course(course, sandbox="none", scheduler=client, progress=False,
                               cell_timeout=CELL_TIMEOUT, timeout=TIMEOUT)
    assert summary.graded == len(pairs)
    got = read_results(course)
    assert got.equals(_expected(graded_course, pairs))
