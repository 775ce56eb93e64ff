"""``make_cohort``: the public generator, in the style of scikit-learn's ``make_*``.

Patients are generated in fixed chunks of :data:`CHUNK_PATIENTS`; chunk ``c`` draws from the
``c``-th child of the seed's ``SeedSequence`` and owns its own block of ids, so a chunk's
content does not depend on how many chunks there are, in what order they run, or on how many
worker processes run them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synthetic_data import defects as _defects
from synthetic_data import disease, omop, population
from synthetic_data.encounters import build_records

__all__ = ["Cohort", "Truth", "make_cohort", "cohort_for", "resident_seed"]

GENERATOR_VERSION = "1.0.0"
CHUNK_PATIENTS = 10_000
PERSON_BLOCK = 1_000_000  # person ids of chunk c are c * PERSON_BLOCK + 1, ...
EVENT_BLOCK = 1_000_000_000  # event ids of chunk c are c * EVENT_BLOCK + 1, ...
MAX_PATIENTS = 50_000_000
DEFAULT_START, DEFAULT_END = "2012-01-01", "2022-12-31"
DEFAULT_COURSE_SALT = "drylab"
LATENT_BOOL_COLUMNS = ("female", "smoking", "t2d", "htn", "ckd", "hf", "metformin", "insulin",
                       "statin", "acei", "loop_diuretic", "died", "admitted", "readmit_365")

EVENT_ID_COLUMNS = {
    "observation_period": ["observation_period_id"],
    "visit_occurrence": ["visit_occurrence_id"],
    "condition_occurrence": ["condition_occurrence_id", "visit_occurrence_id"],
    "drug_exposure": ["drug_exposure_id", "visit_occurrence_id"],
    "measurement": ["measurement_id", "visit_occurrence_id"],
}


@dataclass(frozen=True)
class Truth:
    """The clean side of a cohort, for instructors and tests.

    Attributes
    ----------
    tables : dict of DataFrame
        The OMOP tables before any defect was injected.
    latent : DataFrame
        One row per original patient: the causal model's hidden state (risk factors,
        true disease status, treatment, outcomes such as ``readmit_365``).
    parameters : dict
        Every model parameter (population, disease, defects).
    """

    tables: dict[str, pd.DataFrame]
    latent: pd.DataFrame
    parameters: dict


@dataclass(frozen=True)
class Cohort:
    """A synthetic OMOP cohort: ``tables`` (with defects), ``truth``, ``defects``, ``manifest``.

    Tables are also attributes: ``cohort.person`` is ``cohort.tables["person"]``.
    """

    tables: dict[str, pd.DataFrame]
    truth: Truth
    defects: pd.DataFrame
    manifest: dict = field(repr=False)

    def __getattr__(self, name: str) -> pd.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(f"Cohort has no attribute or table {name!r}; tables: {list(tables)}")

    def __repr__(self) -> str:
        counts = ", ".join(f"{t}={len(df):,}" for t, df in self.tables.items())
        return f"Cohort(seed={self.manifest['seed']}, {counts}, defects={len(self.defects):,})"

    def save(self, path, format: str = "parquet") -> None:
        """Write the cohort to the directory ``path`` (see :func:`synthetic_data.io.save`)."""
        from synthetic_data.io import save

        save(self, path, format=format)

    def summary(self) -> pd.DataFrame:
        """Rows per table, clean and with defects, and defects logged per table."""
        logged = self.defects.groupby("table").size()
        return pd.DataFrame({
            "rows": {t: len(df) for t, df in self.tables.items()},
            "clean_rows": {t: len(df) for t, df in self.truth.tables.items()},
            "defect_cells": {t: int(logged.get(t, 0)) for t in self.tables},
        })


# ---- parameters -------------------------------------------------------------------------

def check_spec(n_patients, sites, start, end, defects) -> dict:
    """Validate ``make_cohort``'s parameters; return the normalised spec."""
    if isinstance(n_patients, bool) or not isinstance(n_patients, (int, np.integer)):
        raise ValueError(f"n_patients must be an integer >= 1; got {n_patients!r}")
    if not 1 <= n_patients <= MAX_PATIENTS:
        raise ValueError(f"n_patients must be between 1 and {MAX_PATIENTS:,}; got {n_patients}")
    if isinstance(sites, bool) or not isinstance(sites, (int, np.integer)) \
            or not 1 <= sites <= population.MAX_SITES:
        raise ValueError(f"sites must be an integer from 1 to {population.MAX_SITES}; "
                         f"got {sites!r}")
    try:
        s, e = np.datetime64(str(start), "D"), np.datetime64(str(end), "D")
    except ValueError as exc:
        raise ValueError(f"start and end must be ISO dates like '2012-01-01'; got "
                         f"start={start!r}, end={end!r}") from exc
    if (e - s).astype(int) < 365:
        raise ValueError(f"end must be at least one year after start; got start={s}, end={e}")
    return {
        "n_patients": int(n_patients), "sites": int(sites), "start": str(s), "end": str(e),
        "defects": _defects.resolve_rates(defects),
    }


