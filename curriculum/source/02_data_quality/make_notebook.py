"""Builder of 02_data_quality.ipynb: the code of the notebook; its prose is text.en.yml.

Rebuild with ``python curriculum/tools/build_notebooks.py 02_data_quality``.

Every answer is computed from the resident's cohort only, never from an earlier answer, so a
wrong answer costs one question. The hidden regions compute each misconception's value from
``_raw``, a private copy of the tables made at load time.
"""

from shared_cells import LAB_REFERENCE, PARAMETERS, load_tables

SETUP = '''
import os

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from autograder.checks import check_range, check_subset, check_type, passed
from synthetic_data import cohort_for
'''

LOAD = load_tables(["care_site", "person", "visit_occurrence", "condition_occurrence",
                    "drug_exposure", "measurement", "death", "concept"]) + '''
display(pd.Series({name: len(df) for name, df in tables.items()}, name="rows"))
measurement.head()
'''

REFERENCE = LAB_REFERENCE + "lab_reference\n"

# Public checks shared by the questions, by answer type (autograder.checks, then the label).
SERIES_CHECKS = '''
check_type({v}, pd.Series, "{v}")
check_subset({v}.index, care_site["care_site_id"], "{v}", hint={{{{t:msg_site_index}}}})
assert len({v}) == len(care_site), "{v}: " + {{{{t:msg_site_index}}}}
check_range({v}, 0, 100, "{v}", "%")
passed({{{{t:question}}}} + " {num}")
'''

COUNT_CHECKS = '''
check_type({v}, int, "{v}")
check_range({v}, 0, {n}, "{v}", {{{{t:unit_rows}}}})
passed({{{{t:question}}}} + " {num}")
'''

PERCENT_CHECKS = '''
check_type({v}, float, "{v}")
check_range({v}, 0, 100, "{v}", "%")
passed({{{{t:question}}}} + " {num}")
'''

# The site of a row in the hidden regions: the patient's care site, as the notebook says.
HIDDEN_SITE = '''
_site = _raw["person"].set_index("person_id")["care_site_id"]
_m = _raw["measurement"].assign(care_site_id=_raw["measurement"]["person_id"].map(_site))
'''

Q1_1 = '''
site_of_patient = person[["person_id", "care_site_id"]]
ldl = measurement.loc[measurement["measurement_concept_id"] == 3028437]
ldl = ldl.merge(site_of_patient, on="person_id")
ldl_missing_pct = ldl["value_as_number"].isna().groupby(ldl["care_site_id"]).mean() * 100
'''

Q1_1_HIDDEN = HIDDEN_SITE + '''
_mis_all_types = _m["value_as_number"].isna().groupby(_m["care_site_id"]).mean() * 100
_ldl = _m.loc[_m["measurement_concept_id"] == 3028437]
_mis_ldl_fraction = _ldl["value_as_number"].isna().groupby(_ldl["care_site_id"]).mean()
'''

Q2_1 = '''
m = measurement.merge(person[["person_id", "care_site_id"]], on="person_id")
m = m.merge(lab_reference[["measurement_concept_id", "standard_unit_concept_id"]],
            on="measurement_concept_id")
nonstandard = m["unit_concept_id"] != m["standard_unit_concept_id"]
nonstandard_unit_pct = nonstandard.groupby(m["care_site_id"]).mean() * 100
'''

Q2_1_HIDDEN = HIDDEN_SITE + '''
_std = _m["measurement_concept_id"].map(
    lab_reference.set_index("measurement_concept_id")["standard_unit_concept_id"])
_off = _m["unit_concept_id"] != _std
_glu = _m["measurement_concept_id"] == 3037110
_mis_glucose_only = _off[_glu].groupby(_m.loc[_glu, "care_site_id"]).mean() * 100
_mis_unit_fraction = _off.groupby(_m["care_site_id"]).mean()
'''

