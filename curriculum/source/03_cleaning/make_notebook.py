"""Builder of 03_cleaning.ipynb: the code of the notebook; its prose is text.en.yml.

Rebuild with ``python curriculum/tools/build_notebooks.py 03_cleaning``.

The resident cleans working copies (``meas``, ``cond``, ``visits``, ``person_clean``) step by
step, so later answers use the state earlier steps left. Public checks test that state (e.g.
no mmol/L row is left), so a resident who skipped a step is told before it spreads; the
misconception variants keep the state right and only report a wrong number. The hidden
regions compute each misconception's value from ``_raw``, a private copy of the raw tables.
"""

from shared_cells import LAB_REFERENCE, PARAMETERS, load_tables

SETUP = '''
import os

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from autograder.checks import check_range, check_subset, check_type, passed
from synthetic_data import cohort_for
'''

LOAD = load_tables(["care_site", "person", "visit_occurrence", "condition_occurrence",
                    "measurement", "death", "concept"])

REFERENCE = LAB_REFERENCE + '''
unit_conversion = pd.DataFrame(
    [(3037110, 8753, "mmol/L", 18.016), (3016723, 8749, "umol/L", 1 / 88.42)],
    columns=["measurement_concept_id", "unit_concept_id", "unit", "factor_to_standard"],
)
local_code_map = {"DM2-LOC": 201826, "HTN-LOC": 320128, "CKD-LOC": 46271022, "CHF-LOC": 316139}
display(lab_reference, unit_conversion)
'''

WORKING = '''
meas = measurement.copy()
cond = condition_occurrence.copy()
visits = visit_occurrence.copy()
person_clean = person.copy()
cleaning_log = {}


def log_step(step, table, rows_affected, action):
    """Record one cleaning step in the log; running a step again replaces its line."""
    cleaning_log[step] = {"step": step, "table": table,
                          "rows_affected": int(rows_affected), "action": action}
'''

# Public checks by answer type (autograder.checks); the state checks of a step follow them.
FLOAT_GLUCOSE = '''
check_type({v}, float, "{v}")
check_range({v}, 50, 400, "{v}", "mg/dL")
'''

COUNT = '''
check_type({v}, int, "{v}")
check_range({v}, 0, {n}, "{v}", {{{{t:unit_rows}}}})
'''

SERIES_GLUCOSE = '''
check_type({v}, pd.Series, "{v}")
check_subset({v}.index, care_site["care_site_id"], "{v}", hint={{{{t:msg_site_index}}}})
assert len({v}) == len(care_site), "{v}: " + {{{{t:msg_site_index}}}}
check_range({v}, 50, 400, "{v}", "mg/dL")
'''

# The conversion and the plausible range, as the hidden regions recompute them from _raw.
HIDDEN_LIMITS = '''
_m = _raw["measurement"]
_glucose = _m["measurement_concept_id"] == 3037110
_factor = _m["unit_concept_id"].map(
    unit_conversion.set_index("unit_concept_id")["factor_to_standard"]).fillna(1.0)
_limits = lab_reference.set_index("measurement_concept_id")
_low = _m["measurement_concept_id"].map(_limits["plausible_low"])
_high = _m["measurement_concept_id"].map(_limits["plausible_high"])
'''

Q1_1 = '''
factor = meas["unit_concept_id"].map(
    unit_conversion.set_index("unit_concept_id")["factor_to_standard"])
rows = factor.notna()
meas.loc[rows, "value_as_number"] = meas.loc[rows, "value_as_number"] * factor[rows]
meas.loc[rows, "unit_concept_id"] = 8840
meas.loc[rows, "unit_source_value"] = "mg/dL"
log_step("units", "measurement", rows.sum(), "converted mmol/L and umol/L results to mg/dL")

glucose = meas["measurement_concept_id"] == 3037110
mean_glucose_mgdl = float(meas.loc[glucose, "value_as_number"].mean())
'''

Q1_1_STATE = '''
assert not meas["unit_concept_id"].isin([8753, 8749]).any(), {{t:msg_units_left}}
'''

Q1_1_HIDDEN = HIDDEN_LIMITS + '''
_mis_mean_before_units = float(_m.loc[_glucose, "value_as_number"].mean())
_divided = _m["value_as_number"].where(_m["unit_concept_id"] != 8753, _m["value_as_number"] / 18.016)
_mis_divided = float(_divided[_glucose].mean())
'''

