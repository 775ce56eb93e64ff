"""The middle and the end of the causal DAG: chronic disease, physiology, treatment, outcomes.

    age, sex, site, BMI, smoking
        └─► type 2 diabetes ─► hypertension ─► chronic kidney disease ─► heart failure
               │                   │                  │                     │
               ▼                   ▼                  ▼                     ▼
            HbA1c ─► fasting glucose   SBP / DBP     creatinine          (outcomes)
               │
    indication ─► metformin, insulin, statin, ACE inhibitor, loop diuretic
    age + disease + smoking ─► admission ─► 1-year readmission ;  ─► death (statin protects)

Statins are given to older, diabetic, hypertensive patients, and age drives death, so the crude
statin-death association is harmful while the adjusted one is protective: the confounding
trap of module 06. The readmission model gives a simple logistic model an AUROC near 0.75.
"""

from __future__ import annotations

import numpy as np

from synthetic_data.population import SITES, _expit

CONDITION_LOGITS = {
    # intercept, age (per year from 50), BMI (per kg/m2 from 27), smoking, male, earlier diseases
    "t2d": {"intercept": -2.2, "age": 0.045, "bmi": 0.13, "smoking": 0.2, "male": 0.2},
    "htn": {"intercept": -1.0, "age": 0.06, "bmi": 0.08, "t2d": 0.6},
    "ckd": {"intercept": -3.0, "age": 0.06, "t2d": 1.0, "htn": 0.8},
    "hf": {"intercept": -3.8, "age": 0.07, "htn": 0.9, "ckd": 0.8, "smoking": 0.5, "t2d": 0.4},
}
PREVALENT_AT_ENTRY = 0.6  # share of cases already present when observation starts

PHYSIOLOGY = {
    "hba1c": {"mean": 5.35, "bmi": 0.03, "t2d": 1.7, "t2d_sd": 1.0, "visit_sd": 0.3},
    # fasting glucose follows HbA1c through the ADAG relation eAG = 28.7 * A1c - 46.7 (mg/dL)
    "glucose": {"slope": 28.7, "intercept": -46.7, "visit_sd": 20.0, "inpatient": 15.0},
    "creatinine": {"base": 0.75, "male": 0.2, "age": 0.004, "ckd": 1.0, "ckd_sd": 0.5,
                   "visit_log_sd": 0.08},
    "ldl": {"mean": 118.0, "t2d": 8.0, "sd": 28.0, "statin": -35.0, "visit_sd": 10.0},
    "sbp": {"mean": 121.0, "age": 0.4, "htn": 15.0, "bmi": 0.5, "sd": 10.0, "visit_sd": 9.0},
    "dbp": {"ratio": 0.55, "intercept": 10.0, "sd": 6.0, "visit_sd": 6.0},
}

TREATMENT = {
    "metformin": {"t2d": 0.85, "t2d_ckd": 0.5},
    "insulin": {"hba1c_above": 8.5, "p": 0.6},
    "statin_logit": {"intercept": -2.6, "t2d": 1.3, "age": 0.05, "htn": 0.6, "ldl": 0.01},
    "acei": {"htn_or_ckd": 0.7},
    "loop": {"hf": 0.8},
}

OUTCOMES = {
    "death_logit": {"intercept": -3.6, "age": 0.09, "hf": 1.0, "ckd": 0.6, "smoking": 0.4,
                    "t2d": 0.3, "statin": -0.5},
    "admission_logit": {"intercept": -1.6, "age": 0.03, "hf": 0.8, "ckd": 0.5, "t2d": 0.3,
                        "htn": 0.2},
    "readmission_logit": {"intercept": -1.9, "age": 0.03, "hf": 1.3, "ckd": 0.8, "t2d": 0.4,
                          "hba1c": 0.3, "smoking": 0.4},
}

#: Probability that a site codes the more specific of two ICD codes (coding habit).
SITE_CODING_SPECIFICITY = [0.55, 0.15, 0.35, 0.45, 0.25, 0.5, 0.3, 0.4]


def parameters() -> dict:
    """All disease-model parameters, as reported in ``truth.parameters``."""
    return {
        "condition_logits": CONDITION_LOGITS,
        "prevalent_at_entry": PREVALENT_AT_ENTRY,
        "physiology": PHYSIOLOGY,
        "treatment": TREATMENT,
        "outcomes": OUTCOMES,
        "site_coding_specificity": SITE_CODING_SPECIFICITY,
        "site_diabetes_logit_shift": [s[5] for s in SITES],
    }


