"""Module 00 (orientation): the notebook's cells. Its text is in text.en.yml.

Rebuild with ``python curriculum/tools/build_notebooks.py 00_orientation``.
"""

from nbbuild import count_checks
from shared_cells import PARAMETERS

SETUP = """
import os

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd  # noqa: F401 (for your own cells)

from autograder.checks import check_range, check_subset, check_type, passed
from synthetic_data import cohort_for
"""


COHORT = """
tables = cohort_for(resident_id).tables
person = tables["person"]
care_site = tables["care_site"]
_raw = {name: df.copy() for name, df in tables.items()}
print({{t:cohort_loaded}}, resident_id)
"""

WIDGET = """
def show_ages(site):
    site_id = care_site.loc[care_site["care_site_name"] == site, "care_site_id"]
    ages = 2022 - person.loc[person["care_site_id"].isin(site_id), "year_of_birth"]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(ages, bins=range(0, 111, 5), color="tab:blue")
    ax.set_xlabel({{t:widget_xlabel}})
    ax.set_ylabel({{t:widget_ylabel}})
    ax.set_title({{t:widget_title}} + " " + site)
    plt.show()


site_menu = widgets.Dropdown(options=care_site["care_site_name"].tolist(),
                             description={{t:widget_label}})
widgets.interact(show_ages, site=site_menu);
"""


def build(b):
    b.md("title")
    b.md("how_it_works")
    b.md("setup_md")
    b.locked("setup", SETUP)
    b.md("params_md")
    b.parameters(PARAMETERS)
    b.md("cohort_md")
    b.locked("cohort", COHORT)

    b.md("s1_md")
    b.code("person.head()")
    b.md("s1_dtypes_md")
    b.code("person.dtypes")

    b.md("q0_1_md")
    b.question(
        "q0_1_n_patients", points=1, answer="n_patients",
        solution="n_patients = len(person)",
        checks=count_checks("n_patients", "q0_1_label", lo=1, hi="10_000_000"),
        hidden='_mis_columns = len(_raw["person"].columns)',
        compare={"kind": "exact"},
        competencies=["jupyter-basics", "pandas-basics"],
        misconceptions=[("columns", "_mis_columns", "mis_q0_1_columns")],
    )

    b.md("s2_md")
    b.code('born_before_1940 = person.loc[person["year_of_birth"] < 1940]\n'
           "len(born_before_1940)")
    b.md("q0_2_md")
    b.question(
        "q0_2_n_women", points=1, answer="n_women",
        solution='n_women = int((person["gender_source_value"] == "F").sum())',
        checks=count_checks("n_women", "q0_2_label"),
        hidden="""
_p = _raw["person"]
_mis_men = int((_p["gender_source_value"] == "M").sum())
""",
        compare={"kind": "exact"},
        competencies=["pandas-basics"],
        misconceptions=[("men", "_mis_men", "mis_q0_2_men")],
    )

    b.md("s3_md")
    b.code('people = person.assign(age_2022=2022 - person["year_of_birth"])\n'
           'people[["person_id", "year_of_birth", "age_2022"]].head()')
    b.md("q0_3_md")
    b.question(
        "q0_3_n_children", points=1, answer="n_children",
        solution='n_children = int((people["age_2022"] < 18).sum())',
        checks=count_checks("n_children", "q0_3_label"),
        hidden="""
_age = 2022 - _raw["person"]["year_of_birth"]
_mis_le18 = int((_age <= 18).sum())
""",
        compare={"kind": "exact"},
        competencies=["pandas-basics"],
        misconceptions=[("le18", "_mis_le18", "mis_q0_3_le18")],
    )

    b.md("q0_4_md")
    b.question(
        "q0_4_mean_age_adults", points=1, answer="mean_age_adults",
        solution='mean_age_adults = float(people.loc[people["age_2022"] >= 18, "age_2022"].mean())',
        checks="""
check_type(mean_age_adults, float, "mean_age_adults")
check_range(mean_age_adults, 18, 110, "mean_age_adults", {{t:unit_years}})
passed({{t:q0_4_label}})
""",
        hidden="""
_age = 2022 - _raw["person"]["year_of_birth"]
_mis_everyone = float(_age.mean())
""",
        compare={"kind": "number", "atol": 0.005, "rtol": 0.0},
        competencies=["pandas-basics"],
        misconceptions=[("everyone", "_mis_everyone", "mis_q0_4_everyone")],
    )

    b.md("s4_md")
    b.code("care_site")
    b.locked("widget", WIDGET)
    b.md("q0_5_md")
    b.question(
        "q0_5_site_counts", points=1, answer="site_counts",
        solution="""
site_counts = (person.merge(care_site, on="care_site_id")["care_site_name"]
               .value_counts().to_dict())
""",
        checks="""
check_type(site_counts, dict, "site_counts")
check_subset(site_counts, _raw["care_site"]["care_site_name"], "site_counts",
             hint={{t:msg_q0_5_keys}})
assert len(site_counts) == 3, {{t:msg_q0_5_three}}
passed({{t:q0_5_label}})
""",
        hidden="""
_named = _raw["person"].merge(_raw["care_site"], on="care_site_id")
_mis_shares = _named["care_site_name"].value_counts(normalize=True).to_dict()
""",
        compare={"kind": "exact"},
        competencies=["pandas-basics", "joins"],
        misconceptions=[("shares", "_mis_shares", "mis_q0_5_shares")],
    )

    b.md("q0_6_md")
    b.manual("q0_6_what_is_a_row", points=2, competencies=["omop-structure", "communication"],
             model_answer_key="q0_6_model")
    b.md("submit_md")
    b.md("key_points")
