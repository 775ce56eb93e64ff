"""autograder.checks: each check passes good answers and fails wrong ones with its message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from autograder import checks as c


def fails(fn, *args, **kw) -> str:
    with pytest.raises(AssertionError) as info:
        fn(*args, **kw)
    return str(info.value)


def test_check_answered_names_the_variable():
    assert "`n_adults` is still None" in fails(c.check_answered, None, "n_adults")
    assert "replace the `...`" in fails(c.check_answered, ..., "x")
    assert c.check_answered(0, "x") is None


@pytest.mark.parametrize("value, types, expected", [
    (3, int, None),
    (3.5, float, None),
    (3, float, None),  # a whole number is a valid float answer
    ({1}, set, None),
    (pd.DataFrame({"a": [1]}), pd.DataFrame, None),
    (True, int, "True/False is not a count"),
    (np.int64(3), int, "wrap it in int(...)"),
    (pd.Series([1, 2]), int, "forget .sum(), .mean() or len(...)"),
    (pd.DataFrame({"a": [1]}), float, "the question asks for one number"),
    ("12", int, "a number has no quotes"),
    (np.array([2.5]), float, "use float(...)"),
    (pd.Series([1], name="a"), pd.DataFrame, "double brackets"),
    (pd.DataFrame({"a": [1]}), pd.Series, "Select a single column"),
    ([1, 2], set, "Wrap it in set(...)"),
    (pd.Series([1]), list, ".tolist()"),
    ((5, 13), int, "but it is tuple"),
])
def test_check_type(value, types, expected):
    if expected is None:
        assert c.check_type(value, types, "x") is None
    else:
        msg = fails(c.check_type, value, types, "x")
        assert msg.startswith("`x` should be ") and expected in msg, msg


def test_check_type_accepts_a_tuple_of_types_and_names_them_all():
    assert c.check_type(2.0, (int, float), "x") is None
    msg = fails(c.check_type, "a", (int, float), "x")
    assert "a whole number (int) or a number with decimals (float)" in msg


def test_check_columns_reports_missing_close_spelling_and_index():
    df = pd.DataFrame({"person_id": [1], "index_date": [pd.Timestamp("2020-01-01")]})
    assert c.check_columns(df, ["person_id"], "t") is None
    msg = fails(c.check_columns, df, ["person_id", "index_dates"], "t")
    assert "`index_dates` (you have `index_date`" in msg
    msg = fails(c.check_columns, df.set_index("person_id"), ["person_id"], "t")
    assert "It is in the index: use .reset_index()" in msg
    assert "drop ['index_date']" in fails(c.check_columns, df, ["person_id"], "t", exact=True)
    assert "should be a pandas DataFrame" in fails(c.check_columns, df["person_id"], ["a"], "t")


def test_check_shape_wildcards_and_row_bounds():
    df = pd.DataFrame({"a": range(5), "b": range(5)})
    assert c.check_shape(df, (None, 2), name="t") is None
    assert "should have shape (any, 3)" in fails(c.check_shape, df, (None, 3), name="t")
    assert "fewer than the 6 expected" in fails(c.check_shape, df, min_rows=6, name="t")
    assert "a join that multiplied rows" in fails(c.check_shape, df, max_rows=4, name="t")
    assert c.check_shape([1, 2, 3], (3,), name="t") is None


def test_check_unique_shows_a_repeated_key():
    df = pd.DataFrame({"person_id": [1, 2, 2], "x": [0, 1, 2]})
    msg = fails(c.check_unique, df, "person_id", "t", what="row")
    assert "one row per person_id, but 1 rows repeat a value (e.g. [2])" in msg
    assert c.check_unique(df.drop_duplicates("person_id"), ["person_id"], "t") is None


def test_check_range_scalars_series_units_and_missing():
    assert c.check_range(5.5, 3, 20, "hba1c", "%") is None
    assert c.check_range(pd.Series([4.0, 6.0]), 3, 20, "hba1c", "%") is None
    msg = fails(c.check_range, 1959.2, 0, 120, "mean_age", "years")
    assert "goes up to 1959 years, above the plausible maximum 120 years" in msg
    assert "below the plausible minimum 3 %" in fails(c.check_range, pd.Series([1.0]), 3, 20,
                                                      "hba1c", "%")
    assert "missing values (NaN)" in fails(c.check_range, pd.Series([5.0, np.nan]), 3, 20, "h")
    assert c.check_range(pd.Series([5.0, np.nan]), 3, 20, "h", allow_missing=True) is None
    assert "should be a whole number (int) or" in fails(c.check_range, "7", 0, 10, "x")
    assert "asks for one number" in fails(c.check_range, pd.DataFrame({"a": [1]}), 0, 10, "x")


def test_check_close_uses_atol_and_rtol_and_the_given_message():
    assert c.check_close(1.0, 1.04, atol=0.05) is None
    assert c.check_close(pd.Series([100.0]), [101.0], rtol=0.02) is None
    assert fails(c.check_close, 1.0, 1.2, atol=0.05, message="the parts must add up") == (
        "the parts must add up")
    assert "shapes differ" in fails(c.check_close, [1.0, 2.0], [1.0])
    assert "not a whole table" in fails(c.check_close, pd.DataFrame({"a": [1]}), 1.0)


def test_check_subset_lists_stray_values_and_the_hint():
    assert c.check_subset({"a": 1}, ["a", "b"], "d") is None
    msg = fails(c.check_subset, [1, 2, "a"], ["a"], "d", hint="Use the names.")
    assert msg == "`d` contains value(s) that should not be there: 1, 2. Use the names."


def test_check_datetime():
    assert c.check_datetime(pd.Series(pd.to_datetime(["2020-01-01"])), "d") is None
    assert "dtype is str" in fails(c.check_datetime, pd.Series(["2020-01-01"]), "d")


def test_passed_prints_the_label(capsys):
    c.passed("Question 1.2")
    assert capsys.readouterr().out.startswith("Question 1.2: the public checks passed.")


def test_the_module_imports_only_numpy_and_pandas():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(c.__file__).read_text(encoding="utf-8"))
    roots = {(n.module or "").split(".")[0] for n in ast.walk(tree)
             if isinstance(n, ast.ImportFrom)}
    roots |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
              for a in n.names}
    assert roots <= {"__future__", "collections", "difflib", "numpy", "pandas"}, roots
