"""Module 01 (EHR as data: building a cohort): the notebook's cells. Text: text.en.yml.

Rebuild with ``python curriculum/tools/build_notebooks.py 01_building_a_cohort``.

Each hidden-tests region is self-contained (it starts from ``_raw``, the checks' copy): a public check
that fails stops its cell before the hidden region runs, so a later region must never rely
on names an earlier one defined.
"""

from nbbuild import count_checks
from shared_cells import PARAMETERS

SETUP = """
import os

import matplotlib.pyplot as plt
import pandas as pd

from autograder.checks import (
    check_columns,
    check_datetime,
    check_range,
    check_subset,
    check_type,
    check_unique,
    passed,
)
from synthetic_data import cohort_for
"""


COHORT = """
tables = cohort_for(resident_id).tables
person = tables["person"]
conditions = tables["condition_occurrence"]
concept = tables["concept"]
observation = tables["observation_period"]
measurement = tables["measurement"]
visits = tables["visit_occurrence"]
_raw = {name: df.copy() for name, df in tables.items()}
print({{t:cohort_loaded}}, resident_id)
"""

SWITCH = """
coded = conditions.merge(concept[["concept_id", "concept_name", "vocabulary_id"]],
                         left_on="condition_source_concept_id", right_on="concept_id")
htn = coded.loc[coded["concept_name"] == "Essential hypertension"]
per_year = (htn.groupby([htn["condition_start_date"].dt.year, "vocabulary_id"]).size()
            .unstack(fill_value=0))
ax = per_year.plot(marker="o", figsize=(7, 3))
ax.axvline(2015.75, color="grey", linestyle="--")
ax.set_xlabel("")
ax.set_ylabel({{t:switch_ylabel}})
ax.set_title({{t:switch_title}})
plt.show()
"""

VISIT_JOIN = """
htn_rows = conditions.loc[conditions["condition_concept_id"] == 320128]
joined = htn_rows.merge(visits[["visit_occurrence_id", "visit_source_value"]],
                        on="visit_occurrence_id", how="left", indicator=True)
print(len(htn_rows), len(joined))
joined["_merge"].value_counts()
"""

FLOW_DIAGRAM = """
FLOW_LABELS = [{{t:flow_all}}, {{t:flow_t2d}}, {{t:flow_adult}}, {{t:flow_lookback}},
               {{t:flow_hba1c}}]


def draw_flow(counts, labels):
    \"\"\"One box per step, top to bottom, with the number excluded between boxes.\"\"\"
    fig, ax = plt.subplots(figsize=(7, 1.2 * len(counts)))
    ax.axis("off")
    top = len(counts) - 1
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        y = top - i
        ax.text(0.45, y, f"{label}\\nn = {count:,}", ha="center", va="center",
                bbox={"boxstyle": "round", "fc": "white", "ec": "tab:blue"})
        if i:
            ax.annotate("", xy=(0.45, y + 0.3), xytext=(0.45, y + 0.7),
                        arrowprops={"arrowstyle": "->"})
            ax.text(0.8, y + 0.5, {{t:flow_excluded}} + f" {counts[i - 1] - count:,}",
                    ha="left", va="center", color="tab:red")
    ax.set_xlim(0, 1.1)
    ax.set_ylim(-0.6, top + 0.6)
    plt.show()


ready = (isinstance(flow, list) and len(flow) == len(FLOW_LABELS)
         and all(isinstance(n, int) for n in flow))
if ready:
    draw_flow(flow, FLOW_LABELS)
else:
    print({{t:flow_not_ready}})
"""

# The T2D codes from the concept table, for the hidden regions (each region restarts from
# _raw, see the module docstring).
_CODES = """
_c = _raw["concept"]
_t2d = _c.loc[_c["concept_name"] == "Type 2 diabetes mellitus"]
_codes = set(_t2d.loc[_t2d["vocabulary_id"].isin(["ICD9CM", "ICD10CM"]), "concept_code"])
_icd10 = set(_t2d.loc[_t2d["vocabulary_id"] == "ICD10CM", "concept_code"])
_co = _raw["condition_occurrence"]
"""

# From a set of codes to the five counts of the flow diagram (hidden region of Question 1.7).
_FLOW_OF = """
def _flow_of(codes):
    _p = _raw["person"]
    _dx = _co.loc[_co["condition_source_value"].isin(codes)]
    _idx = _dx.groupby("person_id", as_index=False)["condition_start_date"].min()
    _idx = _idx.merge(_p[["person_id", "year_of_birth"]], on="person_id")
    _adults = _idx.loc[_idx["condition_start_date"].dt.year - _idx["year_of_birth"] >= 18]
    _op = _raw["observation_period"]
    _per = _adults.merge(_op[["person_id", "observation_period_start_date"]], on="person_id")
    _back = _per["condition_start_date"] - _per["observation_period_start_date"]
    _elig = _per.loc[_back >= pd.Timedelta(days=365)]
    _m = _raw["measurement"]
    _hb = _m.loc[_m["measurement_source_value"] == "4548-4", ["person_id", "measurement_date"]]
    _pair = _hb.merge(_elig[["person_id", "condition_start_date"]], on="person_id")
    _gap = _pair["condition_start_date"] - _pair["measurement_date"]
    _ok = (_gap >= pd.Timedelta(0)) & (_gap <= pd.Timedelta(days=365))
    return [len(_p), _dx["person_id"].nunique(), _adults["person_id"].nunique(),
            _elig["person_id"].nunique(), _pair.loc[_ok, "person_id"].nunique()]
"""

