"""Synthetic, OMOP-shaped, multi-site EHR cohorts with logged defects and clean ground truth.

>>> from synthetic_data import make_cohort
>>> cohort = make_cohort(5000, sites=3, random_state=42)
>>> cohort.person.head()            # OMOP CDM 5.4 tables, with realistic defects
>>> cohort.defects.head()           # one row per injected defect
>>> cohort.truth.tables["person"]   # the clean tables

Importing this package is cheap: pandas and numpy load on first use of the API.
"""

from __future__ import annotations

__version__ = "1.0.0"

_LAZY = {
    "make_cohort": "synthetic_data.cohort",
    "cohort_for": "synthetic_data.cohort",
    "resident_seed": "synthetic_data.cohort",
    "Cohort": "synthetic_data.cohort",
    "Truth": "synthetic_data.cohort",
    "load_cohort": "synthetic_data.io",
    "write_cohort": "synthetic_data.io",
    "repair": "synthetic_data.defects",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'synthetic_data' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
