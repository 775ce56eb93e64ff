"""Realistic data defects, injected into clean tables and logged one cell (or row) at a time.

Each kind is a small function ``kind(ctx, rate)`` that changes ``ctx.tables`` through
``ctx.set_cells`` / ``ctx.insert_rows``, which write the log as they go. Kinds run in the
order of :data:`KINDS`; :func:`repair` undoes the log in reverse order, which gives back the
clean tables exactly (tests/test_defects.py checks it for every kind).

Log columns (``cohort.defects``):
``defect_id, step, kind, table, row_key, column, original_value, injected_value`` — one row
per changed cell; an inserted row is one row with ``column == "*"`` and its primary key in
``row_key``. Values are text (the exact ``repr`` of floats, ISO dates), missing is ``<NA>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synthetic_data import omop

#: Default rates. Each is the probability per eligible row (or patient), documented per kind.
DEFAULT_RATES: dict[str, float] = {
    "date_shift": 0.005,        # patients whose every date is shifted by the same 1-30 days
    "unit_mixup": 0.02,         # glucose / creatinine rows reported in mmol/L / umol/L
    "implausible_value": 0.002,  # measurement rows with a decimal slip (x10)
    "censored_value": 0.5,      # glucose >= 250 or HbA1c >= 13 rows reported as ">250" / ">13"
    "copy_forward": 0.01,       # measurement rows that repeat the patient's previous value
    "missing_mcar": 0.02,       # measurement values missing completely at random
    "missing_mar": 0.3,         # LDL missing at North County Clinic and over-75s (observed causes)
    "missing_mnar": 0.25,       # HbA1c > 9 % missing (the value itself is the cause)
    "icd_drift": 0.03,          # ICD-10-era diagnoses coded in ICD-9 (legacy interface)
    "unmapped_code": 0.01,      # diagnoses with a local code and concept 0
    "sex_implausible": 0.002,   # diagnoses replaced by a code of the other sex
    "visit_after_death": 0.2,   # dead patients with one visit dated after death
    "orphan_fk": 0.002,         # event rows pointing at a visit that does not exist
    "duplicate_row": 0.005,     # event rows entered twice (new id, same content)
    "duplicate_patient": 0.01,  # patients registered again at another site (new id and MRN)
}
KINDS = list(DEFAULT_RATES)

#: Site multipliers (0-based site index -> factor on the rate): defects cluster by site, as in
#: real networks. Riverside's lab reports SI units; North County's interface maps codes badly.
SITE_MULTIPLIER = {
    "unit_mixup": {1: 6.0},
    "icd_drift": {2: 4.0},
    "unmapped_code": {2: 3.0},
    "date_shift": {3: 5.0},
}

LOG_COLUMNS = ["defect_id", "step", "kind", "table", "row_key", "column",
               "original_value", "injected_value"]
ROW_INSERTED = "*"
ORPHAN_BASE = 900_000_000  # local ids at and above this within a chunk's id block never exist

EVENT_TABLES = ["condition_occurrence", "drug_exposure", "measurement"]
DATE_COLUMNS = {
    t: [c for c, d in cols if d == omop.DATE] for t, cols in omop.SCHEMA.items()
    if t in omop.PATIENT_TABLES and t != "person"
}


def resolve_rates(defects: str | dict | None) -> dict[str, float]:
    """Validate the ``defects`` parameter of ``make_cohort`` and return the rates per kind."""
    if defects is None or defects == "none":
        return {k: 0.0 for k in KINDS}
    if isinstance(defects, str):
        if defects != "default":
            raise ValueError(
                f"defects must be 'default', None, or a dict of rates; got {defects!r}")
        return dict(DEFAULT_RATES)
    if isinstance(defects, dict):
        unknown = sorted(set(defects) - set(KINDS))
        if unknown:
            raise ValueError(f"defects: unknown kind(s) {unknown}; allowed kinds: {KINDS}")
        rates = {k: 0.0 for k in KINDS}
        for k, v in defects.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ValueError(f"defects[{k!r}] must be a rate in [0, 1]; got {v!r}")
            rates[k] = float(v)
        return rates
    raise ValueError(f"defects must be 'default', None, or a dict of rates; got {defects!r}")


def format_values(values) -> np.ndarray:
    """Exact text of each value (an object array, None where missing).

    ``repr`` for floats (it round-trips exactly), ISO dates, decimal ints, strings as they are.
    """
    values = pd.Series(values) if not isinstance(values, pd.Series) else values
    dtype = str(values.dtype)
    if dtype == omop.DATE:
        arr = values.to_numpy()
        out = np.datetime_as_string(arr, unit="D").astype(object)
        out[np.isnat(arr)] = None
        return out
    if dtype.startswith("float"):
        return np.array([None if v != v else repr(v) for v in values.tolist()], dtype=object)
    if dtype.startswith("int"):
        return values.to_numpy().astype(str).astype(object)
    out = values.to_numpy(dtype=object, na_value=None)
    return out


def parse_values(texts: pd.Series, dtype: str) -> pd.Series:
    """Inverse of :func:`format_values` for a column of ``dtype``."""
    if dtype == omop.DATE:
        return pd.to_datetime(texts).astype(omop.DATE)
    if dtype.startswith("float"):
        return pd.to_numeric(texts.astype(object).where(texts.notna(), np.nan)).astype(dtype)
    if dtype.startswith("int"):
        return texts.astype("int64").astype(dtype)
    return texts.astype(dtype)


@dataclass
class _Context:
    tables: dict[str, pd.DataFrame]
    lat: dict[str, np.ndarray]
    rng: np.random.Generator | None
    id_base: int  # first id of this chunk's block of event ids
    person_base: int  # first person id of this chunk's block
    step: int = 0
    kind: str = ""
    log: list[tuple] = field(default_factory=list)
    touched: dict[str, np.ndarray] = field(default_factory=dict)

    def latent_of_rows(self, table: str, name: str) -> np.ndarray:
        """The latent attribute ``name`` of each row's patient (duplicates map into range)."""
        pid = self.tables[table]["person_id"].to_numpy()
        values = self.lat[name]
        return values[np.clip(pid - self.person_base, 0, len(values) - 1)]

    def site_of_rows(self, table: str) -> np.ndarray:
        return self.latent_of_rows(table, "site")

    def rate_by_site(self, table: str, rate: float) -> np.ndarray:
        mult = SITE_MULTIPLIER.get(self.kind, {})
        site = self.site_of_rows(table)
        factor = np.ones(len(site))
        for s, f in mult.items():
            factor[site == s] = f
        return np.minimum(rate * factor, 1.0)

    def fresh(self, table: str, mask: np.ndarray) -> np.ndarray:
        """``mask`` restricted to rows no earlier kind touched (one defect per cell group)."""
        t = self.touched.get(table)
        return mask if t is None else mask & ~t[: len(mask)]

    def mark(self, table: str, rows: np.ndarray) -> None:
        n = len(self.tables[table])
        t = self.touched.get(table)
        if t is None or len(t) < n:
            t = np.concatenate([t if t is not None else np.zeros(0, bool),
                                np.zeros(n - (0 if t is None else len(t)), bool)])
        t[rows] = True
        self.touched[table] = t

    def set_cells(self, table: str, rows: np.ndarray, column: str, values) -> None:
        """Set ``table.column`` at positional ``rows`` to ``values`` and log each cell."""
        if len(rows) == 0:
            return
        df = self.tables[table]
        col = df[column]
        new = pd.Series(values, dtype=col.dtype) if not isinstance(values, pd.Series) else \
            values.astype(col.dtype)
        original = format_values(col.iloc[rows])
        injected = format_values(new)
        key = df[omop.PRIMARY_KEY[table]].to_numpy()[rows]
        if isinstance(col.dtype, np.dtype):  # numeric / datetime: a plain numpy write
            arr = col.to_numpy(copy=True)
            arr[rows] = new.to_numpy()
        else:
            arr = col.array.copy()
            arr[rows] = new.array
        df[column] = arr
        self._log(table, key, column, original, injected)
        self.mark(table, rows)

    def insert_rows(self, table: str, new_rows: pd.DataFrame) -> None:
        if len(new_rows) == 0:
            return
        df = self.tables[table]
        self.tables[table] = pd.concat([df, new_rows[df.columns]], ignore_index=True)
        key = new_rows[omop.PRIMARY_KEY[table]].to_numpy()
        none = np.full(len(key), None, dtype=object)
        self._log(table, key, ROW_INSERTED, none, none)
        self.mark(table, np.arange(len(df), len(df) + len(new_rows)))

    def next_ids(self, table: str, n: int) -> np.ndarray:
        key = self.tables[table][omop.PRIMARY_KEY[table]]
        start = int(key.max()) + 1 if len(key) else self.id_base
        return np.arange(start, start + n, dtype="int64")

    def _log(self, table, key, column, original, injected) -> None:
        self.log.append((self.step, self.kind, table, np.asarray(key, dtype="int64"), column,
                         original, injected))

    def log_frame(self) -> pd.DataFrame:
        """The log so far as a DataFrame (built once: per-call frames were the hot spot)."""
        if not self.log:
            return empty_log()
        n = [len(e[3]) for e in self.log]

        def rep(i: int) -> np.ndarray:
            return np.repeat(np.array([e[i] for e in self.log], dtype=object), n)

        return conform_log(pd.DataFrame({
            "defect_id": np.arange(sum(n), dtype="int64"),
            "step": np.repeat([e[0] for e in self.log], n).astype("int64"),
            "kind": rep(1), "table": rep(2),
            "row_key": np.concatenate([e[3] for e in self.log]),
            "column": rep(4),
            "original_value": np.concatenate([e[5] for e in self.log]),
            "injected_value": np.concatenate([e[6] for e in self.log]),
        }))

    def pick(self, p: np.ndarray | float, mask: np.ndarray) -> np.ndarray:
        """Positions where ``mask`` holds and a uniform draw falls under ``p``."""
        u = self.rng.random(len(mask))
        return np.flatnonzero(mask & (u < p))


