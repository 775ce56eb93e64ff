"""From latent patients to OMOP records: observation periods, visits, diagnoses, labs, drugs.

Everything is vectorised over all patients of a chunk; dates are handled as integer days since
1970-01-01 and turned into ``datetime64[s]`` at the end. Ids are local (0-based row numbers);
``cohort.py`` offsets them into the cohort's id space.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthetic_data import omop
from synthetic_data.disease import PHYSIOLOGY, PREVALENT_AT_ENTRY, SITE_CODING_SPECIFICITY
from synthetic_data.population import SITES

ICD10_SWITCH_DAY = int(omop.ICD10_SWITCH.astype("datetime64[D]").astype("int64"))

VISIT_RATES = {  # per year of observation
    "outpatient": {"base": 0.45, "per_condition": 0.3, "over_65": 0.2},
    "emergency": {"base": 0.04, "hf": 0.08, "ckd": 0.04},
}
#: probability that a visit records a diagnosis the patient already has (first one always)
RECORD_DIAGNOSIS = {omop.OUTPATIENT: 0.35, omop.ER: 0.35, omop.INPATIENT: 0.9}
#: probability that a visit of that type measures the lab, by state
LAB_PROBABILITY = {
    "sbp": {omop.OUTPATIENT: 0.75, omop.INPATIENT: 1.0, omop.ER: 0.9},
    "dbp": None,  # measured with sbp
    "bmi": {omop.OUTPATIENT: 0.4, omop.INPATIENT: 0.3, omop.ER: 0.0},
    "hba1c": {"diabetic": 0.7, "other": 0.1, omop.INPATIENT: 0.5, omop.ER: 0.0},
    "glucose": {"diabetic": 0.6, "other": 0.2, omop.INPATIENT: 0.9, omop.ER: 0.7},
    "creatinine": {"at_risk": 0.5, "other": 0.15, omop.INPATIENT: 0.95, omop.ER: 0.6},
    "ldl": {"statin": 0.4, "other": 0.2, omop.INPATIENT: 0.1, omop.ER: 0.0},
}
PRESCRIPTION = {  # days supply and units per day; refill probability at later visits
    "metformin": (90, 2.0), "insulin": (90, 1.0), "statin": (90, 1.0),
    "acei": (90, 1.0), "loop": (90, 1.0), "refill": 0.7,
}


def _days(d: np.datetime64) -> int:
    return int(np.datetime64(d, "D").astype("int64"))


def _to_date(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype(omop.DATE)


def _first_of_group(keys: np.ndarray) -> np.ndarray:
    """True where ``keys`` (sorted) starts a new run."""
    out = np.ones(len(keys), dtype=bool)
    out[1:] = keys[1:] != keys[:-1]
    return out


def _str_column(values: list[str], codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A pandas ``str`` column built by taking ``codes`` from a short list of strings.

    A code of -1 gives a missing value. Taking from a small Arrow-backed array is ~50x
    faster than building millions of Python strings one by one.
    """
    return pd.array(values, dtype=omop.STR).take(np.asarray(codes), allow_fill=True)