Q2_2 = '''
known_visits = visit_occurrence["visit_occurrence_id"]
n_orphan_events = 0
for events in [condition_occurrence, drug_exposure, measurement]:
    orphan = ~events["visit_occurrence_id"].isin(known_visits)
    n_orphan_events += int(orphan.sum())
'''

Q2_2_HIDDEN = '''
_known = _raw["visit_occurrence"]["visit_occurrence_id"]
_mis_measurement_only = int((~_raw["measurement"]["visit_occurrence_id"].isin(_known)).sum())
'''

Q3_1 = '''
m = measurement.merge(lab_reference, on="measurement_concept_id")
in_standard_unit = m["unit_concept_id"] == m["standard_unit_concept_id"]
has_value = m["value_as_number"].notna()
outside = ~m["value_as_number"].between(m["plausible_low"], m["plausible_high"])
n_implausible = int((in_standard_unit & has_value & outside).sum())
'''

Q3_1_HIDDEN = '''
_m = _raw["measurement"].merge(lab_reference, on="measurement_concept_id")
_out = _m["value_as_number"].notna() & ~_m["value_as_number"].between(
    _m["plausible_low"], _m["plausible_high"])
_mis_all_units = int(_out.sum())
'''

Q3_2 = '''
c = condition_occurrence.merge(person[["person_id", "gender_concept_id"]], on="person_id")
gdm_in_men = (c["condition_concept_id"] == 4024659) & (c["gender_concept_id"] == 8507)
bph_in_women = (c["condition_concept_id"] == 198803) & (c["gender_concept_id"] == 8532)
n_sex_implausible = int((gdm_in_men | bph_in_women).sum())
'''

Q3_2_HIDDEN = '''
_c = _raw["condition_occurrence"].merge(_raw["person"][["person_id", "gender_concept_id"]],
                                        on="person_id")
_mis_one_direction = int(((_c["condition_concept_id"] == 4024659)
                          & (_c["gender_concept_id"] == 8507)).sum())
'''

Q3_3 = '''
v = visit_occurrence.merge(death[["person_id", "death_date"]], on="person_id")
after_death = v.loc[v["visit_start_date"] > v["death_date"], "person_id"].nunique()
pct_deceased_visit_after_death = float(after_death / death["person_id"].nunique() * 100)
'''

Q3_3_HIDDEN = '''
_v = _raw["visit_occurrence"].merge(_raw["death"][["person_id", "death_date"]], on="person_id")
_after = _v.loc[_v["visit_start_date"] > _v["death_date"], "person_id"].nunique()
_mis_all_patients = float(_after / _raw["person"]["person_id"].nunique() * 100)
'''

Q3_4 = '''
content = [col for col in measurement.columns if col != "measurement_id"]
n_duplicate_measurements = int(measurement.duplicated(subset=content, keep="first").sum())
'''

Q3_4_HIDDEN = '''
_content = [col for col in _raw["measurement"].columns if col != "measurement_id"]
_mis_keep_false = int(_raw["measurement"].duplicated(subset=_content, keep=False).sum())
_mis_with_id = int(_raw["measurement"].duplicated().sum())
'''

