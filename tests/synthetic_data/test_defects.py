"""Every defect is logged, and undoing the log gives back the clean tables exactly."""

import numpy as np
import pandas as pd
import pytest

from synthetic_data import make_cohort, omop, repair
from synthetic_data.defects import DEFAULT_RATES, KINDS, ROW_INSERTED


def assert_repairs_to_truth(c):
    fixed = repair(c.tables, c.defects)
    for table, clean in c.truth.tables.items():
        key = omop.PRIMARY_KEY[table]
        expected = clean.sort_values(key, kind="stable", ignore_index=True)
        pd.testing.assert_frame_equal(fixed[table], expected, check_exact=True, obj=table)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_logged_and_reversible(kind):
    # high rates so every kind fires on a small cohort
    rate = min(1.0, DEFAULT_RATES[kind] * 10)
    c = make_cohort(1500, defects={kind: rate}, random_state=7)
    assert len(c.defects) > 0, f"{kind} injected nothing"
    assert set(c.defects["kind"]) == {kind}
    # the dirty tables really differ from truth
    changed = any(not c.tables[t].equals(c.truth.tables[t]) for t in c.tables)
    assert changed
    assert_repairs_to_truth(c)


def test_default_defects_all_fire_and_reverse(cohort):
    assert set(cohort.defects["kind"]) == set(KINDS) - {"censored_value"} or \
        set(cohort.defects["kind"]) == set(KINDS)
    assert_repairs_to_truth(cohort)


def test_no_defects_means_tables_equal_truth():
    c = make_cohort(800, defects=None, random_state=1)
    assert len(c.defects) == 0
    for t in c.tables:
        pd.testing.assert_frame_equal(c.tables[t], c.truth.tables[t])


def test_log_rows_describe_the_cells(cohort):
    log = cohort.defects
    m = cohort.tables["measurement"].set_index("measurement_id")
    unit = log[(log["kind"] == "unit_mixup") & (log["column"] == "unit_source_value")]
    assert set(unit["injected_value"]) <= {"mmol/L", "umol/L"}
    # the injected values are what the tables now hold (unless a later kind changed the cell)
    last = log.sort_values("step").drop_duplicates(["table", "row_key", "column"], keep="last")
    last = last[(last["table"] == "measurement") & (last["column"] == "unit_source_value")]
    held = m.loc[last["row_key"], "unit_source_value"].to_numpy()
    assert (held == last["injected_value"].to_numpy()).all()
    inserted = log[log["column"] == ROW_INSERTED]
    assert inserted["original_value"].isna().all()
    assert set(inserted["kind"]) <= {"duplicate_row", "duplicate_patient"}


def test_unit_mixups_cluster_at_riverside(cohort):
    log = cohort.defects
    rows = log[(log["kind"] == "unit_mixup") & (log["column"] == "unit_concept_id")]
    m = cohort.tables["measurement"].set_index("measurement_id")
    persons = cohort.tables["person"].set_index("person_id")["care_site_id"]
    site = persons.loc[m.loc[rows["row_key"], "person_id"]].value_counts()
    assert site.idxmax() == 2  # Riverside Community Hospital reports SI units
    assert site[2] > 3 * site.drop(2).max()


def test_icd_code_system_switch_date(cohort):
    cond = cohort.truth.tables["condition_occurrence"]
    icd9 = cond["condition_source_value"].str.match(r"^\d")
    before = cond["condition_start_date"] < np.datetime64("2015-10-01")
    assert (icd9 == before).all(), "truth: ICD-9 exactly before 2015-10-01, ICD-10 after"
    assert before.any() and (~before).any()
    dirty = cohort.tables["condition_occurrence"]
    wrong = dirty["condition_source_value"].str.match(r"^\d") & (
        dirty["condition_start_date"] >= np.datetime64("2015-10-01"))
    drift = cohort.defects.query("kind == 'icd_drift' and column == 'condition_source_value'")
    # every ICD-9 code after the switch in the dirty table is a logged drift (or a date shift
    # that moved a row across the switch date)
    shifted = set(cohort.defects.query("kind == 'date_shift'")["row_key"])
    copies = set(cohort.defects.query("column == '*'")["row_key"])  # copies of drifted rows
    unexplained = set(dirty.loc[wrong, "condition_occurrence_id"]) - set(drift["row_key"]) \
        - shifted - copies
    assert not unexplained
    assert len(drift) > 0


def test_duplicate_patients_share_identity_across_sites(cohort):
    log = cohort.defects
    new_ids = log.query("kind == 'duplicate_patient' and table == 'person'")["row_key"]
    p = cohort.tables["person"].set_index("person_id")
    dups = p.loc[new_ids]
    originals = p.drop(new_ids.to_numpy())
    merged = dups.reset_index().merge(
        originals.reset_index(), on=["birth_datetime", "gender_concept_id"],
        suffixes=("_dup", "_orig"))
    # each duplicate matches an original with the same birth date and sex at another site
    assert merged["person_id_dup"].nunique() == len(dups)
    assert (merged.groupby("person_id_dup").apply(
        lambda g: (g["care_site_id_dup"] != g["care_site_id_orig"]).any())).all()
