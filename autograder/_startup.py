"""Start-up cost of the grading processes.

``import nbformat`` (pulled in by nbclient, papermill and nbgrader) imports jsonschema, whose
optional IRI format checker ``rfc3987_syntax`` compiles a Lark grammar at import time: 2.4 s
of CPU in every process, more than a forked kernel takes to grade a small notebook. No Dry Lab
process validates IRIs (nbformat's schema has no IRI formats; format checking is off in its
validator), so grading processes mark the module as unavailable before anything imports
jsonschema; jsonschema then simply does not register the ``iri`` format checker.
"""

from __future__ import annotations

import sys

SLOW_OPTIONAL_MODULES = ("rfc3987_syntax",)


def skip_slow_optional_imports() -> None:
    """Make ``import rfc3987_syntax`` fail fast in this process (if not imported yet)."""
    for name in SLOW_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)