# The dashboard: every check per site and per measurement, from the tables only (never from
# the answers above, so it draws even before any question is answered).
DASHBOARD_DATA = '''
_site_of = person.set_index("person_id")["care_site_id"]
_dq = measurement.merge(lab_reference, on="measurement_concept_id")
_dq["care_site_id"] = _dq["person_id"].map(_site_of)
_std_unit = _dq["unit_concept_id"] == _dq["standard_unit_concept_id"]
_dq["missing"] = _dq["value_as_number"].isna()
_dq["nonstandard"] = ~_std_unit
_dq["implausible"] = _std_unit & _dq["value_as_number"].notna() & ~_dq["value_as_number"].between(
    _dq["plausible_low"], _dq["plausible_high"])
_dq["duplicate"] = _dq.duplicated(subset=[c for c in measurement.columns
                                          if c != "measurement_id"])
_events = pd.concat([t[["person_id", "visit_occurrence_id"]] for t in
                     (condition_occurrence, drug_exposure, measurement)])
_orphan = ~_events["visit_occurrence_id"].isin(visit_occurrence["visit_occurrence_id"])
_dx = condition_occurrence
_dx_site = _dx["person_id"].map(_site_of)
# A diagnosis dated after the ICD-10-CM switch but coded in ICD-9-CM (numeric codes).
_icd9_late = (_dx["condition_start_date"] >= "2015-10-01") & (
    _dx["condition_source_value"].str[:1].str.isdigit())
_site_names = care_site.set_index("care_site_id")["care_site_name"]
dq_summary = pd.DataFrame({
    {{t:dashboard_summary_cols_missing}}: _dq.groupby("care_site_id")["missing"].mean(),
    {{t:dashboard_summary_cols_nonstandard}}: _dq.groupby("care_site_id")["nonstandard"].mean(),
    {{t:dashboard_summary_cols_implausible}}: _dq.groupby("care_site_id")["implausible"].mean(),
    {{t:dashboard_summary_cols_orphan}}: _orphan.groupby(
        _events["person_id"].map(_site_of).to_numpy()).mean(),
    {{t:dashboard_summary_cols_duplicate}}: _dq.groupby("care_site_id")["duplicate"].mean(),
    {{t:dashboard_summary_cols_unmapped}}: (_dx["condition_concept_id"] == 0).groupby(
        _dx_site).mean(),
    {{t:dashboard_summary_cols_icd9_late}}: _icd9_late.groupby(_dx_site).mean(),
}).mul(100).round(2).rename(index=_site_names)
dq_summary.style.set_caption({{t:dashboard_summary_caption}}).background_gradient(axis=0)
'''

DASHBOARD = '''
_checks = {"missing": {{t:dashboard_missing}}, "nonstandard": {{t:dashboard_nonstandard}},
           "implausible": {{t:dashboard_implausible}}}
_monthly = (_dq.groupby(["care_site_id", _dq["measurement_date"].dt.to_period("M")]).size()
            .unstack("care_site_id").fillna(0))


def show_site(care_site_id=1):
    """Draw the quality of one site: check rates per measurement, and volume per month."""
    rates = (_dq.loc[_dq["care_site_id"] == care_site_id]
             .groupby("measurement")[list(_checks)].mean().mul(100))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=[1, 1.3])
    rates.rename(columns=_checks).plot.barh(ax=left, width=0.8)
    left.set_xlabel("%")
    left.set_ylabel("")
    left.legend(fontsize=8)
    for site, counts in _monthly.items():
        right.plot(counts.index.to_timestamp(), counts.to_numpy(), label=_site_names[site],
                   linewidth=2.5 if site == care_site_id else 0.8)
    right.set_title({{t:dashboard_per_month}})
    right.legend(fontsize=8)
    fig.suptitle({{t:dashboard_title}}.replace("{site}", _site_names[care_site_id]))
    fig.tight_layout()
    plt.show()


site_menu = widgets.interact(show_site, care_site_id=widgets.Dropdown(
    options=[(name, site) for site, name in _site_names.items()], value=1,
    description={{t:dashboard_site_label}}))
'''


def _fmt(template: str, **names) -> str:
    return template.format(**names)