def _concept(name: str) -> int:
    return omop.MEASUREMENTS[name][0]


def _meas_mask(ctx: _Context, *names: str) -> np.ndarray:
    m = ctx.tables["measurement"]
    concepts = [_concept(n) for n in names]
    return m["measurement_concept_id"].isin(concepts).to_numpy() & m["value_as_number"].notna(
    ).to_numpy()


# ---- the kinds ----------------------------------------------------------------------------

def date_shift(ctx: _Context, rate: float) -> None:
    person = ctx.tables["person"]
    rows = ctx.pick(ctx.rate_by_site("person", rate), np.ones(len(person), bool))
    if len(rows) == 0:
        return
    pids = person["person_id"].to_numpy()[rows]
    shift = ctx.rng.integers(1, 31, len(rows)) * ctx.rng.choice([-1, 1], len(rows))
    by_pid = pd.Series(shift, index=pids)
    for table, cols in DATE_COLUMNS.items():
        df = ctx.tables[table]
        hit = np.flatnonzero(df["person_id"].isin(pids).to_numpy())
        if len(hit) == 0:
            continue
        days = by_pid.loc[df["person_id"].to_numpy()[hit]].to_numpy().astype("timedelta64[D]")
        for col in cols:
            ctx.set_cells(table, hit, col, df[col].to_numpy()[hit] + days)


