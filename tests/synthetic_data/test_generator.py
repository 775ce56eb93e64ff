"""API, determinism, I/O round trips and parameter errors."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthetic_data import cohort_for, load_cohort, make_cohort, resident_seed, write_cohort
from synthetic_data.cohort import CHUNK_PATIENTS


def tree_hash(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_content_different_seed_different():
    a, b = make_cohort(1200, random_state=5), make_cohort(1200, random_state=5)
    c = make_cohort(1200, random_state=6)
    assert a.manifest["checksums"] == b.manifest["checksums"]
    assert a.manifest["checksums"]["measurement"] != c.manifest["checksums"]["measurement"]


@pytest.mark.parametrize("format", ["parquet", "csv", "sqlite"])
def test_files_are_byte_identical_across_runs(tmp_path, format):
    write_cohort(tmp_path / "a", 900, random_state=3, format=format)
    write_cohort(tmp_path / "b", 900, random_state=3, format=format)
    ha, hb = tree_hash(tmp_path / "a"), tree_hash(tmp_path / "b")
    assert ha == hb and len(ha) >= 4


@pytest.mark.slow
def test_worker_count_does_not_change_bytes(tmp_path):
    n = CHUNK_PATIENTS + 700  # two chunks
    write_cohort(tmp_path / "one", n, random_state=9, workers=1)
    write_cohort(tmp_path / "two", n, random_state=9, workers=2)
    assert tree_hash(tmp_path / "one") == tree_hash(tmp_path / "two")
    # streaming to disk and building in memory give the same tables
    mem = make_cohort(n, random_state=9)
    disk = load_cohort(tmp_path / "one")
    for t in mem.tables:
        pd.testing.assert_frame_equal(disk.tables[t], mem.tables[t], obj=t)
    pd.testing.assert_frame_equal(disk.defects, mem.defects)


@pytest.mark.parametrize("format", ["parquet", "csv", "sqlite"])
def test_load_cohort_round_trip(tmp_path, format):
    c = make_cohort(700, random_state=4)
    c.save(tmp_path / "c", format=format)
    back = load_cohort(tmp_path / "c")
    for t in c.tables:
        pd.testing.assert_frame_equal(back.tables[t], c.tables[t], obj=t)
        pd.testing.assert_frame_equal(back.truth.tables[t], c.truth.tables[t], obj=t)
    pd.testing.assert_frame_equal(back.defects, c.defects)
    pd.testing.assert_frame_equal(back.truth.latent, c.truth.latent)
    assert back.manifest["seed"] == 4


def test_duckdb_reads_parquet_and_csv(tmp_path):
    import duckdb

    c = make_cohort(500, random_state=2)
    c.save(tmp_path / "pq")
    c.save(tmp_path / "csv", format="csv")
    for path in (tmp_path / "pq" / "measurement" / "*.parquet",
                 tmp_path / "csv" / "measurement.csv"):
        n = duckdb.sql(f"select count(*) from '{path}'").fetchall()[0][0]
        assert n == len(c.measurement)
    avg = duckdb.sql(f"select avg(value_as_number) from '{tmp_path}/pq/measurement/*.parquet'"
                     " where measurement_concept_id = 3004410").fetchall()[0][0]
    expected = c.measurement.loc[c.measurement.measurement_concept_id == 3004410,
                                 "value_as_number"].mean()
    assert avg == pytest.approx(expected)


def test_resident_cohorts_differ_and_are_stable():
    assert resident_seed("alice") == resident_seed("alice")
    assert resident_seed("alice") != resident_seed("bob")
    assert resident_seed("alice", "course-a") != resident_seed("alice", "course-b")
    a1, a2 = cohort_for("alice", n_patients=400), cohort_for("alice", n_patients=400)
    b = cohort_for("bob", n_patients=400)
    assert a1.manifest["checksums"] == a2.manifest["checksums"]
    assert a1.manifest["checksums"]["person"] != b.manifest["checksums"]["person"]


@pytest.mark.parametrize("kwargs, needle", [
    ({"n_patients": 0}, "n_patients"),
    ({"n_patients": 2.5}, "n_patients"),
    ({"sites": 0}, "sites must be an integer from 1 to 8"),
    ({"sites": 99}, "sites"),
    ({"start": "2020-01-01", "end": "2020-03-01"}, "end must be at least one year"),
    ({"start": "yesterday"}, "ISO dates"),
    ({"defects": "lots"}, "defects must be 'default'"),
    ({"defects": {"typo_kind": 0.1}}, "unknown kind(s) ['typo_kind']"),
    ({"defects": {"unit_mixup": 2}}, "rate in [0, 1]"),
    ({"random_state": -1}, "random_state"),
    ({"random_state": "seed"}, "random_state"),
])
def test_bad_parameters_name_the_parameter(kwargs, needle):
    with pytest.raises(ValueError) as e:
        make_cohort(**({"n_patients": 100} | kwargs))
    assert needle in str(e.value)


def test_bad_format_and_missing_directory(tmp_path):
    with pytest.raises(ValueError, match=r"format must be one of \['parquet', 'csv', 'sqlite'\]"):
        write_cohort(tmp_path / "x", 100, format="xlsx")
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        load_cohort(tmp_path / "nowhere")


def test_single_site_has_no_cross_site_duplicates():
    c = make_cohort(600, sites=1, random_state=1)
    assert (c.person["care_site_id"] == 1).all()
    assert "duplicate_patient" not in set(c.defects["kind"])


def test_cli_cohort(tmp_path):
    from drylab.cli import main

    assert main(["cohort", "--patients", "300", "--seed", "1", "--out", str(tmp_path / "c"),
                 "--format", "csv", "--quiet"]) == 0
    back = load_cohort(tmp_path / "c")
    assert back.manifest["spec"]["n_patients"] == 300
    assert main(["cohort", "--patients", "0", "--out", str(tmp_path / "d"), "--quiet"]) == 2
    assert np.isin(back.person["care_site_id"], [1, 2, 3]).all()
