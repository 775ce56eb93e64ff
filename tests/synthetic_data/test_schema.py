"""The tables have OMOP CDM 5.4 column names and explicit, stable dtypes."""

import numpy as np
import pandas as pd
import pytest

from synthetic_data import omop

# Written out from the OMOP CDM 5.4 specification, independently of omop.SCHEMA, so a typo
# in the schema is caught here.
OMOP_54_COLUMNS = {
    "person": {"person_id", "gender_concept_id", "year_of_birth", "month_of_birth",
               "day_of_birth", "birth_datetime", "race_concept_id", "ethnicity_concept_id",
               "location_id", "provider_id", "care_site_id", "person_source_value",
               "gender_source_value", "gender_source_concept_id", "race_source_value",
               "race_source_concept_id", "ethnicity_source_value",
               "ethnicity_source_concept_id"},
    "observation_period": {"observation_period_id", "person_id",
                           "observation_period_start_date", "observation_period_end_date",
                           "period_type_concept_id"},
    "visit_occurrence": {"visit_occurrence_id", "person_id", "visit_concept_id",
                         "visit_start_date", "visit_start_datetime", "visit_end_date",
                         "visit_end_datetime", "visit_type_concept_id", "provider_id",
                         "care_site_id", "visit_source_value", "visit_source_concept_id",
                         "admitted_from_concept_id", "admitted_from_source_value",
                         "discharged_to_concept_id", "discharged_to_source_value",
                         "preceding_visit_occurrence_id"},
    "condition_occurrence": {"condition_occurrence_id", "person_id", "condition_concept_id",
                             "condition_start_date", "condition_start_datetime",
                             "condition_end_date", "condition_end_datetime",
                             "condition_type_concept_id", "condition_status_concept_id",
                             "stop_reason", "provider_id", "visit_occurrence_id",
                             "visit_detail_id", "condition_source_value",
                             "condition_source_concept_id", "condition_status_source_value"},
    "drug_exposure": {"drug_exposure_id", "person_id", "drug_concept_id",
                      "drug_exposure_start_date", "drug_exposure_start_datetime",
                      "drug_exposure_end_date", "drug_exposure_end_datetime",
                      "verbatim_end_date", "drug_type_concept_id", "stop_reason", "refills",
                      "quantity", "days_supply", "sig", "route_concept_id", "lot_number",
                      "provider_id", "visit_occurrence_id", "visit_detail_id",
                      "drug_source_value", "drug_source_concept_id", "route_source_value",
                      "dose_unit_source_value"},
    "measurement": {"measurement_id", "person_id", "measurement_concept_id",
                    "measurement_date", "measurement_datetime", "measurement_time",
                    "measurement_type_concept_id", "operator_concept_id", "value_as_number",
                    "value_as_concept_id", "unit_concept_id", "range_low", "range_high",
                    "provider_id", "visit_occurrence_id", "visit_detail_id",
                    "measurement_source_value", "measurement_source_concept_id",
                    "unit_source_value", "unit_source_concept_id", "value_source_value",
                    "measurement_event_id", "meas_event_field_concept_id"},
    "death": {"person_id", "death_date", "death_datetime", "death_type_concept_id",
              "cause_concept_id", "cause_source_value", "cause_source_concept_id"},
    "care_site": {"care_site_id", "care_site_name", "place_of_service_concept_id",
                  "location_id", "care_site_source_value", "place_of_service_source_value"},
    "concept": {"concept_id", "concept_name", "domain_id", "vocabulary_id",
                "concept_class_id", "standard_concept", "concept_code", "valid_start_date",
                "valid_end_date", "invalid_reason"},
}
REQUIRED = {  # columns OMOP marks required, which we must therefore have
    "person": {"person_id", "gender_concept_id", "year_of_birth", "race_concept_id",
               "ethnicity_concept_id"},
    "visit_occurrence": {"visit_occurrence_id", "person_id", "visit_concept_id",
                         "visit_start_date", "visit_end_date", "visit_type_concept_id"},
    "measurement": {"measurement_id", "person_id", "measurement_concept_id",
                    "measurement_date", "measurement_type_concept_id"},
}