def build(b) -> None:
    b.md("title")
    b.md("framing")
    b.md("setup_intro")
    b.locked("setup", SETUP)
    b.parameters(PARAMETERS)
    b.md("load_intro")
    b.locked("load_cohort", LOAD)
    b.md("reference_intro")
    b.locked("lab_reference", REFERENCE)
    b.md("site_rule")

    series = {"kind": "series", "rtol": 1e-4, "atol": 1e-6, "sort_by": "index"}
    exact = {"kind": "exact"}

    b.md("s1", "q1_1")
    b.question(
        "q1_1_ldl_missing", points=2, answer="ldl_missing_pct", solution=Q1_1,
        checks=_fmt(SERIES_CHECKS, v="ldl_missing_pct", num="1.1"), hidden=Q1_1_HIDDEN,
        compare=series, competencies=["data-quality", "missing-data", "site-comparison"],
        misconceptions=[("all_types", "_mis_all_types", "mis_q1_1_all_types"),
                        ("ldl_fraction", "_mis_ldl_fraction", "mis_fraction")])

    b.md("s2", "q2_1")
    b.question(
        "q2_1_nonstandard_units", points=2, answer="nonstandard_unit_pct", solution=Q2_1,
        checks=_fmt(SERIES_CHECKS, v="nonstandard_unit_pct", num="2.1"), hidden=Q2_1_HIDDEN,
        compare=series, competencies=["data-quality", "units", "site-comparison"],
        misconceptions=[("glucose_only", "_mis_glucose_only", "mis_q2_1_glucose_only"),
                        ("unit_fraction", "_mis_unit_fraction", "mis_fraction")])
    b.md("q2_2")
    n_events = ("len(condition_occurrence) + len(drug_exposure) + len(measurement)")
    b.question(
        "q2_2_orphan_events", points=1, answer="n_orphan_events", solution=Q2_2,
        checks=_fmt(COUNT_CHECKS, v="n_orphan_events", n=n_events, num="2.2")
        + '\nassert n_orphan_events > 0, "n_orphan_events: " + {{t:msg_orphans_zero}}',
        hidden=Q2_2_HIDDEN, compare=exact, competencies=["data-quality", "joins"],
        misconceptions=[("measurement_only", "_mis_measurement_only",
                         "mis_q2_2_measurement_only")])

    b.md("s3", "q3_1")
    b.question(
        "q3_1_implausible", points=2, answer="n_implausible", solution=Q3_1,
        checks=_fmt(COUNT_CHECKS, v="n_implausible", n="len(measurement)", num="3.1"),
        hidden=Q3_1_HIDDEN, compare=exact, competencies=["data-quality", "units"],
        misconceptions=[("all_units", "_mis_all_units", "mis_q3_1_all_units")])
    b.md("q3_2")
    b.question(
        "q3_2_sex_implausible", points=1, answer="n_sex_implausible", solution=Q3_2,
        checks=_fmt(COUNT_CHECKS, v="n_sex_implausible", n="len(condition_occurrence)",
                    num="3.2"),
        hidden=Q3_2_HIDDEN, compare=exact, competencies=["data-quality", "joins"],
        misconceptions=[("one_direction", "_mis_one_direction", "mis_q3_2_one_direction")])
    b.md("q3_3")
    b.question(
        "q3_3_visit_after_death", points=1, answer="pct_deceased_visit_after_death",
        solution=Q3_3, checks=_fmt(PERCENT_CHECKS, v="pct_deceased_visit_after_death", num="3.3"),
        hidden=Q3_3_HIDDEN, compare={"kind": "number", "atol": 0.01, "rtol": 0.0},
        competencies=["data-quality", "temporal-logic"],
        misconceptions=[("all_patients", "_mis_all_patients", "mis_q3_3_all_patients")])
    b.md("q3_4")
    b.question(
        "q3_4_duplicates", points=1, answer="n_duplicate_measurements", solution=Q3_4,
        checks=_fmt(COUNT_CHECKS, v="n_duplicate_measurements", n="len(measurement)",
                    num="3.4"),
        hidden=Q3_4_HIDDEN, compare=exact, competencies=["data-quality"],
        misconceptions=[("keep_false", "_mis_keep_false", "mis_q3_4_keep_false"),
                        ("with_id", "_mis_with_id", "mis_q3_4_with_id")])

    b.md("s4")
    b.locked("dashboard_data", DASHBOARD_DATA)
    b.locked("dashboard", DASHBOARD)
    b.md("manual_4_1")
    b.manual("q4_1_committee", points=2, competencies=["communication", "site-comparison"],
             model_answer_key="model_4_1")
    b.md("manual_4_2")
    b.manual("q4_2_dimensions", points=2, competencies=["communication", "data-quality"],
             model_answer_key="model_4_2")
    b.md("key_points")