def unit_mixup(ctx: _Context, rate: float) -> None:
    m = ctx.tables["measurement"]
    for name, (unit_id, unit, factor) in omop.ALT_UNITS.items():
        rows = ctx.pick(ctx.rate_by_site("measurement", rate),
                        ctx.fresh("measurement", _meas_mask(ctx, name)))
        vals = m["value_as_number"].to_numpy()[rows] * factor
        vals = np.round(vals, 1 if name == "glucose" else 0)
        ctx.set_cells("measurement", rows, "value_as_number", vals)
        ctx.set_cells("measurement", rows, "unit_concept_id", np.full(len(rows), unit_id))
        ctx.set_cells("measurement", rows, "unit_source_value", [unit] * len(rows))


def implausible_value(ctx: _Context, rate: float) -> None:
    m = ctx.tables["measurement"]
    rows = ctx.pick(rate, ctx.fresh("measurement", m["value_as_number"].notna().to_numpy()))
    # A slipped decimal point: BMI 278, HbA1c 71 %, creatinine 9.8 mg/dL, SBP 1300 mmHg.
    ctx.set_cells("measurement", rows, "value_as_number",
                  m["value_as_number"].to_numpy()[rows] * 10.0)


def censored_value(ctx: _Context, rate: float) -> None:
    m = ctx.tables["measurement"]
    v = m["value_as_number"].to_numpy()
    concept = m["measurement_concept_id"].to_numpy()
    for name, limit, text in (("glucose", 250.0, ">250"), ("hba1c", 13.0, ">13")):
        eligible = ctx.fresh("measurement", (concept == _concept(name)) & (v >= limit))
        rows = ctx.pick(rate, eligible)
        ctx.set_cells("measurement", rows, "value_as_number", np.full(len(rows), np.nan))
        ctx.set_cells("measurement", rows, "value_source_value", [text] * len(rows))


