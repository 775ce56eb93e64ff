"""Compare a captured answer with the reference, outside the resident's kernel.

``compare`` is the test cell's ``metadata.drylab.compare`` (docs/grading-model.md):

=========== ==================================================================================
``number``  real numbers, ``|a - b| <= atol + rtol * |b|`` (NaN equals NaN); bools are not
            numbers here
``exact``   ``==`` for str / int / bool (a bool never equals an int)
``set``     unordered collection equality (lists and sets both accepted)
``sequence``ordered equality, elementwise ``number`` rules when ``atol``/``rtol`` are given
``series``  pandas Series equality (``rtol``, ``atol``; ``sort_by: "index"`` sorts by index)
``frame``   pandas DataFrame equality (``rtol``, ``atol``, ``check_like`` ignores column
            order, ``sort_by`` sorts rows by these columns first; the index is ignored)
=========== ==================================================================================
"""

from __future__ import annotations

import math
from numbers import Real

from autograder.capture import Missing

COMPARE_KINDS = ("number", "exact", "set", "sequence", "series", "frame")


def _is_number(x) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def _close(a, b, atol: float, rtol: float) -> bool:
    if not (_is_number(a) and _is_number(b)):
        return False
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


def _exact(a, b) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - odd types compare unequal
        return False


def _as_set(x):
    from autograder.capture import _hashable

    if isinstance(x, (set, frozenset)):
        return set(x)
    if isinstance(x, (list, tuple)):
        return {_hashable(i) for i in x}
    return None


def matches(answer, expected, compare: dict | None) -> bool:
    """Whether ``answer`` equals ``expected`` under ``compare``.

    Raises
    ------
    ValueError
        ``compare["kind"]`` is not one of :data:`COMPARE_KINDS` (a curriculum bug).
    """
    compare = dict(compare or {})
    kind = compare.get("kind", "exact")
    if kind not in COMPARE_KINDS:
        raise ValueError(f"compare kind must be one of {COMPARE_KINDS}, got {kind!r}")
    if isinstance(answer, Missing) or isinstance(expected, Missing):
        return False
    atol = float(compare.get("atol", 0.0) or 0.0)
    rtol = float(compare.get("rtol", 0.0) or 0.0)
    if kind == "number":
        return _close(answer, expected, atol, rtol)
    if kind == "exact":
        return _exact(answer, expected)
    if kind == "set":
        a, b = _as_set(answer), _as_set(expected)
        return a is not None and b is not None and a == b
    if kind == "sequence":
        if not isinstance(answer, (list, tuple)) or not isinstance(expected, (list, tuple)):
            return False
        if len(answer) != len(expected):
            return False
        tolerant = "atol" in compare or "rtol" in compare
        return all(
            _close(x, y, atol, rtol) if tolerant and _is_number(y) else _exact(x, y)
            for x, y in zip(answer, expected, strict=True)
        )
    return _compare_pandas(kind, answer, expected, compare, atol, rtol)


def _compare_pandas(kind, answer, expected, compare, atol, rtol) -> bool:
    import pandas as pd

    sort_by = compare.get("sort_by")
    try:
        if kind == "series":
            if not isinstance(answer, pd.Series) or not isinstance(expected, pd.Series):
                return False
            if sort_by == "index":
                answer, expected = answer.sort_index(), expected.sort_index()
            else:
                answer = answer.reset_index(drop=True)
                expected = expected.reset_index(drop=True)
            pd.testing.assert_series_equal(answer, expected, check_dtype=False,
                                           check_names=False, rtol=rtol, atol=atol)
            return True
        if not isinstance(answer, pd.DataFrame) or not isinstance(expected, pd.DataFrame):
            return False
        if sort_by:
            cols = [sort_by] if isinstance(sort_by, str) else list(sort_by)
            if not set(cols) <= set(answer.columns):
                return False
            answer = answer.sort_values(cols, kind="stable")
            expected = expected.sort_values(cols, kind="stable")
        answer = answer.reset_index(drop=True)
        expected = expected.reset_index(drop=True)
        pd.testing.assert_frame_equal(answer, expected, check_dtype=False,
                                      check_like=bool(compare.get("check_like", False)),
                                      check_column_type=False, check_index_type=False,
                                      rtol=rtol, atol=atol)
        return True
    except (AssertionError, TypeError, ValueError, KeyError):
        return False
