"""Code that several modules' notebooks share, for their ``make_notebook.py`` to import.

Kept here so that a fix (a plausible range, the way the cohort is loaded) reaches every
module that uses it at the next rebuild. Text placeholders (``{{t:key}}``) are resolved
against the importing module's ``text.<lang>.yml``, which must define the keys used here.
"""

from __future__ import annotations

PARAMETERS = '''
resident_id = os.environ.get("DRYLAB_RESIDENT_ID", "demo")
'''


def load_tables(names: list[str]) -> str:
    """The locked cell that builds the resident's cohort and names its OMOP tables.

    ``_raw`` is a private copy of every table for the hidden checks, so that nothing a
    resident does to the tables changes the values a misconception is compared with.
    """
    lines = [
        "tables = cohort_for(resident_id).tables",
        "# A private copy for the checks, so nothing done to the tables below changes what "
        "they expect.",
        "_raw = {name: df.copy() for name, df in tables.items()}",
        *(f'{name} = tables["{name}"]' for name in names),
    ]
    return "\n".join(lines)


#: The laboratory handbook: standard unit and plausible range of each measurement concept
#: (text keys ``lab_*`` name the measurements).
LAB_REFERENCE = '''
lab_reference = pd.DataFrame(
    [
        (3004410, {{t:lab_hba1c}}, 8554, "%", 3.0, 20.0),
        (3037110, {{t:lab_glucose}}, 8840, "mg/dL", 20.0, 800.0),
        (3016723, {{t:lab_creatinine}}, 8840, "mg/dL", 0.1, 20.0),
        (3028437, {{t:lab_ldl}}, 8840, "mg/dL", 10.0, 500.0),
        (3004249, {{t:lab_sbp}}, 8876, "mm[Hg]", 50.0, 300.0),
        (3012888, {{t:lab_dbp}}, 8876, "mm[Hg]", 20.0, 200.0),
        (3038553, {{t:lab_bmi}}, 9531, "kg/m2", 10.0, 100.0),
    ],
    columns=["measurement_concept_id", "measurement", "standard_unit_concept_id",
             "standard_unit", "plausible_low", "plausible_high"],
)
'''