def _entropy(random_state) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer; got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63))
    raise ValueError("random_state must be None, a non-negative int or a numpy Generator; "
                     f"got {type(random_state).__name__}")


# ---- one chunk ----------------------------------------------------------------------------

@dataclass
class Chunk:
    index: int
    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]
    defects: pd.DataFrame
    latent: pd.DataFrame


def n_chunks(n_patients: int) -> int:
    return -(-n_patients // CHUNK_PATIENTS)


def generate_chunk(spec: dict, entropy: int, index: int) -> Chunk:
    """Generate chunk ``index`` of the cohort described by ``spec`` and ``entropy``."""
    n = min(CHUNK_PATIENTS, spec["n_patients"] - index * CHUNK_PATIENTS)
    seed = np.random.SeedSequence(entropy, spawn_key=(index,))
    s_pop, s_rec, s_def = seed.spawn(3)
    start, end = np.datetime64(spec["start"], "s"), np.datetime64(spec["end"], "s")

    rng = np.random.default_rng(s_pop)
    lat = population.draw_population(rng, n, spec["sites"], start)
    lat = disease.draw_disease(rng, lat)
    lat["n_sites"] = spec["sites"]
    person_base = index * PERSON_BLOCK + 1
    person_id = np.arange(n, dtype="int64") + person_base
    raw = build_records(np.random.default_rng(s_rec), lat, person_id, start, end)

    id_base = index * EVENT_BLOCK + 1
    clean = {}
    for table, df in raw.items():
        for col in EVENT_ID_COLUMNS.get(table, []):
            df[col] = df[col] + id_base
        clean[table] = omop.conform(df, table)
    dirty, log = _defects.inject(clean, lat, s_def, spec["defects"],
                                 id_base=id_base, person_base=person_base)
    dirty = {t: omop.conform(df, t) for t, df in dirty.items()}
    log["defect_id"] = log["defect_id"] + id_base
    return Chunk(index, dirty, clean, log, _latent_frame(lat, person_id))


def _latent_frame(lat: dict, person_id: np.ndarray) -> pd.DataFrame:
    def date(days):
        d = np.asarray(days)
        out = d.astype("datetime64[D]").astype(omop.DATE)
        return pd.Series(out).where(d >= 0)

    cols = {
        "person_id": person_id,
        "care_site_id": (lat["site"] + 1).astype("int64"),
        "female": lat["female"],
        "age_at_start": np.round(lat["age"], 2),
        "bmi": np.round(lat["bmi"], 2),
        "smoking": lat["smoking"],
    }
    for k in ("t2d", "htn", "ckd", "hf"):
        cols[k] = lat[k]
        cols[f"{k}_diagnosis_date"] = date(lat[f"{k}_diagnosis_day"])
    cols.update({
        "hba1c_mean": np.round(lat["hba1c"], 3),
        "creatinine_mean": np.round(lat["creatinine"], 3),
        "ldl_mean": np.round(lat["ldl"], 1),
        "sbp_mean": np.round(lat["sbp"], 1),
        "metformin": lat["metformin"], "insulin": lat["insulin"], "statin": lat["statin"],
        "acei": lat["acei"], "loop_diuretic": lat["loop"],
        "observation_start": date(lat["obs_start"]),
        "observation_end": date(lat["obs_end"]),
        "died": lat["died"],
        "death_date": date(lat["death_day"]),
        "admitted": lat["admitted"],
        "index_admission_date": date(lat["index_admission_day"]),
        "index_discharge_date": date(lat["index_discharge_day"]),
        "readmit_365": lat["readmit_365"],
    })
    df = pd.DataFrame(cols)
    return df.astype({c: "bool" for c in LATENT_BOOL_COLUMNS})


# ---- the whole cohort ----------------------------------------------------------------------

def concat_chunks(chunks: list[Chunk]) -> tuple[dict, dict, pd.DataFrame, pd.DataFrame]:
    tables = {t: pd.concat([c.tables[t] for c in chunks], ignore_index=True)
              for t in omop.PATIENT_TABLES}
    truth = {t: pd.concat([c.truth[t] for c in chunks], ignore_index=True)
             for t in omop.PATIENT_TABLES}
    log = pd.concat([c.defects for c in chunks], ignore_index=True)
    latent = pd.concat([c.latent for c in chunks], ignore_index=True)
    return tables, truth, log, latent


def fixed_tables(spec: dict) -> dict[str, pd.DataFrame]:
    return {"care_site": population.care_site_table(spec["sites"]),
            "concept": omop.concept_table()}


def all_parameters(spec: dict) -> dict:
    return {
        "population": population.PARAMETERS,
        "sites": [dict(zip(["name", "code", "share", "age_shift", "bmi_shift",
                            "diabetes_logit_shift", "race_mix"], s, strict=True))
                  for s in population.SITES[:spec["sites"]]],
        "disease": disease.parameters(),
        "defects": {"rates": spec["defects"], "site_multiplier": _defects.SITE_MULTIPLIER},
    }


def table_checksum(df: pd.DataFrame) -> str:
    """SHA-256 of a table's content (values and dtypes, not the file format)."""
    h = hashlib.sha256()
    h.update(json.dumps([(c, str(t)) for c, t in df.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def build_manifest(spec: dict, entropy: int, tables: dict, defects: pd.DataFrame) -> dict:
    return {
        "generator": "synthetic_data",
        "version": GENERATOR_VERSION,
        "seed": entropy,
        "spec": spec,
        "chunk_patients": CHUNK_PATIENTS,
        "counts": {t: len(df) for t, df in tables.items()},
        "defect_counts": {k: int(v) for k, v in
                          defects.drop_duplicates(["kind", "table", "row_key"])
                          .groupby("kind").size().items()},
        "checksums": {t: table_checksum(df) for t, df in tables.items()},
    }


def make_cohort(n_patients: int = 5000, *, sites: int = 3, start: str = DEFAULT_START,
                end: str = DEFAULT_END, defects: str | dict | None = "default",
                random_state: int | np.random.Generator | None = None) -> Cohort:
    """Generate a synthetic, OMOP-shaped, multi-site EHR cohort.

    Parameters
    ----------
    n_patients : int, default=5000
        Number of patients (before duplicate-patient defects add copies).
    sites : int, default=3
        Number of care sites (hospitals), 1 to 8; they differ in case mix and coding habits.
    start, end : str, default="2012-01-01", "2022-12-31"
        The calendar window of observation (ISO dates). The default spans the ICD-9 ->
        ICD-10-CM switch of 2015-10-01.
    defects : "default", dict or None, default="default"
        Defect rates: ``"default"`` (see ``synthetic_data.defects.DEFAULT_RATES``), a dict
        ``{kind: rate}`` (kinds not named are off), or ``None`` for clean data.
    random_state : int, numpy Generator or None, default=None
        Seed. The same seed and package versions give identical tables.

    Returns
    -------
    Cohort
        ``tables`` (dict of DataFrames, OMOP CDM 5.4 columns), ``truth`` (clean tables, latent
        patient state and model parameters), ``defects`` (one row per injected defect cell
        or row) and ``manifest`` (version, seed, spec, counts, checksums).

    Examples
    --------
    >>> from synthetic_data import make_cohort
    >>> cohort = make_cohort(1000, random_state=0)
    >>> cohort.person.shape[1]
    13
    """
    spec = check_spec(n_patients, sites, start, end, defects)
    entropy = _entropy(random_state)
    chunks = [generate_chunk(spec, entropy, i) for i in range(n_chunks(spec["n_patients"]))]
    tables, truth, log, latent = concat_chunks(chunks)
    fixed = fixed_tables(spec)
    tables = {"care_site": fixed["care_site"], **tables, "concept": fixed["concept"]}
    truth = {"care_site": fixed["care_site"], **truth, "concept": fixed["concept"]}
    return Cohort(
        tables=tables,
        truth=Truth(tables=truth, latent=latent, parameters=all_parameters(spec)),
        defects=log,
        manifest=build_manifest(spec, entropy, tables, log),
    )


def resident_seed(resident_id: str, course_salt: str | None = None) -> int:
    """The cohort seed of one resident: SHA-256 of (course salt, resident id), 63 bits.

    ``course_salt`` defaults to the ``DRYLAB_COURSE_SALT`` environment variable, else
    ``"drylab"``. A programme sets its own salt so seeds cannot be guessed across courses.
    """
    if not isinstance(resident_id, str) or not resident_id.strip():
        raise ValueError(f"resident_id must be a non-empty string; got {resident_id!r}")
    salt = course_salt if course_salt is not None else os.environ.get(
        "DRYLAB_COURSE_SALT", DEFAULT_COURSE_SALT)
    digest = hashlib.sha256(f"{salt}\x00{resident_id.strip()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def cohort_for(resident_id: str, course_salt: str | None = None, **kwargs) -> Cohort:
    """``make_cohort(**kwargs)`` seeded for one resident (see :func:`resident_seed`)."""
    return make_cohort(random_state=resident_seed(resident_id, course_salt), **kwargs)