def draw_disease(rng: np.random.Generator, pop: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add conditions, person-level physiology, treatment flags and outcome flags to ``pop``."""
    n = len(pop["age"])
    age, bmi = pop["age"], pop["bmi"]
    male, smoking = ~pop["female"], pop["smoking"]
    a50, b27 = age - 50.0, bmi - 27.0
    site_dm = np.array([s[5] for s in SITES])[pop["site"]]
    adult = age >= 18

    c = CONDITION_LOGITS
    t2d = adult & (rng.random(n) < _expit(
        c["t2d"]["intercept"] + c["t2d"]["age"] * a50 + c["t2d"]["bmi"] * b27
        + c["t2d"]["smoking"] * smoking + c["t2d"]["male"] * male + site_dm))
    htn = adult & (rng.random(n) < _expit(
        c["htn"]["intercept"] + c["htn"]["age"] * a50 + c["htn"]["bmi"] * b27
        + c["htn"]["t2d"] * t2d))
    ckd = adult & (rng.random(n) < _expit(
        c["ckd"]["intercept"] + c["ckd"]["age"] * a50 + c["ckd"]["t2d"] * t2d
        + c["ckd"]["htn"] * htn))
    hf = adult & (rng.random(n) < _expit(
        c["hf"]["intercept"] + c["hf"]["age"] * a50 + c["hf"]["htn"] * htn
        + c["hf"]["ckd"] * ckd + c["hf"]["smoking"] * smoking + c["hf"]["t2d"] * t2d))

    ph = PHYSIOLOGY
    h = ph["hba1c"]
    hba1c = (h["mean"] + h["bmi"] * b27 + rng.normal(0, 0.25, n)
             + t2d * (h["t2d"] + np.abs(rng.normal(0, h["t2d_sd"], n))))
    cr = ph["creatinine"]
    creatinine = (cr["base"] + cr["male"] * male + cr["age"] * a50 + rng.normal(0, 0.08, n)
                  + ckd * (cr["ckd"] + np.abs(rng.normal(0, cr["ckd_sd"], n)))).clip(0.3, None)
    ld = ph["ldl"]
    ldl = rng.normal(ld["mean"] + ld["t2d"] * t2d, ld["sd"]).clip(30, 300)
    sb = ph["sbp"]
    sbp = rng.normal(sb["mean"] + sb["age"] * a50 + sb["htn"] * htn + sb["bmi"] * b27, sb["sd"])
    db = ph["dbp"]
    dbp = rng.normal(db["ratio"] * sbp + db["intercept"], db["sd"])

    tr = TREATMENT
    metformin = t2d & (rng.random(n) < np.where(ckd, tr["metformin"]["t2d_ckd"],
                                                 tr["metformin"]["t2d"]))
    insulin = t2d & (hba1c > tr["insulin"]["hba1c_above"]) & (rng.random(n) < tr["insulin"]["p"])
    st = tr["statin_logit"]
    statin = adult & (rng.random(n) < _expit(
        st["intercept"] + st["t2d"] * t2d + st["age"] * a50 + st["htn"] * htn
        + st["ldl"] * (ldl - 120)))
    acei = (htn | ckd) & (rng.random(n) < tr["acei"]["htn_or_ckd"])
    loop = hf & (rng.random(n) < tr["loop"]["hf"])

    o = OUTCOMES
    d = o["death_logit"]
    died = rng.random(n) < _expit(
        d["intercept"] + d["age"] * a50 + d["hf"] * hf + d["ckd"] * ckd
        + d["smoking"] * smoking + d["t2d"] * t2d + d["statin"] * statin)
    ad = o["admission_logit"]
    admitted = rng.random(n) < _expit(
        ad["intercept"] + ad["age"] * a50 + ad["hf"] * hf + ad["ckd"] * ckd
        + ad["t2d"] * t2d + ad["htn"] * htn)
    rd = o["readmission_logit"]
    readmit_latent = rng.random(n) < _expit(
        rd["intercept"] + rd["age"] * a50 + rd["hf"] * hf + rd["ckd"] * ckd
        + rd["t2d"] * t2d + rd["hba1c"] * (hba1c - 6.0) + rd["smoking"] * smoking)

    return {
        **pop,
        "t2d": t2d, "htn": htn, "ckd": ckd, "hf": hf,
        "hba1c": hba1c, "creatinine": creatinine, "ldl": ldl, "sbp": sbp, "dbp": dbp,
        "metformin": metformin, "insulin": insulin, "statin": statin, "acei": acei,
        "loop": loop,
        "died": died, "admitted": admitted & adult, "readmit_latent": readmit_latent,
    }