def copy_forward(ctx: _Context, rate: float) -> None:
    m = ctx.tables["measurement"]
    prev = m.groupby(["person_id", "measurement_concept_id"], sort=False)["value_as_number"].shift()
    v = m["value_as_number"].to_numpy()
    eligible = ctx.fresh("measurement", prev.notna().to_numpy() & (prev.to_numpy() != v)
                         & ~np.isnan(v))
    rows = ctx.pick(rate, eligible)
    ctx.set_cells("measurement", rows, "value_as_number", prev.to_numpy()[rows])


def _set_missing(ctx: _Context, rows: np.ndarray) -> None:
    ctx.set_cells("measurement", rows, "value_as_number", np.full(len(rows), np.nan))


def missing_mcar(ctx: _Context, rate: float) -> None:
    m = ctx.tables["measurement"]
    _set_missing(ctx, ctx.pick(rate, ctx.fresh("measurement",
                                               m["value_as_number"].notna().to_numpy())))


def missing_mar(ctx: _Context, rate: float) -> None:
    site = ctx.site_of_rows("measurement")
    age = ctx.latent_of_rows("measurement", "age")
    cause = (site == 2) | (age > 75)
    _set_missing(ctx, ctx.pick(rate, ctx.fresh("measurement", _meas_mask(ctx, "ldl") & cause)))


def missing_mnar(ctx: _Context, rate: float) -> None:
    m = ctx.tables["measurement"]
    high = m["value_as_number"].to_numpy() > 9.0
    _set_missing(ctx, ctx.pick(rate, ctx.fresh("measurement", _meas_mask(ctx, "hba1c") & high)))


def icd_drift(ctx: _Context, rate: float) -> None:
    c = ctx.tables["condition_occurrence"]
    icd9_of = {}
    for _, _, icd9, icd10 in omop.CONDITIONS.values():
        icd9_of.update(dict(zip(icd10, icd9, strict=True)))
    src = c["condition_source_value"]
    eligible = ctx.fresh("condition_occurrence", src.isin(list(icd9_of)).to_numpy())
    rows = ctx.pick(ctx.rate_by_site("condition_occurrence", rate), eligible)
    codes = [icd9_of[s] for s in src.to_numpy()[rows]]
    ctx.set_cells("condition_occurrence", rows, "condition_source_value", codes)
    ctx.set_cells("condition_occurrence", rows, "condition_source_concept_id",
                  [omop.source_concept(s) for s in codes])


LOCAL_CODES = {201826: "DM2-LOC", 320128: "HTN-LOC", 46271022: "CKD-LOC", 316139: "CHF-LOC"}


def unmapped_code(ctx: _Context, rate: float) -> None:
    c = ctx.tables["condition_occurrence"]
    eligible = ctx.fresh("condition_occurrence",
                         c["condition_concept_id"].isin(list(LOCAL_CODES)).to_numpy())
    rows = ctx.pick(ctx.rate_by_site("condition_occurrence", rate), eligible)
    codes = [LOCAL_CODES[x] for x in c["condition_concept_id"].to_numpy()[rows]]
    ctx.set_cells("condition_occurrence", rows, "condition_source_value", codes)
    ctx.set_cells("condition_occurrence", rows, "condition_concept_id", np.zeros(len(rows)))
    ctx.set_cells("condition_occurrence", rows, "condition_source_concept_id",
                  np.zeros(len(rows)))