Q2_1 = '''
limits = lab_reference.set_index("measurement_concept_id")
low = meas["measurement_concept_id"].map(limits["plausible_low"])
high = meas["measurement_concept_id"].map(limits["plausible_high"])
implausible = meas["value_as_number"].notna() & ~meas["value_as_number"].between(low, high)
meas.loc[implausible, "value_as_number"] = float("nan")
n_implausible_removed = int(implausible.sum())
log_step("implausible values", "measurement", n_implausible_removed,
         "set values outside the plausible range to missing")
'''

Q2_1_STATE = '''
assert not (meas["value_as_number"] > 800).any(), {{t:msg_implausible_left}}
'''

Q2_1_HIDDEN = HIDDEN_LIMITS + '''
_mis_range_before_units = int((_m["value_as_number"].notna()
                         & ~_m["value_as_number"].between(_low, _high)).sum())
_mis_nan_counted = int((~(_m["value_as_number"] * _factor).between(_low, _high)).sum())
'''

Q2_2 = '''
censored = meas["value_source_value"].str.startswith(">")
meas["censored"] = censored
meas.loc[censored, "value_as_number"] = meas.loc[censored, "value_source_value"].str[1:].astype(float)
log_step("censored values", "measurement", censored.sum(),
         "set '>limit' results to the limit and flagged them in 'censored'")

glucose = meas["measurement_concept_id"] == 3037110
mean_glucose_censored = float(meas.loc[glucose, "value_as_number"].mean())
'''

Q2_2_STATE = '''
assert "censored" in meas.columns and meas["censored"].dtype == bool, {{t:msg_censored_column}}
assert meas.loc[meas["censored"], "value_as_number"].notna().all(), {{t:msg_censored_missing}}
'''

Q2_2_HIDDEN = HIDDEN_LIMITS + '''
_value = _m["value_as_number"] * _factor
_value = _value.where(_value.between(_low, _high))
_mis_left_missing = float(_value[_glucose].mean())
'''

Q3_1 = '''
standard = concept.loc[concept["standard_concept"] == "S"].set_index("concept_name")["concept_id"]
icd = concept.loc[concept["vocabulary_id"].isin(["ICD9CM", "ICD10CM"])]
code_map = dict(zip(icd["concept_code"], icd["concept_name"].map(standard), strict=True))
code_map.update(local_code_map)

mapped = cond["condition_source_value"].map(code_map)
known = mapped.notna()
changed = known & (mapped != cond["condition_concept_id"])
cond.loc[known, "condition_concept_id"] = mapped[known].astype("int64")
log_step("code mapping", "condition_occurrence", changed.sum(),
         "set condition_concept_id from the source code (ICD-9, ICD-10, local)")

n_t2d_rows = int((cond["condition_concept_id"] == 201826).sum())
n_t2d_rows
'''

Q3_1_STATE = '''
assert not (cond["condition_concept_id"] == 0).any(), {{t:msg_unmapped_left}}
'''

Q3_1_HIDDEN = '''
_c = _raw["condition_occurrence"]
_mis_no_local = int((_c["condition_concept_id"] == 201826).sum())
_mis_icd10_only = int(_c["condition_source_value"].str.startswith("E11").sum())
'''

DUPLICATE_ROWS = '''
content = [col for col in meas.columns if col != "measurement_id"]
repeat = meas.duplicated(subset=content, keep="first")
meas = meas.loc[~repeat]
log_step({{t:step_duplicate_rows}}, "measurement", repeat.sum(), {{t:action_duplicate_rows}})
print(int(repeat.sum()))
'''