def build_records(rng: np.random.Generator, lat: dict[str, np.ndarray], person_id: np.ndarray,
                  start: np.datetime64, end: np.datetime64) -> dict[str, pd.DataFrame]:
    """Turn the latent state of ``len(person_id)`` patients into their OMOP tables.

    Adds the observation window and outcome dates to ``lat`` in place.
    """
    n = len(person_id)
    start_d, end_d = _days(start), _days(end)
    span = end_d - start_d

    # ---- observation period and death -------------------------------------------------
    obs_start = start_d + (rng.random(n) * 0.3 * span).astype("int64")
    death_day = obs_start + 90 + (rng.random(n) * (end_d - obs_start - 90)).astype("int64")
    died = lat["died"]
    obs_end = np.where(died, death_day, end_d)
    lat.update(obs_start=obs_start, obs_end=obs_end, death_day=np.where(died, death_day, -1))
    length = obs_end - obs_start

    # ---- visits -------------------------------------------------------------------------
    years = length / 365.25
    ncond = lat["t2d"].astype(int) + lat["htn"] + lat["ckd"] + lat["hf"]
    vr = VISIT_RATES
    n_op = 1 + rng.poisson(years * (vr["outpatient"]["base"] + vr["outpatient"]["per_condition"]
                                    * ncond + vr["outpatient"]["over_65"] * (lat["age"] > 65)))
    n_op = np.minimum(n_op, 80)
    n_er = rng.poisson(years * (vr["emergency"]["base"] + vr["emergency"]["hf"] * lat["hf"]
                                + vr["emergency"]["ckd"] * lat["ckd"]))
    admitted = lat["admitted"]
    adm_day = obs_start + (rng.random(n) * 0.8 * length).astype("int64")
    los = 1 + rng.poisson(3.0, n)
    readmit_day = adm_day + los + 3 + (rng.random(n) * 362).astype("int64")
    readmitted = admitted & lat["readmit_latent"] & (readmit_day <= obs_end)
    los2 = 1 + rng.poisson(4.0, n)
    lat.update(index_admission_day=np.where(admitted, adm_day, -1),
               index_discharge_day=np.where(admitted, np.minimum(adm_day + los, obs_end), -1),
               readmit_365=readmitted)

    op_p = np.repeat(np.arange(n), n_op)
    er_p = np.repeat(np.arange(n), n_er)
    ip_p = np.concatenate([np.flatnonzero(admitted), np.flatnonzero(readmitted)])
    v_person = np.concatenate([op_p, er_p, ip_p])
    v_type = np.concatenate([np.full(len(op_p), omop.OUTPATIENT), np.full(len(er_p), omop.ER),
                             np.full(len(ip_p), omop.INPATIENT)])
    rand_day = obs_start[v_person] + (rng.random(len(v_person)) * (length[v_person] + 1)
                                      ).astype("int64")
    ip_start = np.concatenate([adm_day[admitted], readmit_day[readmitted]])
    ip_len = np.concatenate([los[admitted], los2[readmitted]])
    v_start = rand_day.copy()
    v_start[len(op_p) + len(er_p):] = ip_start
    v_end = v_start.copy()
    v_end[len(op_p) + len(er_p):] = ip_start + ip_len
    v_end = np.minimum(v_end, obs_end[v_person])
    order = np.lexsort((v_type, v_start, v_person))
    v_person, v_type, v_start, v_end = (a[order] for a in (v_person, v_type, v_start, v_end))
    n_v = len(v_person)
    v_site = lat["site"][v_person]

    visit = pd.DataFrame({
        "visit_occurrence_id": np.arange(n_v, dtype="int64"),
        "person_id": person_id[v_person],
        "visit_concept_id": v_type.astype("int64"),
        "visit_start_date": _to_date(v_start),
        "visit_end_date": _to_date(v_end),
        "visit_type_concept_id": omop.EHR,
        "care_site_id": (v_site + 1).astype("int64"),
        "visit_source_value": _str_column(
            ["IP", "OP", "ER"], np.searchsorted([omop.INPATIENT, omop.OUTPATIENT, omop.ER],
                                                v_type)),
    })

    # ---- diagnoses ----------------------------------------------------------------------
    length_before = (rng.random((4, n)) * 5 * 365).astype("int64")
    cond_rows = []
    diag_day = {}
    spec = np.array(SITE_CODING_SPECIFICITY)[lat["site"]]
    for k, name in enumerate(omop.CONDITIONS):
        prevalent = rng.random(n) < PREVALENT_AT_ENTRY
        onset = np.where(prevalent, obs_start - length_before[k],
                         obs_start + (rng.random(n) * length).astype("int64"))
        cand = lat[name][v_person] & (v_start >= onset[v_person])
        idx = np.flatnonzero(cand)
        first = _first_of_group(v_person[idx])
        keep_p = np.vectorize(RECORD_DIAGNOSIS.get)(v_type[idx]) if len(idx) else np.zeros(0)
        keep = first | (rng.random(len(idx)) < keep_p)
        idx = idx[keep]
        dd = np.full(n, -1, dtype="int64")
        dd[v_person[idx][first[keep]]] = v_start[idx][first[keep]]
        diag_day[name] = dd
        specific = rng.random(len(idx)) < spec[v_person[idx]]
        if name == "t2d":
            specific |= lat["hba1c"][v_person[idx]] > 9.0
        icd10 = v_start[idx] >= ICD10_SWITCH_DAY
        cond_rows.append((k, idx, icd10, specific))
    lat.update({f"{k}_diagnosis_day": v for k, v in diag_day.items()})

    all_codes = [c for _, _, i9, i10 in omop.CONDITIONS.values() for c in (*i9, *i10)]
    c_idx, c_code, c_concept = [], [], []
    for k, idx, icd10, specific in cond_rows:
        # code index in all_codes: 4 codes per condition: icd9[0], icd9[1], icd10[0], icd10[1]
        c_idx.append(idx)
        c_code.append(4 * k + 2 * icd10 + specific)
        c_concept.append(np.full(len(idx), list(omop.CONDITIONS.values())[k][0]))
    c_idx = np.concatenate(c_idx)
    c_code = np.concatenate(c_code).astype("int64")
    c_concept = np.concatenate(c_concept).astype("int64")
    order = np.lexsort((c_concept, c_idx))
    c_idx, c_code, c_concept = c_idx[order], c_code[order], c_concept[order]
    code_src = np.array([omop.source_concept(c) for c in all_codes], dtype="int64")
    condition = pd.DataFrame({
        "condition_occurrence_id": np.arange(len(c_idx), dtype="int64"),
        "person_id": person_id[v_person[c_idx]],
        "condition_concept_id": c_concept,
        "condition_start_date": _to_date(v_start[c_idx]),
        "condition_type_concept_id": omop.EHR,
        "visit_occurrence_id": c_idx.astype("int64"),
        "condition_source_value": _str_column(all_codes, c_code),
        "condition_source_concept_id": code_src[c_code],
    })

    # ---- drugs --------------------------------------------------------------------------
    first_visit_day = np.full(n, -1, dtype="int64")
    fv = _first_of_group(v_person)
    first_visit_day[v_person[fv]] = v_start[fv]
    drug_start = {
        "metformin": np.where(lat["metformin"], diag_day["t2d"], -1),
        "insulin": np.where(lat["insulin"], diag_day["t2d"], -1),
        "statin": np.where(lat["statin"], first_visit_day, -1),
        "acei": np.where(lat["acei"], _earliest(diag_day["htn"], diag_day["ckd"]), -1),
        "loop": np.where(lat["loop"], diag_day["hf"], -1),
    }
    lat["statin_start_day"] = drug_start["statin"]
    d_idx, d_drug = [], []
    for j, name in enumerate(omop.DRUG_ORDER):
        s = drug_start[name][v_person]
        cand = np.flatnonzero((s >= 0) & (v_start >= s) & (v_type != omop.ER))
        first = _first_of_group(v_person[cand])
        keep = first | (rng.random(len(cand)) < PRESCRIPTION["refill"])
        d_idx.append(cand[keep])
        d_drug.append(np.full(keep.sum(), j))
    d_idx = np.concatenate(d_idx)
    d_drug = np.concatenate(d_drug).astype("int64")
    order = np.lexsort((d_drug, d_idx))
    d_idx, d_drug = d_idx[order], d_drug[order]
    supply = np.array([PRESCRIPTION[d][0] for d in omop.DRUG_ORDER])[d_drug]
    per_day = np.array([PRESCRIPTION[d][1] for d in omop.DRUG_ORDER])[d_drug]
    drug_concepts = np.array([omop.DRUGS[d][0] for d in omop.DRUG_ORDER], dtype="int64")
    drug = pd.DataFrame({
        "drug_exposure_id": np.arange(len(d_idx), dtype="int64"),
        "person_id": person_id[v_person[d_idx]],
        "drug_concept_id": drug_concepts[d_drug],
        "drug_exposure_start_date": _to_date(v_end[d_idx]),
        "drug_exposure_end_date": _to_date(v_end[d_idx] + supply - 1),
        "drug_type_concept_id": omop.EHR,
        "quantity": (supply * per_day).astype("float64"),
        "days_supply": supply.astype("int64"),
        "visit_occurrence_id": d_idx.astype("int64"),
        "drug_source_value": _str_column([omop.DRUGS[d][1] for d in omop.DRUG_ORDER], d_drug),
    })

    measurement = _measurements(rng, lat, person_id, v_person, v_type, v_start, diag_day,
                                drug_start["statin"])

    # ---- person, observation period, death ----------------------------------------------
    birth = lat["birth"]
    bdays = birth.astype("datetime64[D]")
    years_b = bdays.astype("datetime64[Y]")
    months_b = bdays.astype("datetime64[M]")
    site_codes = [s[1] for s in SITES]
    female = lat["female"]
    person = pd.DataFrame({
        "person_id": person_id,
        "gender_concept_id": np.where(female, omop.FEMALE, omop.MALE).astype("int64"),
        "year_of_birth": years_b.astype("int64") + 1970,
        "month_of_birth": (months_b - years_b).astype("int64") + 1,
        "day_of_birth": (bdays - months_b).astype("int64") + 1,
        "birth_datetime": birth.astype(omop.DATE),
        "race_concept_id": lat["race"].astype("int64"),
        "ethnicity_concept_id": 0,
        "location_id": (lat["site"] + 1).astype("int64"),
        "care_site_id": (lat["site"] + 1).astype("int64"),
        "person_source_value": _mrn(site_codes, lat["site"], person_id),
        "gender_source_value": _str_column(["M", "F"], female.astype("int64")),
        "race_source_value": _str_column(
            list(omop.RACES.values()),
            np.array(_race_positions())[np.searchsorted(sorted(omop.RACES), lat["race"])]),
    })
    obs = pd.DataFrame({
        "observation_period_id": np.arange(n, dtype="int64"),
        "person_id": person_id,
        "observation_period_start_date": _to_date(obs_start),
        "observation_period_end_date": _to_date(obs_end),
        "period_type_concept_id": omop.EHR,
    })
    dead = np.flatnonzero(died)
    hf_cause = lat["hf"][dead] & (rng.random(len(dead)) < 0.5)
    death = pd.DataFrame({
        "person_id": person_id[dead],
        "death_date": _to_date(death_day[dead]),
        "death_type_concept_id": omop.EHR,
        "cause_concept_id": np.where(hf_cause, omop.CONDITIONS["hf"][0], 0).astype("int64"),
        "cause_source_value": _str_column(["I50.9"], np.where(hf_cause, 0, -1)),
    })
    return {
        "person": person, "observation_period": obs, "visit_occurrence": visit,
        "condition_occurrence": condition, "drug_exposure": drug, "measurement": measurement,
        "death": death,
    }