# The patients of `eligible` for the hidden regions of Questions 1.5 and 1.6.
_ELIGIBLE = """
_dx = _co.loc[_co["condition_source_value"].isin(_codes)]
_idx = _dx.groupby("person_id", as_index=False)["condition_start_date"].min()
_idx = _idx.merge(_raw["person"][["person_id", "year_of_birth"]], on="person_id")
_adults = _idx.loc[_idx["condition_start_date"].dt.year - _idx["year_of_birth"] >= 18]
_op = _raw["observation_period"]
_per = _adults.merge(_op, on="person_id")
"""


def build(b):
    b.md("title")
    b.md("setup_md")
    b.locked("setup", SETUP)
    b.parameters(PARAMETERS)
    b.locked("cohort", COHORT)
    b.md("cohort_md")

    b.md("s1_md")
    b.locked("icd_switch", SWITCH)
    b.md("q1_1_md")
    b.question(
        "q1_1_t2d_codes", points=1, answer="t2d_codes",
        solution="""
is_t2d = concept["concept_name"] == "Type 2 diabetes mellitus"
is_icd = concept["vocabulary_id"].isin(["ICD9CM", "ICD10CM"])
t2d_codes = set(concept.loc[is_t2d & is_icd, "concept_code"])
""",
        checks="""
check_type(t2d_codes, set, "t2d_codes")
assert all(isinstance(code, str) and code for code in t2d_codes), {{t:msg_q1_1_empty}}
check_subset(t2d_codes, _raw["concept"]["concept_code"], "t2d_codes",
             hint={{t:msg_q1_1_codes}})
passed({{t:q1_1_label}})
""",
        hidden=_CODES + """
_mis_icd10_only = _icd10
_mis_with_snomed = set(_t2d["concept_code"])
""",
        compare={"kind": "set"},
        competencies=["code-systems", "omop-structure"],
        misconceptions=[("icd10_only", "_mis_icd10_only", "mis_q1_1_icd10_only"),
                        ("with_snomed", "_mis_with_snomed", "mis_q1_1_with_snomed")],
    )

    b.md("q1_2_md")
    b.question(
        "q1_2_n_t2d", points=1, answer="n_t2d",
        solution="""
t2d_rows = conditions.loc[conditions["condition_source_value"].isin(t2d_codes)]
n_t2d = int(t2d_rows["person_id"].nunique())
""",
        checks=count_checks("n_t2d", "q1_2_label", lo=1),
        hidden=_CODES + """
_mis_icd10_only = int(_co.loc[_co["condition_source_value"].isin(_icd10), "person_id"].nunique())
_mis_rows = int(_co["condition_source_value"].isin(_codes).sum())
""",
        compare={"kind": "exact"},
        competencies=["code-systems", "cohort-definition"],
        misconceptions=[("icd10_only", "_mis_icd10_only", "mis_q1_2_icd10_only"),
                        ("rows", "_mis_rows", "mis_q1_2_rows")],
    )

    b.md("q1_3_md")
    b.question(
        "q1_3_n_lost_icd10_only", points=1, answer="n_lost_icd10_only",
        solution="""
icd10_codes = set(concept.loc[concept["vocabulary_id"] == "ICD10CM", "concept_code"])
t2d_rows = conditions.loc[conditions["condition_source_value"].isin(t2d_codes)]
all_t2d = set(t2d_rows["person_id"])
found_by_icd10 = set(t2d_rows.loc[t2d_rows["condition_source_value"].isin(icd10_codes),
                                  "person_id"])
n_lost_icd10_only = len(all_t2d - found_by_icd10)
""",
        checks=count_checks("n_lost_icd10_only", "q1_3_label"),
        hidden=_CODES + """
_icd9_rows = _co.loc[_co["condition_source_value"].isin(_codes - _icd10)]
_mis_any_icd9 = int(_icd9_rows["person_id"].nunique())
""",
        compare={"kind": "exact"},
        competencies=["code-systems"],
        misconceptions=[("any_icd9", "_mis_any_icd9", "mis_q1_3_any_icd9")],
    )

    b.md("s2_md")
    b.md("q1_4_md")
    b.question(
        "q1_4_index_dates", points=2, answer="index_dates",
        solution="""
t2d_rows = conditions.loc[conditions["condition_source_value"].isin(t2d_codes)]
index_dates = (t2d_rows.groupby("person_id", as_index=False)["condition_start_date"].min()
               .rename(columns={"condition_start_date": "index_date"}))
""",
        checks="""
check_columns(index_dates, ["person_id", "index_date"], "index_dates", exact=True)
check_unique(index_dates, "person_id", "index_dates", what="row")
check_datetime(index_dates["index_date"], "index_dates['index_date']")
passed({{t:q1_4_label}})
""",
        hidden=_CODES + """
def _first_dates(codes, how):
    _rows = _co.loc[_co["condition_source_value"].isin(codes)]
    _d = _rows.groupby("person_id", as_index=False)["condition_start_date"].agg(how)
    return _d.rename(columns={"condition_start_date": "index_date"})


_mis_last = _first_dates(_codes, "max")
_mis_icd10_only = _first_dates(_icd10, "min")
""",
        compare={"kind": "frame", "rtol": 0.0, "check_like": True, "sort_by": ["person_id"]},
        competencies=["temporal-logic", "cohort-definition"],
        misconceptions=[("last", "_mis_last", "mis_q1_4_last"),
                        ("icd10_only", "_mis_icd10_only", "mis_q1_4_icd10_only")],
    )
    b.md("s2_visits_md")
    b.code(VISIT_JOIN)

    b.md("s3_md")
    b.md("q1_5_md")
    b.question(
        "q1_5_n_lookback", points=1, answer="n_lookback",
        solution="""
with_age = index_dates.merge(person[["person_id", "year_of_birth"]], on="person_id")
adults = with_age.loc[with_age["index_date"].dt.year - with_age["year_of_birth"] >= 18]
periods = adults.merge(observation[["person_id", "observation_period_start_date"]],
                       on="person_id")
lookback = periods["index_date"] - periods["observation_period_start_date"]
eligible = periods.loc[lookback >= pd.Timedelta(days=365)]
n_lookback = int(eligible["person_id"].nunique())
""",
        checks=count_checks("n_lookback", "q1_5_label"),
        hidden=_CODES + _ELIGIBLE + """
_ahead = _per["observation_period_end_date"] - _per["condition_start_date"]
_mis_followup = int(_per.loc[_ahead >= pd.Timedelta(days=365), "person_id"].nunique())
""",
        compare={"kind": "exact"},
        competencies=["temporal-logic", "joins", "cohort-definition"],
        misconceptions=[("followup", "_mis_followup", "mis_q1_5_followup")],
    )

    b.md("q1_6_md")
    b.question(
        "q1_6_final_ids", points=2, answer="final_ids",
        solution="""
hba1c = measurement.loc[measurement["measurement_source_value"] == "4548-4",
                        ["person_id", "measurement_date"]]
paired = hba1c.merge(eligible[["person_id", "index_date"]], on="person_id")
before = paired["index_date"] - paired["measurement_date"]
in_window = (before >= pd.Timedelta(0)) & (before <= pd.Timedelta(days=365))
final_ids = set(paired.loc[in_window, "person_id"])
""",
        checks="""
check_type(final_ids, set, "final_ids")
check_subset(final_ids, _raw["person"]["person_id"], "final_ids",
             hint={{t:msg_q1_6_ids}})
passed({{t:q1_6_label}})
""",
        hidden=_CODES + _ELIGIBLE + """
_back = _per["condition_start_date"] - _per["observation_period_start_date"]
_elig = _per.loc[_back >= pd.Timedelta(days=365), ["person_id", "condition_start_date"]]
_m = _raw["measurement"]
_hb = _m.loc[_m["measurement_source_value"] == "4548-4", ["person_id", "measurement_date"]]
_pair = _hb.merge(_elig, on="person_id")
_gap = _pair["condition_start_date"] - _pair["measurement_date"]
_mis_any_time = set(_pair["person_id"])
_mis_around = set(_pair.loc[_gap.abs() <= pd.Timedelta(days=365), "person_id"])
""",
        compare={"kind": "set"},
        competencies=["temporal-logic", "joins"],
        misconceptions=[("any_time", "_mis_any_time", "mis_q1_6_any_time"),
                        ("around", "_mis_around", "mis_q1_6_around")],
    )

    b.md("s4_md")
    b.md("q1_7_md")
    b.question(
        "q1_7_flow", points=1, answer="flow",
        solution="""
flow = [len(person), n_t2d, int(adults["person_id"].nunique()), n_lookback, len(final_ids)]
""",
        checks="""
check_type(flow, list, "flow")
assert len(flow) == 5, {{t:msg_q1_7_five}}
assert all(isinstance(n, int) and not isinstance(n, bool) for n in flow), {{t:msg_q1_7_ints}}
assert flow[0] == len(_raw["person"]), {{t:msg_q1_7_first}}
assert all(flow[i] >= flow[i + 1] for i in range(4)), {{t:msg_q1_7_down}}
passed({{t:q1_7_label}})
""",
        hidden=_CODES + _FLOW_OF + "\n\n_mis_icd10_only = _flow_of(_icd10)",
        compare={"kind": "sequence"},
        competencies=["cohort-definition"],
        misconceptions=[("icd10_only", "_mis_icd10_only", "mis_q1_7_icd10_only")],
    )
    b.locked("flow_diagram", FLOW_DIAGRAM)

    b.md("q1_8_md")
    b.manual("q1_8_tell_the_endocrinologist", points=3,
             competencies=["code-systems", "communication"], model_answer_key="q1_8_model")
    b.md("key_points")