Q4_1 = '''
demographics = ["birth_datetime", "gender_concept_id", "race_concept_id"]
people = person_clean[["person_id", "care_site_id", *demographics]]
pairs = people.merge(people, on=demographics, suffixes=("", "_other"))
pairs = pairs.loc[(pairs["person_id"] < pairs["person_id_other"])
                  & (pairs["care_site_id"] != pairs["care_site_id_other"])]

result = ["measurement_date", "measurement_concept_id", "value_as_number"]
labs = measurement[["person_id", *result]].dropna()
shared = pairs.merge(labs, on="person_id").merge(
    labs.rename(columns={"person_id": "person_id_other"}), on=["person_id_other", *result])
duplicate_person_ids = sorted(shared["person_id_other"].unique())

person_clean = person_clean.loc[~person_clean["person_id"].isin(duplicate_person_ids)]
their_rows = meas["person_id"].isin(duplicate_person_ids)
meas = meas.loc[~their_rows]
log_step("duplicate patients", "person", len(duplicate_person_ids),
         "dropped re-registrations (same birth date, sex, race; identical lab result)")
log_step("rows of duplicate patients", "measurement", their_rows.sum(),
         "dropped the measurements of the re-registrations")
n_duplicate_patients = len(duplicate_person_ids)
'''

Q4_1_STATE = '''
assert "duplicate_person_ids" in globals(), {{t:msg_dups_left}}
assert not meas["person_id"].isin(duplicate_person_ids).any(), {{t:msg_dups_left}}
assert not person_clean["person_id"].isin(duplicate_person_ids).any(), {{t:msg_dups_left}}
'''

Q4_1_HIDDEN = '''
_demographics = ["birth_datetime", "gender_concept_id", "race_concept_id"]
_p = _raw["person"][["person_id", "care_site_id", *_demographics]]
_pairs = _p.merge(_p, on=_demographics, suffixes=("", "_other"))
_pairs = _pairs.loc[(_pairs["person_id"] < _pairs["person_id_other"])
                    & (_pairs["care_site_id"] != _pairs["care_site_id_other"])]
_mis_demographics = int(_pairs["person_id_other"].nunique())
'''

VISITS_AFTER_DEATH = '''
death_date = visits["person_id"].map(death.set_index("person_id")["death_date"])
after_death = visits["visit_start_date"] > death_date
visits = visits.loc[~after_death]
log_step({{t:step_visits_after_death}}, "visit_occurrence", after_death.sum(),
         {{t:action_visits_after_death}})
print(int(after_death.sum()))
'''

Q6_1 = '''
site = meas["person_id"].map(person_clean.set_index("person_id")["care_site_id"])
glucose = meas["measurement_concept_id"] == 3037110
glucose_by_site_clean = meas.loc[glucose, "value_as_number"].groupby(
    site[glucose].rename("care_site_id")).mean()
'''



Q6_1_HIDDEN = '''
_m = _raw["measurement"]
_site = _m["person_id"].map(_raw["person"].set_index("person_id")["care_site_id"])
_glucose = _m["measurement_concept_id"] == 3037110
_mis_raw = _m.loc[_glucose, "value_as_number"].groupby(_site[_glucose].rename("care_site_id")).mean()
'''

# From the working copies as they are: before any answer it shows raw == cleaned, never fails.
COMPARE = '''
def site_means(table, people, concept_id):
    """Mean value of one measurement per care site (the patient's site in ``people``)."""
    site = table["person_id"].map(people.set_index("person_id")["care_site_id"])
    rows = table["measurement_concept_id"] == concept_id
    return table.loc[rows, "value_as_number"].groupby(site[rows].rename("care_site_id")).mean()


site_names = care_site.set_index("care_site_id")["care_site_name"]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, (concept_id, label) in zip(
        axes, [(3037110, {{t:plot_glucose}}), (3004410, {{t:plot_hba1c}})], strict=True):
    both = pd.DataFrame({{{t:plot_raw}}: site_means(measurement, person, concept_id),
                         {{t:plot_clean}}: site_means(meas, person_clean, concept_id)})
    both.rename(index=site_names).plot.bar(ax=ax, rot=0)
    for bars in ax.containers:
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_title(label)
    ax.set_xlabel("")
    ax.tick_params(axis="x", labelsize=8)
fig.suptitle({{t:plot_title}})
fig.tight_layout()
plt.show()
pd.DataFrame(list(cleaning_log.values())).style.set_caption({{t:log_caption}})
'''


def _checks(template: str, state: str = "", *, num: str, **names) -> str:
    """Public checks: the answer's type and range, then the working copies' state."""
    done = f'passed({{{{t:question}}}} + " {num}")'
    parts = (template.format(**names), state, done)
    return "\n".join(part.strip("\n") for part in parts if part.strip())