@pytest.mark.parametrize("table", sorted(OMOP_54_COLUMNS))
def test_columns_are_omop_54(cohort, table):
    df = cohort.tables[table]
    assert set(df.columns) <= OMOP_54_COLUMNS[table], set(df.columns) - OMOP_54_COLUMNS[table]
    assert REQUIRED.get(table, set()) <= set(df.columns)
    assert list(df.columns) == [c for c, _ in omop.SCHEMA[table]]


@pytest.mark.parametrize("table", omop.TABLES)
def test_dtypes_are_explicit_and_same_in_truth(cohort, table):
    expected = [d for _, d in omop.SCHEMA[table]]
    assert [str(t) for t in cohort.tables[table].dtypes] == expected
    assert [str(t) for t in cohort.truth.tables[table].dtypes] == expected


def test_primary_keys_unique_and_foreign_keys_resolve_in_truth(cohort):
    t = cohort.truth.tables
    for table, key in omop.PRIMARY_KEY.items():
        assert t[table][key].is_unique, table
    visits = set(t["visit_occurrence"]["visit_occurrence_id"])
    persons = set(t["person"]["person_id"])
    for table in ("condition_occurrence", "drug_exposure", "measurement"):
        assert set(t[table]["visit_occurrence_id"]) <= visits, table
        assert set(t[table]["person_id"]) <= persons, table
    concepts = set(t["concept"]["concept_id"])
    assert set(t["measurement"]["measurement_concept_id"]) <= concepts
    assert set(t["condition_occurrence"]["condition_concept_id"]) <= concepts
    assert set(t["drug_exposure"]["drug_concept_id"]) <= concepts
    assert set(t["measurement"]["unit_concept_id"]) <= concepts


def test_truth_is_temporally_consistent(cohort):
    t = cohort.truth.tables
    v = t["visit_occurrence"].merge(t["observation_period"], on="person_id")
    assert (v["visit_start_date"] >= v["observation_period_start_date"]).all()
    assert (v["visit_end_date"] <= v["observation_period_end_date"]).all()
    assert (v["visit_end_date"] >= v["visit_start_date"]).all()
    d = t["visit_occurrence"].merge(t["death"], on="person_id")
    assert (d["visit_start_date"] <= d["death_date"]).all()
    p = t["person"]
    assert (p["year_of_birth"] == p["birth_datetime"].dt.year).all()
    assert (p["month_of_birth"] == p["birth_datetime"].dt.month).all()


def test_real_codes_and_units(cohort):
    m = cohort.truth.tables["measurement"]
    loinc = dict(zip(m["measurement_concept_id"], m["measurement_source_value"], strict=False))
    assert loinc[3004410] == "4548-4" and loinc[3037110] == "1558-6"
    units = m.groupby("measurement_source_value")["unit_source_value"].unique()
    assert list(units["1558-6"]) == ["mg/dL"] and list(units["4548-4"]) == ["%"]
    hba1c = m.loc[m["measurement_concept_id"] == 3004410, "value_as_number"]
    assert 4.0 < hba1c.median() < 8.0
    drugs = set(cohort.truth.tables["drug_exposure"]["drug_source_value"])
    assert {"6809", "83367", "29046"} <= drugs  # RxNorm: metformin, atorvastatin, lisinopril


def test_sites_differ_in_case_mix(big_clean):
    lat = big_clean.truth.latent
    by_site = lat.groupby("care_site_id")[["age_at_start", "t2d"]].mean()
    assert by_site["age_at_start"].max() - by_site["age_at_start"].min() > 5
    assert len(by_site) == 3
    assert np.isfinite(by_site.to_numpy()).all()


def test_strings_are_pandas_str_dtype(cohort):
    s = cohort.person["person_source_value"]
    assert isinstance(s.dtype, pd.StringDtype)
    assert s.str.match(r"^[A-Z]{2}-\d{8}$").all()
