"""Public checks for the curriculum notebooks: layered, with messages that teach.

These run inside a resident's kernel, in the test cell under each answer (see
docs/grading-model.md, "Checks library"). Each ``check_*`` returns ``None`` when the answer
passes and raises :class:`AssertionError` with a message that says what to look at when it
does not. They check the *form* of an answer (answered, type, columns, shape, plausible range);
whether the value is right is decided by the grader outside the kernel, so nothing here knows
the expected value.

The layers follow UBC DSCI 100's worksheets: type first, then shape and columns, then range,
so the first message a resident sees is about the most basic thing that is wrong.

Only numpy and pandas are imported (the module is imported in every kernel, so it must be
cheap).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = [
    "check_answered",
    "check_type",
    "check_columns",
    "check_shape",
    "check_unique",
    "check_range",
    "check_close",
    "check_subset",
    "check_datetime",
    "passed",
]

#: Friendly names of the types a question asks for.
_TYPE_NAMES = {
    bool: "True or False (bool)",
    int: "a whole number (int)",
    float: "a number with decimals (float)",
    str: "text (str)",
    list: "a list",
    tuple: "a tuple",
    set: "a set",
    dict: "a dict",
    pd.DataFrame: "a pandas DataFrame",
    pd.Series: "a pandas Series",
}


def _type_name(t) -> str:
    return _TYPE_NAMES.get(t, getattr(t, "__name__", str(t)))


def _describe(x) -> str:
    if isinstance(x, pd.DataFrame):
        return f"a DataFrame with {x.shape[0]} rows and {x.shape[1]} columns"
    if isinstance(x, pd.Series):
        return f"a Series of {len(x)} values"
    mod = type(x).__module__
    qual = type(x).__name__ if mod == "builtins" else f"{mod.split('.')[0]}.{type(x).__name__}"
    return f"{qual} ({x!r})" if np.isscalar(x) else qual


def check_answered(x, name: str) -> None:
    """Fail when the answer variable still holds ``None`` (the release's placeholder)."""
    if x is None:
        raise AssertionError(
            f"`{name}` is still None: write your answer in the cell above, run it, "
            "then run this cell again."
        )
    if x is Ellipsis:
        raise AssertionError(f"`{name}` is `...`: replace the `...` with your answer.")


def _hint(x, types: tuple) -> str:
    """A targeted hint for the type confusions residents make most often."""
    if int in types and isinstance(x, np.integer):
        return " It is a numpy integer: wrap it in int(...), e.g. `int(df['x'].sum())`."
    if int in types and isinstance(x, bool):
        return " True/False is not a count: did you compare instead of counting?"
    if (int in types or float in types) and isinstance(x, pd.Series):
        return (" A Series holds many numbers; the question asks for one. Did you forget "
                ".sum(), .mean() or len(...)?")
    if (int in types or float in types) and isinstance(x, pd.DataFrame):
        return " A DataFrame is a table; the question asks for one number."
    if (int in types or float in types) and isinstance(x, str):
        return " It is text: a number has no quotes around it."
    if float in types and isinstance(x, np.ndarray) and x.size == 1:
        return " It is a one-element array: use float(...) to get the number out."
    if pd.DataFrame in types and isinstance(x, pd.Series):
        return (" Selecting one column with df['col'] gives a Series; df[['col']] (double "
                "brackets), .to_frame() or .reset_index() give a DataFrame.")
    if pd.Series in types and isinstance(x, pd.DataFrame):
        return " Select a single column with df['col'] to get a Series."
    if set in types and isinstance(x, (list, tuple, pd.Series, np.ndarray, pd.Index)):
        return " Wrap it in set(...) to drop the order and the duplicates."
    if list in types and isinstance(x, (pd.Series, np.ndarray, pd.Index)):
        return " Use .tolist() to turn it into a list."
    return ""


def check_type(x, types, name: str) -> None:
    """Fail unless ``x`` is an instance of ``types`` (a type or a tuple of types).

    ``bool`` is not accepted where ``int`` is asked for, and numpy integers are not accepted
    as ``int``: the grader records answers as JSON, and the message says how to convert.
    A ``float`` question accepts an ``int`` (a whole number is a valid float answer).
    """
    check_answered(x, name)
    types = types if isinstance(types, tuple) else (types,)
    ok = isinstance(x, types)
    if ok and isinstance(x, bool) and bool not in types:
        ok = False
    if not ok and float in types and isinstance(x, int) and not isinstance(x, bool):
        ok = True
    if not ok:
        wanted = " or ".join(_type_name(t) for t in types)
        raise AssertionError(
            f"`{name}` should be {wanted}, but it is {_describe(x)}.{_hint(x, types)}"
        )


def check_columns(df, cols: Iterable[str], name: str, *, exact: bool = False) -> None:
    """Fail unless the DataFrame ``df`` has the columns ``cols`` (only those if ``exact``)."""
    check_type(df, pd.DataFrame, name)
    cols = list(cols)
    have = [str(c) for c in df.columns]
    missing = [c for c in cols if c not in have]
    if missing:
        near = {c: difflib.get_close_matches(c, have, n=1) for c in missing}
        tips = [f"`{c}` (you have `{m[0]}`: check the spelling)" if m else f"`{c}`"
                for c, m in near.items()]
        where = ""
        if any(c in (df.index.names or []) for c in missing):
            where = " It is in the index: use .reset_index() to make it a column."
        raise AssertionError(
            f"`{name}` is missing the column(s) {', '.join(tips)}; it has {have}.{where}"
        )
    if exact:
        extra = [c for c in have if c not in cols]
        if extra:
            raise AssertionError(
                f"`{name}` should have only the columns {cols}; drop {extra}."
            )


def check_shape(df, shape: tuple | None = None, *, min_rows: int | None = None,
                max_rows: int | None = None, name: str = "the answer") -> None:
    """Fail unless ``df`` has ``shape`` (``None`` inside it matches any size) and row bounds.

    Works for anything with a ``shape`` (DataFrame, Series, array) or a length.
    """
    got = getattr(df, "shape", None)
    if got is None:
        got = (len(df),)
    if shape is not None:
        same_rank = len(shape) == len(got)
        if not same_rank or any(w is not None and w != g
                                for w, g in zip(shape, got, strict=True)):
            want = "(" + ", ".join("any" if w is None else str(w) for w in shape) + ")"
            raise AssertionError(f"`{name}` should have shape {want}, but it has shape {got}.")
    rows = got[0]
    if min_rows is not None and rows < min_rows:
        raise AssertionError(
            f"`{name}` has {rows} rows, fewer than the {min_rows} expected: did a filter or "
            "a join drop too much?"
        )
    if max_rows is not None and rows > max_rows:
        raise AssertionError(
            f"`{name}` has {rows} rows, more than the {max_rows} expected: are there "
            "duplicate rows, or a join that multiplied rows?"
        )


def check_unique(df, cols, name: str, *, what: str = "row") -> None:
    """Fail when the column(s) ``cols`` of ``df`` repeat (e.g. one row per patient)."""
    cols = [cols] if isinstance(cols, str) else list(cols)
    check_columns(df, cols, name)
    dup = df.duplicated(subset=cols)
    if dup.any():
        example = df.loc[dup, cols].iloc[0].tolist()
        raise AssertionError(
            f"`{name}` should have one {what} per {', '.join(cols)}, but {int(dup.sum())} "
            f"rows repeat a value (e.g. {example}). Group, or drop duplicates, first."
        )


def _values(x) -> np.ndarray:
    if isinstance(x, (pd.Series, pd.Index)):
        return x.to_numpy(dtype=float, na_value=np.nan)
    if isinstance(x, pd.DataFrame):
        raise AssertionError("expected one column or a number here, not a whole table.")
    return np.atleast_1d(np.asarray(x, dtype=float))


def check_range(x, lo: float | None, hi: float | None, name: str, unit: str = "",
                *, allow_missing: bool = False) -> None:
    """Fail unless every value of ``x`` (a number, Series or array) lies in ``[lo, hi]``.

    ``unit`` is named in the message; an out-of-range value is most often a unit mix-up or
    a sum where a mean was asked for, and the message says so.
    """
    if not isinstance(x, (pd.Series, pd.Index, np.ndarray)):
        check_type(x, (int, float), name)
    vals = _values(x)
    u = f" {unit}" if unit else ""
    if np.isnan(vals).any() and not allow_missing:
        raise AssertionError(
            f"`{name}` contains missing values (NaN): drop or fill them before summarising."
        )
    vals = vals[~np.isnan(vals)]
    if vals.size == 0:
        return
    if lo is not None and vals.min() < lo:
        raise AssertionError(
            f"`{name}` goes down to {vals.min():.4g}{u}, below the plausible minimum "
            f"{lo:g}{u}. Check the unit, the filter, and the formula."
        )
    if hi is not None and vals.max() > hi:
        raise AssertionError(
            f"`{name}` goes up to {vals.max():.4g}{u}, above the plausible maximum "
            f"{hi:g}{u}. Check the unit (is it another unit?), and whether you summed "
            "instead of averaging."
        )


def check_close(x, y, atol: float = 0.0, rtol: float = 1e-9, message: str = "") -> None:
    """Fail unless ``|x - y| <= atol + rtol * |y|`` (elementwise for arrays / Series).

    For checks whose target the resident can see (an example from the text, a value
    derived from their own earlier answer); never with a hidden expected value.
    """
    a, b = _values(x), _values(y)
    if a.shape != b.shape:
        raise AssertionError(message or f"shapes differ: {a.shape} vs {b.shape}")
    if not np.allclose(a, b, atol=atol, rtol=rtol, equal_nan=True):
        raise AssertionError(message or f"{x!r} is not close to {y!r}")


def check_subset(x, allowed: Iterable, name: str, *, hint: str = "") -> None:
    """Fail when ``x`` (an iterable; a dict's keys) holds something outside ``allowed``."""
    allowed = set(allowed)
    stray = sorted({str(v) for v in x if v not in allowed})
    if stray:
        shown = ", ".join(stray[:5]) + (" ..." if len(stray) > 5 else "")
        raise AssertionError(
            f"`{name}` contains value(s) that should not be there: {shown}. {hint}".rstrip()
        )


def check_datetime(s, name: str) -> None:
    """Fail unless ``s`` (a Series) holds dates (a ``datetime64`` dtype)."""
    check_type(s, pd.Series, name)
    if not pd.api.types.is_datetime64_any_dtype(s):
        raise AssertionError(
            f"`{name}` should hold dates (datetime64), but its dtype is {s.dtype}. "
            "Keep the date column as it is in the table, or use pd.to_datetime(...)."
        )


def passed(label: str) -> None:
    """Print that the public checks of ``label`` passed (the value is checked at grading)."""
    print(f"{label}: the public checks passed. The value itself is checked when you submit.")

