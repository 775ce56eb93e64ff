"""OMOP CDM 5.4 shapes: the tables' columns and dtypes, and the small vocabulary we generate.

Column names follow OMOP CDM 5.4; each table keeps the columns a teaching cohort needs (the
required ones and the source-value columns where the defects live). Concept ids are those of
the OHDSI standard vocabularies for standard concepts (gender, visit, condition, measurement,
drug ingredient, unit, type concepts). Source concepts for ICD-9-CM / ICD-10-CM codes use the
local range (>= 2,000,000,000) that OMOP reserves for site-defined concepts, with the real codes
in ``concept_code``; this keeps the vocabulary small and shipped with the package, so nothing is
downloaded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DATE = "datetime64[s]"
STR = "str"

#: table -> ordered list of (column, dtype). Every table the generator returns has exactly
#: these columns and dtypes, in this order (tests/test_schema.py checks it).
SCHEMA: dict[str, list[tuple[str, str]]] = {
    "care_site": [
        ("care_site_id", "int64"),
        ("care_site_name", STR),
        ("place_of_service_concept_id", "int64"),
        ("location_id", "int64"),
        ("care_site_source_value", STR),
        ("place_of_service_source_value", STR),
    ],
    "person": [
        ("person_id", "int64"),
        ("gender_concept_id", "int64"),
        ("year_of_birth", "int64"),
        ("month_of_birth", "int64"),
        ("day_of_birth", "int64"),
        ("birth_datetime", DATE),
        ("race_concept_id", "int64"),
        ("ethnicity_concept_id", "int64"),
        ("location_id", "int64"),
        ("care_site_id", "int64"),
        ("person_source_value", STR),
        ("gender_source_value", STR),
        ("race_source_value", STR),
    ],
    "observation_period": [
        ("observation_period_id", "int64"),
        ("person_id", "int64"),
        ("observation_period_start_date", DATE),
        ("observation_period_end_date", DATE),
        ("period_type_concept_id", "int64"),
    ],
    "visit_occurrence": [
        ("visit_occurrence_id", "int64"),
        ("person_id", "int64"),
        ("visit_concept_id", "int64"),
        ("visit_start_date", DATE),
        ("visit_end_date", DATE),
        ("visit_type_concept_id", "int64"),
        ("care_site_id", "int64"),
        ("visit_source_value", STR),
    ],
    "condition_occurrence": [
        ("condition_occurrence_id", "int64"),
        ("person_id", "int64"),
        ("condition_concept_id", "int64"),
        ("condition_start_date", DATE),
        ("condition_type_concept_id", "int64"),
        ("visit_occurrence_id", "int64"),
        ("condition_source_value", STR),
        ("condition_source_concept_id", "int64"),
    ],
    "drug_exposure": [
        ("drug_exposure_id", "int64"),
        ("person_id", "int64"),
        ("drug_concept_id", "int64"),
        ("drug_exposure_start_date", DATE),
        ("drug_exposure_end_date", DATE),
        ("drug_type_concept_id", "int64"),
        ("quantity", "float64"),
        ("days_supply", "int64"),
        ("visit_occurrence_id", "int64"),
        ("drug_source_value", STR),
    ],
    "measurement": [
        ("measurement_id", "int64"),
        ("person_id", "int64"),
        ("measurement_concept_id", "int64"),
        ("measurement_date", DATE),
        ("measurement_type_concept_id", "int64"),
        ("value_as_number", "float64"),
        ("unit_concept_id", "int64"),
        ("range_low", "float64"),
        ("range_high", "float64"),
        ("visit_occurrence_id", "int64"),
        ("measurement_source_value", STR),
        ("unit_source_value", STR),
        ("value_source_value", STR),
    ],
    "death": [
        ("person_id", "int64"),
        ("death_date", DATE),
        ("death_type_concept_id", "int64"),
        ("cause_concept_id", "int64"),
        ("cause_source_value", STR),
    ],
    "concept": [
        ("concept_id", "int64"),
        ("concept_name", STR),
        ("domain_id", STR),
        ("vocabulary_id", STR),
        ("concept_class_id", STR),
        ("standard_concept", STR),
        ("concept_code", STR),
    ],
}

#: primary key of each table (``death`` is keyed by person, as in OMOP).
PRIMARY_KEY = {
    "care_site": "care_site_id",
    "person": "person_id",
    "observation_period": "observation_period_id",
    "visit_occurrence": "visit_occurrence_id",
    "condition_occurrence": "condition_occurrence_id",
    "drug_exposure": "drug_exposure_id",
    "measurement": "measurement_id",
    "death": "person_id",
    "concept": "concept_id",
}

#: tables generated per patient (the others are fixed per cohort).
PATIENT_TABLES = [
    "person",
    "observation_period",
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "measurement",
    "death",
]
TABLES = ["care_site", *PATIENT_TABLES, "concept"]

# Type concepts and fixed concepts.
EHR = 32817  # "EHR" type concept
MALE, FEMALE = 8507, 8532
INPATIENT, OUTPATIENT, ER = 9201, 9202, 9203
VISIT_SOURCE = {INPATIENT: "IP", OUTPATIENT: "OP", ER: "ER"}
RACES = {8527: "White", 8516: "Black or African American", 8515: "Asian", 0: "Unknown"}
HOSPITAL = 8717  # place of service: inpatient hospital

# The date from which US claims and EHRs code diagnoses in ICD-10-CM.
ICD10_SWITCH = np.datetime64("2015-10-01", "s")

#: standard condition concepts, with the source codes each site may use.
#: name -> (standard concept id, concept name, [ICD-9-CM codes], [ICD-10-CM codes])
CONDITIONS = {
    "t2d": (201826, "Type 2 diabetes mellitus", ["250.00", "250.02"], ["E11.9", "E11.65"]),
    "htn": (320128, "Essential hypertension", ["401.9", "401.1"], ["I10", "I10"]),
    "ckd": (46271022, "Chronic kidney disease", ["585.9", "585.3"], ["N18.9", "N18.3"]),
    "hf": (316139, "Heart failure", ["428.0", "428.22"], ["I50.9", "I50.22"]),
}
#: sex-specific conditions used by the sex-implausible defect (code given to the other sex).
SEX_SPECIFIC = {
    # a female-only code, injected into male records
    "gdm": (4024659, "Gestational diabetes mellitus", ["648.83"], ["O24.419"], MALE),
    # a male-only code, injected into female records
    "bph": (198803, "Benign prostatic hyperplasia", ["600.00"], ["N40.0"], FEMALE),
}

#: measurement name -> (concept id, LOINC, name, unit concept, UCUM unit, range low, high)
MEASUREMENTS = {
    "hba1c": (3004410, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", 8554, "%", 4.0, 5.6),
    "glucose": (3037110, "1558-6", "Fasting glucose [Mass/volume] in Serum or Plasma",
                8840, "mg/dL", 70.0, 99.0),
    "creatinine": (3016723, "2160-0", "Creatinine [Mass/volume] in Serum or Plasma",
                   8840, "mg/dL", 0.6, 1.2),
    "ldl": (3028437, "13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
            8840, "mg/dL", 0.0, 100.0),
    "sbp": (3004249, "8480-6", "Systolic blood pressure", 8876, "mm[Hg]", 90.0, 120.0),
    "dbp": (3012888, "8462-4", "Diastolic blood pressure", 8876, "mm[Hg]", 60.0, 80.0),
    "bmi": (3038553, "39156-5", "Body mass index (BMI) [Ratio]", 9531, "kg/m2", 18.5, 25.0),
}
MEASUREMENT_ORDER = list(MEASUREMENTS)

#: alternative units seen in the wild, used by the unit mix-up defect:
#: measurement -> (unit concept, UCUM unit, factor from the standard unit)
ALT_UNITS = {
    "glucose": (8753, "mmol/L", 1.0 / 18.016),
    "creatinine": (8749, "umol/L", 88.42),
}

#: drug name -> (ingredient concept id, RxNorm code, ingredient name)
DRUGS = {
    "metformin": (1503297, "6809", "metformin"),
    "insulin": (1502905, "274783", "insulin glargine"),
    "statin": (1545958, "83367", "atorvastatin"),
    "acei": (1308216, "29046", "lisinopril"),
    "loop": (956874, "4603", "furosemide"),
}
DRUG_ORDER = list(DRUGS)

UNIT_CONCEPTS = {  # concept id -> (name, UCUM code)
    8554: ("percent", "%"), 8840: ("milligram per deciliter", "mg/dL"),
    8753: ("millimole per liter", "mmol/L"), 8749: ("micromole per liter", "umol/L"),
    8876: ("millimeter mercury column", "mm[Hg]"), 9531: ("kilogram per square meter", "kg/m2"),
}
SNOMED_CODES = {201826: "44054006", 320128: "59621000", 46271022: "709044004",
                316139: "84114007", 4024659: "11687002", 198803: "266569009"}

LOCAL_CONCEPT_BASE = 2_000_000_000


def _source_codes() -> list[tuple[str, str, str]]:
    """(vocabulary, code, name) of every source code the generator can emit, in a fixed order."""
    out = []
    for _, name, icd9, icd10 in CONDITIONS.values():
        out += [("ICD9CM", c, name) for c in dict.fromkeys(icd9)]
        out += [("ICD10CM", c, name) for c in dict.fromkeys(icd10)]
    for _, name, icd9, icd10, _ in SEX_SPECIFIC.values():
        out += [("ICD9CM", c, name) for c in icd9] + [("ICD10CM", c, name) for c in icd10]
    return out


#: (vocabulary, code) -> local source concept id
SOURCE_CONCEPT_ID = {
    (vocab, code): LOCAL_CONCEPT_BASE + i for i, (vocab, code, _) in enumerate(_source_codes())
}


def source_concept(code: str) -> int:
    """Local source concept id of an ICD code (ICD-9-CM codes are numeric, ICD-10-CM are not)."""
    vocab = "ICD9CM" if code[0].isdigit() else "ICD10CM"
    return SOURCE_CONCEPT_ID.get((vocab, code), 0)


def concept_table() -> pd.DataFrame:
    """The cohort's small ``concept`` table: every concept id the generator emits."""
    rows: list[tuple] = [
        (MALE, "MALE", "Gender", "Gender", "Gender", "S", "M"),
        (FEMALE, "FEMALE", "Gender", "Gender", "Gender", "S", "F"),
        (INPATIENT, "Inpatient Visit", "Visit", "Visit", "Visit", "S", "IP"),
        (OUTPATIENT, "Outpatient Visit", "Visit", "Visit", "Visit", "S", "OP"),
        (ER, "Emergency Room Visit", "Visit", "Visit", "Visit", "S", "ER"),
        (EHR, "EHR", "Type Concept", "Type Concept", "Type Concept", "S", "OMOP4976890"),
        (HOSPITAL, "Inpatient Hospital", "Visit", "CMS Place of Service", "Place of Service",
         "S", "21"),
    ]
    rows += [(cid, name, "Race", "Race", "Race", "S", name) for cid, name in RACES.items() if cid]
    for cid, name, *_ in [*CONDITIONS.values(), *SEX_SPECIFIC.values()]:
        rows.append((cid, name, "Condition", "SNOMED", "Clinical Finding", "S",
                     SNOMED_CODES[cid]))
    for cid, loinc, name, *_ in MEASUREMENTS.values():
        rows.append((cid, name, "Measurement", "LOINC", "Lab Test", "S", loinc))
    for cid, rxnorm, name in DRUGS.values():
        rows.append((cid, name, "Drug", "RxNorm", "Ingredient", "S", rxnorm))
    for cid, (name, ucum) in UNIT_CONCEPTS.items():
        rows.append((cid, name, "Unit", "UCUM", "Unit", "S", ucum))
    for vocab, code, name in _source_codes():
        # source (non-standard) concepts have no standard_concept flag: null in OMOP
        rows.append((SOURCE_CONCEPT_ID[(vocab, code)], name, "Condition", vocab,
                     "ICD code", None, code))
    df = pd.DataFrame(rows, columns=[c for c, _ in SCHEMA["concept"]])
    df = df.drop_duplicates("concept_id").sort_values("concept_id", ignore_index=True)
    return conform(df, "concept")


def conform(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Return ``df`` with exactly the columns and dtypes of ``SCHEMA[table]``, in order."""
    cols = SCHEMA[table]
    names = [c for c, _ in cols]
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ValueError(f"table {table!r} is missing columns {missing}")
    if (list(df.columns) == names and [str(t) for t in df.dtypes] == [d for _, d in cols]
            and isinstance(df.index, pd.RangeIndex) and df.index.start == 0
            and df.index.step == 1):
        return df  # already conforming: no copy
    out = {}
    for col, dtype in cols:
        s = df[col]
        if str(s.dtype) != dtype:
            s = pd.to_datetime(s).astype(DATE) if dtype == DATE else s.astype(dtype)
        out[col] = s.to_numpy() if isinstance(s.dtype, np.dtype) else s.array
    return pd.DataFrame(out, index=pd.RangeIndex(len(df)), copy=False)
