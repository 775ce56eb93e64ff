"""Who the patients are: sites, demographics and risk factors (the roots of the causal DAG).

    site ──► age, sex mix, race mix, BMI ──► smoking
     │                                        │
     └──────────────► (disease.py) ◄──────────┘

Every number here is a model parameter and is reported in ``truth.parameters``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthetic_data import omop

#: The sites a cohort may have, in order; ``sites=K`` takes the first K. Case mix differs:
#: the tertiary hospital is older and sicker, the community hospital younger, etc.
SITES = [
    # name, code, share, mean age shift (y), BMI shift (kg/m2), diabetes logit shift,
    # race mix (white, black, asian, unknown)
    ("University Hospital", "UH", 0.40, 6.0, 0.5, 0.35, (0.55, 0.25, 0.12, 0.08)),
    ("Riverside Community Hospital", "RC", 0.30, -5.0, 1.5, 0.10, (0.45, 0.40, 0.05, 0.10)),
    ("North County Clinic", "NC", 0.20, 0.0, -0.8, -0.30, (0.70, 0.08, 0.17, 0.05)),
    ("Eastside Medical Center", "EM", 0.15, 3.0, 0.0, 0.00, (0.40, 0.20, 0.30, 0.10)),
    ("Lakeview Regional", "LR", 0.12, -2.0, 1.0, 0.20, (0.60, 0.30, 0.05, 0.05)),
    ("Hillcrest General", "HG", 0.10, 4.0, -0.5, -0.10, (0.65, 0.15, 0.15, 0.05)),
    ("Bayside Health", "BH", 0.10, -3.0, 0.3, 0.05, (0.35, 0.35, 0.20, 0.10)),
    ("Westgate Hospital", "WG", 0.08, 1.0, 0.8, 0.15, (0.50, 0.30, 0.10, 0.10)),
]
MAX_SITES = len(SITES)

PARAMETERS = {
    "female_share": 0.52,
    "pediatric_share": 0.06,  # under-18s, to be excluded by an adult cohort definition
    "age_mean": 54.0,
    "age_sd": 15.0,
    "bmi_mean": 27.5,
    "bmi_sd": 5.0,
    "bmi_male": 0.6,
    "smoking_logit": {"intercept": -1.2, "male": 0.4, "age_per_year": -0.02},
}


def care_site_table(n_sites: int) -> pd.DataFrame:
    """The ``care_site`` table for the first ``n_sites`` sites (ids 1..n_sites)."""
    rows = SITES[:n_sites]
    df = pd.DataFrame(
        {
            "care_site_id": np.arange(1, n_sites + 1, dtype="int64"),
            "care_site_name": [r[0] for r in rows],
            "place_of_service_concept_id": omop.HOSPITAL,
            "location_id": np.arange(1, n_sites + 1, dtype="int64"),
            "care_site_source_value": [r[1] for r in rows],
            "place_of_service_source_value": "21",
        }
    )
    return omop.conform(df, "care_site")


def site_shares(n_sites: int) -> np.ndarray:
    shares = np.array([r[2] for r in SITES[:n_sites]])
    return shares / shares.sum()


def draw_population(rng: np.random.Generator, n: int, n_sites: int,
                    start: np.datetime64) -> dict[str, np.ndarray]:
    """Draw site, sex, race, age at ``start`` (years), BMI and smoking for ``n`` patients.

    Returns a dict of arrays of length ``n`` (the per-patient latent state so far).
    """
    p = PARAMETERS
    site = rng.choice(n_sites, size=n, p=site_shares(n_sites))  # 0-based site index
    female = rng.random(n) < p["female_share"]
    race_mix = np.array([SITES[s][6] for s in range(n_sites)])
    race_codes = np.array(list(omop.RACES))
    u = rng.random(n)
    race = race_codes[(u[:, None] > np.cumsum(race_mix[site], axis=1)).sum(axis=1).clip(0, 3)]

    age_shift = np.array([SITES[s][3] for s in range(n_sites)])[site]
    adult_age = rng.normal(p["age_mean"] + age_shift, p["age_sd"]).clip(18, 95)
    child_age = rng.uniform(2, 18, n)
    age = np.where(rng.random(n) < p["pediatric_share"], child_age, adult_age)

    bmi_shift = np.array([SITES[s][4] for s in range(n_sites)])[site]
    bmi = rng.normal(
        p["bmi_mean"] + p["bmi_male"] * ~female + bmi_shift - 4.0 * (age < 18), p["bmi_sd"]
    ).clip(14, 65)
    s = p["smoking_logit"]
    smoke_logit = s["intercept"] + s["male"] * ~female + s["age_per_year"] * (age - 50)
    smoking = (rng.random(n) < _expit(smoke_logit)) & (age >= 14)

    # Birth date: ``age`` years before the cohort start, to the day.
    birth = start - (age * 365.25 * 86400).astype("timedelta64[s]")
    birth = birth.astype("datetime64[D]").astype("datetime64[s]")
    return {
        "site": site,
        "female": female,
        "race": race,
        "age": age,
        "birth": birth,
        "bmi": bmi,
        "smoking": smoking,
    }


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