def _race_positions() -> list[int]:
    """Map from position in sorted(RACES) to position in RACES' insertion order."""
    keys = list(omop.RACES)
    return [keys.index(k) for k in sorted(omop.RACES)]


def _earliest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise earliest of two day arrays where -1 means 'never'."""
    big = np.iinfo("int64").max
    m = np.minimum(np.where(a < 0, big, a), np.where(b < 0, big, b))
    return np.where(m == big, -1, m)


def _mrn(site_codes: list[str], site: np.ndarray, person_id: np.ndarray):
    """Site medical record numbers like ``UH-00001234`` (vectorised through Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    prefix = pa.array(site_codes).take(pa.array(site))
    digits = pc.utf8_lpad(pc.cast(pa.array(person_id), pa.string()), width=8, padding="0")
    return pd.array(pc.binary_join_element_wise(prefix, digits, "-"), dtype=omop.STR)


def _measurements(rng, lat, person_id, v_person, v_type, v_start, diag_day, statin_start):
    ph = PHYSIOLOGY
    n_v = len(v_person)
    inpatient = v_type == omop.INPATIENT
    er = v_type == omop.ER
    op = v_type == omop.OUTPATIENT

    def by_type(spec: dict, state_p: np.ndarray | None = None) -> np.ndarray:
        p = np.zeros(n_v)
        p[inpatient] = spec[omop.INPATIENT]
        p[er] = spec[omop.ER]
        if state_p is None:
            p[op] = spec[omop.OUTPATIENT]
        else:
            p[op] = state_p[op]
        return p

    t2d_dx = (diag_day["t2d"][v_person] >= 0) & (v_start >= diag_day["t2d"][v_person])
    at_risk = lat["ckd"][v_person] | lat["t2d"][v_person] | lat["htn"][v_person]
    on_statin = (statin_start[v_person] >= 0) & (v_start >= statin_start[v_person])
    L = LAB_PROBABILITY
    probs = {
        "sbp": by_type(L["sbp"]),
        "bmi": by_type(L["bmi"]),
        "hba1c": by_type(L["hba1c"], np.where(t2d_dx, L["hba1c"]["diabetic"],
                                              L["hba1c"]["other"])),
        "glucose": by_type(L["glucose"], np.where(t2d_dx, L["glucose"]["diabetic"],
                                                  L["glucose"]["other"])),
        "creatinine": by_type(L["creatinine"], np.where(at_risk, L["creatinine"]["at_risk"],
                                                        L["creatinine"]["other"])),
        "ldl": by_type(L["ldl"], np.where(on_statin, L["ldl"]["statin"], L["ldl"]["other"])),
    }
    # Visit-level physiology: one HbA1c per visit drives both HbA1c and glucose.
    a1c_visit = lat["hba1c"][v_person] + rng.normal(0, ph["hba1c"]["visit_sd"], n_v)
    g = ph["glucose"]
    glucose = (g["slope"] * a1c_visit + g["intercept"] + rng.normal(0, g["visit_sd"], n_v)
               + g["inpatient"] * inpatient)
    sbp_noise = rng.normal(0, ph["sbp"]["visit_sd"], n_v)
    values = {
        "hba1c": np.round(a1c_visit.clip(3.5, 18), 1),
        "glucose": np.round(glucose.clip(40, 600), 0),
        "creatinine": np.round((lat["creatinine"][v_person]
                                * np.exp(rng.normal(0, ph["creatinine"]["visit_log_sd"], n_v))
                                ).clip(0.2, 15), 2),
        "ldl": np.round((lat["ldl"][v_person] + ph["ldl"]["statin"] * on_statin
                         + rng.normal(0, ph["ldl"]["visit_sd"], n_v)).clip(20, 350), 0),
        "sbp": np.round((lat["sbp"][v_person] + sbp_noise).clip(70, 240), 0),
        "dbp": np.round((lat["dbp"][v_person] + 0.4 * sbp_noise
                         + rng.normal(0, ph["dbp"]["visit_sd"], n_v)).clip(35, 140), 0),
        "bmi": np.round((lat["bmi"][v_person] + rng.normal(0, 0.4, n_v)).clip(12, 70), 1),
    }
    m_visit, m_kind = [], []
    for k, name in enumerate(omop.MEASUREMENT_ORDER):
        if name == "dbp":
            continue
        take = np.flatnonzero(rng.random(n_v) < probs[name])
        m_visit.append(take)
        m_kind.append(np.full(len(take), k))
        if name == "sbp":
            m_visit.append(take)
            m_kind.append(np.full(len(take), omop.MEASUREMENT_ORDER.index("dbp")))
    m_visit = np.concatenate(m_visit)
    m_kind = np.concatenate(m_kind).astype("int64")
    order = np.lexsort((m_kind, m_visit))
    m_visit, m_kind = m_visit[order], m_kind[order]
    value_matrix = np.stack([values[name] for name in omop.MEASUREMENT_ORDER])
    meta = [omop.MEASUREMENTS[name] for name in omop.MEASUREMENT_ORDER]
    col = np.array
    return pd.DataFrame({
        "measurement_id": np.arange(len(m_visit), dtype="int64"),
        "person_id": person_id[v_person[m_visit]],
        "measurement_concept_id": col([m[0] for m in meta], dtype="int64")[m_kind],
        "measurement_date": _to_date(v_start[m_visit]),
        "measurement_type_concept_id": omop.EHR,
        "value_as_number": value_matrix[m_kind, m_visit],
        "unit_concept_id": col([m[3] for m in meta], dtype="int64")[m_kind],
        "range_low": col([m[5] for m in meta])[m_kind],
        "range_high": col([m[6] for m in meta])[m_kind],
        "visit_occurrence_id": m_visit.astype("int64"),
        "measurement_source_value": _str_column([m[1] for m in meta], m_kind),
        "unit_source_value": _str_column([m[4] for m in meta], m_kind),
        # OMOP keeps the raw text here; a numeric feed leaves it empty (censored text such
        # as ">300" is a defect).
        "value_source_value": pd.array([""], dtype=omop.STR).take(
            np.full(len(m_visit), -1), allow_fill=True),
    })