def build(b) -> None:
    b.md("title")
    b.md("setup_intro")
    b.locked("setup", SETUP)
    b.parameters(PARAMETERS)
    b.md("load_intro")
    b.locked("load_cohort", LOAD)
    b.locked("lab_reference", REFERENCE)
    b.md("working_intro")
    b.locked("working_copies", WORKING)

    number = {"kind": "number", "atol": 0.01, "rtol": 0.0}
    exact = {"kind": "exact"}

    b.md("s1", "q1_1")
    b.question(
        "q1_1_glucose_mgdl", points=2, answer="mean_glucose_mgdl", solution=Q1_1,
        checks=_checks(FLOAT_GLUCOSE, Q1_1_STATE, v="mean_glucose_mgdl", num="1.1"), hidden=Q1_1_HIDDEN,
        compare=number, competencies=["units", "data-cleaning"],
        misconceptions=[("mean_before_units", "_mis_mean_before_units",
                         "mis_q1_1_before_units"),
                        ("divided", "_mis_divided", "mis_q1_1_divided")])

    b.md("s2", "q2_1")
    b.question(
        "q2_1_implausible", points=1, answer="n_implausible_removed", solution=Q2_1,
        checks=_checks(COUNT, Q2_1_STATE, v="n_implausible_removed", n="len(meas)",
                       num="2.1"),
        hidden=Q2_1_HIDDEN, compare=exact, competencies=["data-cleaning", "units"],
        misconceptions=[("range_before_units", "_mis_range_before_units",
                         "mis_q2_1_before_units"),
                        ("nan_counted", "_mis_nan_counted", "mis_q2_1_nan_counted")])
    b.md("q2_2")
    b.question(
        "q2_2_censored", points=2, answer="mean_glucose_censored", solution=Q2_2,
        checks=_checks(FLOAT_GLUCOSE, Q2_2_STATE, v="mean_glucose_censored", num="2.2"),
        hidden=Q2_2_HIDDEN, compare=number, competencies=["data-cleaning", "missing-data"],
        misconceptions=[("left_missing", "_mis_left_missing", "mis_q2_2_left_missing")])

    b.md("s3", "q3_1")
    b.question(
        "q3_1_t2d_rows", points=2, answer="n_t2d_rows", solution=Q3_1,
        checks=_checks(COUNT, Q3_1_STATE, v="n_t2d_rows", n="len(cond)", num="3.1"),
        hidden=Q3_1_HIDDEN, compare=exact, competencies=["code-systems", "data-cleaning"],
        misconceptions=[("no_local", "_mis_no_local", "mis_q3_1_no_local"),
                        ("icd10_only", "_mis_icd10_only", "mis_q3_1_icd10_only")])

    b.md("s4")
    b.locked("duplicate_rows", DUPLICATE_ROWS)
    b.md("s4_patients", "q4_1")
    b.question(
        "q4_1_duplicate_patients", points=2, answer="n_duplicate_patients", solution=Q4_1,
        checks=_checks(COUNT, Q4_1_STATE, v="n_duplicate_patients", n="len(person)",
                       num="4.1"),
        hidden=Q4_1_HIDDEN, compare=exact, competencies=["data-cleaning", "joins"],
        misconceptions=[("demographics", "_mis_demographics", "mis_q4_1_demographics")])

    b.md("s5")
    b.locked("visits_after_death", VISITS_AFTER_DEATH)

    b.md("s6", "q6_1")
    b.question(
        "q6_1_glucose_by_site", points=2, answer="glucose_by_site_clean", solution=Q6_1,
        checks=_checks(SERIES_GLUCOSE, v="glucose_by_site_clean", num="6.1"), hidden=Q6_1_HIDDEN,
        compare={"kind": "series", "rtol": 1e-4, "atol": 0.01, "sort_by": "index"},
        competencies=["data-cleaning", "site-comparison"],
        misconceptions=[("raw", "_mis_raw", "mis_q6_1_raw")])
    b.md("compare_intro")
    b.locked("compare", COMPARE)
    b.md("manual_6_2")
    b.manual("q6_2_committee", points=3, competencies=["communication", "reproducibility"],
             model_answer_key="model_6_2")
    b.md("key_points")
