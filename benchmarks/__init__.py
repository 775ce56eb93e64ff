"""Benchmarks: figures and ratios, not pass/fail. Run with ``make bench``."""
