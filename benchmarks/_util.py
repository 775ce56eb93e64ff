"""Helpers shared by the benchmarks: timing, process-tree peak memory, a calibration load."""

from __future__ import annotations

import statistics
import subprocess
import threading
import time

import numpy as np


def best_of(fn, repeat: int = 3) -> tuple[float, float]:
    """(best, median) wall time of ``fn()`` over ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def calibration_seconds() -> float:
    """A fixed numpy workload (sort 5M floats, 3 times): the machine's speed right now.

    Ratios against it stay comparable between a quiet and a busy machine.
    """
    rng = np.random.default_rng(0)
    x = rng.random(5_000_000)
    best, _ = best_of(lambda: np.sort(x), repeat=3)
    return best


def run_with_peak_rss(cmd: list[str], **kwargs) -> tuple[float, int, subprocess.CompletedProcess]:
    """Run ``cmd``; return (wall seconds, peak RSS in bytes of its whole process tree, result).

    Sums the RSS of the process and all its children, sampled every 50 ms (worker
    processes count too, which ``ru_maxrss`` would not add up).
    """
    import psutil

    peak = 0
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)
    stop = threading.Event()

    def sample():
        nonlocal peak
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    stop.set()
    t.join()
    wall = time.perf_counter() - start
    return wall, peak, subprocess.CompletedProcess(cmd, proc.returncode, out, err)