def sex_implausible(ctx: _Context, rate: float) -> None:
    c = ctx.tables["condition_occurrence"]
    female = ctx.latent_of_rows("condition_occurrence", "female")
    rows = ctx.pick(rate, ctx.fresh("condition_occurrence", np.ones(len(c), bool)))
    icd10 = c["condition_start_date"].to_numpy()[rows] >= omop.ICD10_SWITCH
    gdm, bph = omop.SEX_SPECIFIC["gdm"], omop.SEX_SPECIFIC["bph"]
    # A female-only code for a man, a male-only code for a woman.
    to = [bph if f else gdm for f in female[rows]]
    codes = [t[3][0] if i10 else t[2][0] for t, i10 in zip(to, icd10, strict=True)]
    ctx.set_cells("condition_occurrence", rows, "condition_concept_id", [t[0] for t in to])
    ctx.set_cells("condition_occurrence", rows, "condition_source_value", codes)
    ctx.set_cells("condition_occurrence", rows, "condition_source_concept_id",
                  [omop.source_concept(s) for s in codes])


def visit_after_death(ctx: _Context, rate: float) -> None:
    death = ctx.tables["death"]
    v = ctx.tables["visit_occurrence"]
    dead = death["person_id"].to_numpy()[ctx.pick(rate, np.ones(len(death), bool))]
    if len(dead) == 0:
        return
    cand = np.flatnonzero(v["person_id"].isin(dead).to_numpy()
                          & ctx.fresh("visit_occurrence", np.ones(len(v), bool)))
    # one visit per chosen patient: the last one
    pid = v["person_id"].to_numpy()[cand]
    last = cand[np.r_[pid[1:] != pid[:-1], True]] if len(cand) else cand
    dday = pd.Series(death["death_date"].to_numpy(), index=death["person_id"].to_numpy())
    after = dday.loc[v["person_id"].to_numpy()[last]].to_numpy() + \
        ctx.rng.integers(1, 61, len(last)).astype("timedelta64[D]")
    ctx.set_cells("visit_occurrence", last, "visit_start_date", after)
    ctx.set_cells("visit_occurrence", last, "visit_end_date", after)


def orphan_fk(ctx: _Context, rate: float) -> None:
    for table in EVENT_TABLES:
        df = ctx.tables[table]
        rows = ctx.pick(rate, ctx.fresh(table, np.ones(len(df), bool)))
        ghost = ctx.id_base + ORPHAN_BASE + ctx.rng.integers(0, 99_000_000, len(rows))
        ctx.set_cells(table, rows, "visit_occurrence_id", ghost)


def duplicate_row(ctx: _Context, rate: float) -> None:
    for table in EVENT_TABLES:
        df = ctx.tables[table]
        rows = ctx.pick(rate, np.ones(len(df), bool))
        copy = df.iloc[rows].copy()
        copy[omop.PRIMARY_KEY[table]] = ctx.next_ids(table, len(rows))
        ctx.insert_rows(table, copy)


