"""Per module: the solution notebook's run time and the kernel's peak memory, default cohort.

Targets (STYLE.md, issue 6): at most 30 s and 1.5 GB per module. Each module's source
notebook runs, solutions in place, in a fresh kernel with ``resident_id="demo"``. Reported:

- ``start``: kernel start-up (s); ``cells``: wall time of all cells (s);
- ``cpu``: the kernel's user + system CPU time (s), steadier than wall time on a busy
  machine;
- ``peak``: the kernel's peak resident memory (``VmHWM`` from /proc, MB).

Options: ``--resident=ID`` (default ``demo``), ``--module=NAME`` (repeatable).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import psutil

COURSE = Path(__file__).resolve().parents[1] / "curriculum"
TARGET_S, TARGET_MB = 30.0, 1536.0


def _peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def run_module(module: str, resident: str = "demo") -> dict:
    """Execute one module's source notebook; return its timings and peak memory."""
    import nbformat
    from nbclient import NotebookClient
    from papermill.parameterize import parameterize_notebook

    from autograder.kernels import kernel_pid

    nb = nbformat.read(COURSE / "source" / module / f"{module}.ipynb", as_version=4)
    # papermill's parameterize expects the metadata its own execute_notebook sets up first.
    nb.metadata["papermill"] = {"default_parameters": {}, "parameters": {}}
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    nb = parameterize_notebook(nb, {"resident_id": resident}, kernel_name="python3",
                               language="python")
    with tempfile.TemporaryDirectory(prefix="bench-curriculum-") as work:
        client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": work}})
        t0 = time.perf_counter()
        with client.setup_kernel():
            pid = kernel_pid(client.km)
            proc = psutil.Process(pid)
            t1 = time.perf_counter()
            errors = []
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
                errors += [f"cell {index}: {o.get('ename')}" for o in cell.get("outputs", [])
                           if o.get("output_type") == "error"]
            t2 = time.perf_counter()
            cpu = proc.cpu_times()
            peak = _peak_rss_mb(pid)
    return {"module": module, "start": t1 - t0, "cells": t2 - t1,
            "cpu": cpu.user + cpu.system, "peak": peak, "errors": errors}


def main(args: list[str]) -> None:
    from autograder.course import modules

    resident = next((a.split("=", 1)[1] for a in args if a.startswith("--resident=")), "demo")
    wanted = [a.split("=", 1)[1] for a in args if a.startswith("--module=")]
    names = wanted or modules(COURSE)
    print(f"resident {resident!r}; targets: <= {TARGET_S:.0f} s, <= {TARGET_MB:.0f} MB "
          f"per module; load average {psutil.getloadavg()[0]:.1f} on "
          f"{psutil.cpu_count()} CPUs")
    print(f"{'module':28s} {'start s':>8s} {'cells s':>8s} {'cpu s':>7s} {'peak MB':>8s}  "
          "within target")
    for name in names:
        r = run_module(name, resident)
        total = r["start"] + r["cells"]
        ok = total <= TARGET_S and r["peak"] <= TARGET_MB and not r["errors"]
        print(f"{name:28s} {r['start']:8.1f} {r['cells']:8.1f} {r['cpu']:7.1f} "
              f"{r['peak']:8.0f}  {'yes' if ok else 'NO'}"
              + (f"  errors: {', '.join(r['errors'])}" if r["errors"] else ""), flush=True)