def duplicate_patient(ctx: _Context, rate: float) -> None:
    person = ctx.tables["person"]
    n_sites = int(ctx.lat["n_sites"])
    if n_sites < 2:
        return
    rows = ctx.pick(rate, np.ones(len(person), bool))
    if len(rows) == 0:
        return
    dup = person.iloc[rows].copy()
    old_pid = dup["person_id"].to_numpy()
    new_pid = ctx.next_ids("person", len(rows))
    pid_map = pd.Series(new_pid, index=old_pid)
    other = (dup["care_site_id"].to_numpy() - 1 + ctx.rng.integers(1, n_sites, len(rows))) \
        % n_sites + 1
    from synthetic_data.population import SITES

    dup["person_id"] = new_pid
    dup["care_site_id"] = other
    dup["location_id"] = other
    dup["person_source_value"] = pd.array(
        [f"{SITES[s - 1][1]}-{p:08d}" for s, p in zip(other, new_pid, strict=True)],
        dtype=omop.STR)
    site_map = pd.Series(other, index=old_pid)
    ctx.insert_rows("person", dup)

    op = ctx.tables["observation_period"]
    o = op[op["person_id"].isin(old_pid)].copy()
    o["observation_period_id"] = ctx.next_ids("observation_period", len(o))
    o["person_id"] = pid_map.loc[o["person_id"]].to_numpy()
    ctx.insert_rows("observation_period", o)

    v = ctx.tables["visit_occurrence"]
    vv = v[v["person_id"].isin(old_pid).to_numpy() & (ctx.rng.random(len(v)) < 0.5)].copy()
    old_vid = vv["visit_occurrence_id"].to_numpy()
    new_vid = ctx.next_ids("visit_occurrence", len(vv))
    vid_map = pd.Series(new_vid, index=old_vid)
    vv["visit_occurrence_id"] = new_vid
    vv["care_site_id"] = site_map.loc[vv["person_id"]].to_numpy()
    vv["person_id"] = pid_map.loc[vv["person_id"]].to_numpy()
    ctx.insert_rows("visit_occurrence", vv)
    for table in EVENT_TABLES:
        df = ctx.tables[table]
        e = df[df["visit_occurrence_id"].isin(old_vid)].copy()
        e[omop.PRIMARY_KEY[table]] = ctx.next_ids(table, len(e))
        e["visit_occurrence_id"] = vid_map.loc[e["visit_occurrence_id"]].to_numpy()
        e["person_id"] = pid_map.loc[e["person_id"]].to_numpy()
        ctx.insert_rows(table, e)


INJECTORS: dict[str, Callable[[_Context, float], None]] = {k: globals()[k] for k in KINDS}


def inject(tables: dict[str, pd.DataFrame], lat: dict, seed: np.random.SeedSequence,
           rates: dict[str, float], *, id_base: int, person_base: int
           ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Inject every kind with a non-zero rate; return the defective tables and the log."""
    # One child stream per kind, so switching one kind off leaves the others unchanged.
    streams = seed.spawn(len(KINDS))
    ctx = _Context({k: v.copy() for k, v in tables.items()}, lat, None, id_base, person_base)
    for step, kind in enumerate(KINDS):
        ctx.step, ctx.kind = step, kind
        ctx.rng = np.random.default_rng(streams[step])
        if rates.get(kind, 0.0) > 0:
            INJECTORS[kind](ctx, rates[kind])
    return ctx.tables, ctx.log_frame()


def empty_log() -> pd.DataFrame:
    return conform_log(pd.DataFrame({c: [] for c in LOG_COLUMNS}))


def conform_log(log: pd.DataFrame) -> pd.DataFrame:
    types = {"defect_id": "int64", "step": "int64", "row_key": "int64"}
    return pd.DataFrame({c: log[c].astype(types.get(c, omop.STR)) for c in LOG_COLUMNS})


def repair(tables: dict[str, pd.DataFrame], log: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Undo every logged defect: the result equals the clean tables (``cohort.truth``).

    Applies the log in reverse step order: restores each changed cell to its original value
    and drops each inserted row. Tables come back sorted by primary key.
    """
    out = {k: v.copy() for k, v in tables.items()}
    for step in sorted(log["step"].unique(), reverse=True):
        entries = log[log["step"] == step]
        for (table, column), g in entries.groupby(["table", "column"], sort=True):
            df = out[table]
            key = omop.PRIMARY_KEY[table]
            if column == ROW_INSERTED:
                out[table] = df[~df[key].isin(g["row_key"])].reset_index(drop=True)
                continue
            pos = pd.Index(df[key]).get_indexer(g["row_key"])
            if (pos < 0).any():
                raise ValueError(f"defect log names {table}.{key} values missing from the table")
            arr = df[column].array.copy()
            arr[pos] = parse_values(g["original_value"], str(df[column].dtype)).array
            df[column] = arr
    for table, df in out.items():
        key = omop.PRIMARY_KEY[table]
        out[table] = df.sort_values(key, kind="stable", ignore_index=True)
    return out
