"""Reading and writing cohorts: Parquet, CSV or SQLite, readable by pandas and DuckDB.

Layout of a cohort directory::

    manifest.json                 version, seed, spec, row counts, SHA-256 of every file
    person/part-00000.parquet     the OMOP tables (with defects) — what residents get;
    measurement/part-000NN.parquet    one part per chunk of 10,000 patients
    defects/part-...parquet       the defect log                 } instructor side: keep
    truth/person/part-...parquet  clean tables, truth/latent/,   } these out of residents'
    truth/parameters.json         the model parameters           } reach

Each table is a Parquet *dataset* (a folder of parts): ``pd.read_parquet("DIR/person")``,
DuckDB ``read_parquet('DIR/person/*.parquet')``. With ``format="csv"`` it is one
``person.csv`` per table; with ``"sqlite"``, ``cohort.sqlite`` and ``truth/truth.sqlite``.

:func:`write_cohort` streams chunk by chunk (memory stays flat for millions of patients).
For Parquet, worker processes generate *and* write their own parts, so the work scales with
cores; the same seed and versions give byte-identical files whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from synthetic_data import cohort as _cohort
from synthetic_data import omop
from synthetic_data.defects import LOG_COLUMNS, conform_log

FORMATS = ("parquet", "csv", "sqlite")
_SQLITE_MAIN, _SQLITE_TRUTH = "cohort.sqlite", "truth.sqlite"


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}; got {format!r}")
    return format


class _Sink:
    """Appends DataFrames to one table file per name, in the chosen format."""

    def __init__(self, directory: Path, format: str, sqlite_name: str):
        self.dir, self.format = directory, format
        self.dir.mkdir(parents=True, exist_ok=True)
        self._writers: dict = {}
        self._db = None
        if format == "sqlite":
            path = self.dir / sqlite_name
            path.unlink(missing_ok=True)
            self._db = sqlite3.connect(path)

    def write(self, name: str, df: pd.DataFrame, part: int = 0) -> None:
        if self.format == "parquet":
            _write_part(self.dir / name, part, df)
        elif self.format == "csv":
            path = self.dir / f"{name}.csv"
            first = name not in self._writers
            self._writers[name] = True
            out = df.copy()
            for col in out.columns:
                if str(out[col].dtype) == omop.DATE:
                    out[col] = out[col].dt.strftime("%Y-%m-%d")
            out.to_csv(path, mode="w" if first else "a", header=first, index=False,
                       lineterminator="\n")
        else:
            out = df.copy()
            for col in out.columns:
                if str(out[col].dtype) == omop.DATE:
                    out[col] = out[col].dt.strftime("%Y-%m-%d")
                elif str(out[col].dtype) == "bool":
                    out[col] = out[col].astype("int64")
            out.to_sql(name, self._db, if_exists="append", index=False)

    def close(self) -> None:
        if self._db is not None:
            self._db.commit()
            self._db.execute("VACUUM")
            self._db.close()


def _write_part(directory: Path, part: int, df: pd.DataFrame) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False),
                   directory / f"part-{part:05d}.parquet", compression="zstd")


def _emit(main: _Sink, truth: _Sink, tables: dict, truth_tables: dict, log: pd.DataFrame,
          latent: pd.DataFrame, part: int = 0) -> None:
    for name, df in tables.items():
        main.write(name, df, part)
    main.write("defects", log, part)
    for name, df in truth_tables.items():
        truth.write(name, df, part)
    truth.write("latent", latent, part)


def _summary(chunk: _cohort.Chunk) -> dict:
    """What the writer needs to know of a chunk once its rows are on disk."""
    kinds = chunk.defects.drop_duplicates(["kind", "table", "row_key"]).groupby("kind").size()
    return {
        "patients": len(chunk.latent),
        "counts": {t: len(df) for t, df in chunk.tables.items()},
        "truth_counts": {t: len(df) for t, df in chunk.truth.items()},
        "kinds": {k: int(v) for k, v in kinds.items()},
    }


def _generate_parquet_part(spec: dict, entropy: int, index: int, out: str) -> dict:
    """Worker task: generate chunk ``index`` and write it as part ``index`` of every table."""
    chunk = _cohort.generate_chunk(spec, entropy, index)
    root = Path(out)
    main, truth = _Sink(root, "parquet", ""), _Sink(root / "truth", "parquet", "")
    _emit(main, truth, chunk.tables, chunk.truth, chunk.defects, chunk.latent, part=index)
    return _summary(chunk)


def _generate_chunk(spec: dict, entropy: int, index: int, out: str) -> _cohort.Chunk:
    return _cohort.generate_chunk(spec, entropy, index)


def _finish(out: Path, format: str, manifest: dict, parameters: dict) -> dict:
    (out / "truth" / "parameters.json").write_text(json.dumps(parameters, indent=2,
                                                              sort_keys=True) + "\n")
    # "checksums" of a cohort on disk are the SHA-256 of its files (an in-memory cohort's
    # manifest carries content checksums of its tables instead).
    manifest = dict(manifest, format=format, checksums=_file_hashes(out))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _file_hashes(out: Path) -> dict[str, str]:
    hashes = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            hashes[p.relative_to(out).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return hashes


def save(cohort: _cohort.Cohort, path, format: str = "parquet") -> dict:
    """Write an in-memory ``cohort`` to directory ``path``; return the manifest written."""
    _check_format(format)
    out = Path(path)
    main = _Sink(out, format, _SQLITE_MAIN)
    truth = _Sink(out / "truth", format, _SQLITE_TRUTH)
    try:
        _emit(main, truth, cohort.tables, cohort.truth.tables, cohort.defects,
              cohort.truth.latent)
    finally:
        main.close()
        truth.close()
    return _finish(out, format, cohort.manifest, cohort.truth.parameters)


def _in_order(task: Callable, spec: dict, entropy: int, out: str, workers: int) -> Iterator:
    """``task(spec, entropy, i, out)`` for every chunk ``i``, results yielded in chunk order.

    With ``workers > 1`` the tasks run ahead in worker processes, at most ``workers + 1`` in
    flight, so memory stays flat while this process consumes the results.
    """
    total = _cohort.n_chunks(spec["n_patients"])
    if workers <= 1 or total == 1:
        for i in range(total):
            yield task(spec, entropy, i, out)
        return
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        next_index = 0
        while next_index < total or pending:
            while next_index < total and len(pending) <= workers:
                pending.append(pool.submit(task, spec, entropy, next_index, out))
                next_index += 1
            yield pending.popleft().result()


def write_cohort(path, n_patients: int = 5000, *, sites: int = 3,
                 start: str = _cohort.DEFAULT_START, end: str = _cohort.DEFAULT_END,
                 defects: str | dict | None = "default", random_state: int | None = None,
                 format: str = "parquet", workers: int = 1,
                 progress: Callable[[int, int], None] | bool = False) -> dict:
    """Generate a cohort straight to disk, one chunk of patients at a time.

    Same parameters as :func:`synthetic_data.make_cohort`, plus ``format`` ("parquet", "csv"
    or "sqlite"), ``workers`` (processes generating chunks in parallel) and ``progress``
    (True for a tqdm bar, or a callback ``f(done, total)``). Memory stays at a few chunks
    whatever ``n_patients``. Returns the manifest, also written to ``path/manifest.json``.
    """
    _check_format(format)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
    spec = _cohort.check_spec(n_patients, sites, start, end, defects)
    entropy = _cohort._entropy(random_state)
    out = Path(path)
    total = _cohort.n_chunks(spec["n_patients"])
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=spec["n_patients"], unit="patient", unit_scale=True,
                   desc="generating cohort")
    fixed = _cohort.fixed_tables(spec)
    main = _Sink(out, format, _SQLITE_MAIN)
    truth = _Sink(out / "truth", format, _SQLITE_TRUTH)
    counts = {t: 0 for t in omop.TABLES}
    truth_counts = dict(counts)
    kinds: dict[str, int] = {}
    task = _generate_parquet_part if format == "parquet" else _generate_chunk
    try:
        for name in ("care_site", "concept"):
            main.write(name, fixed[name])
            truth.write(name, fixed[name])
            counts[name] = truth_counts[name] = len(fixed[name])
        for done, result in enumerate(_in_order(task, spec, entropy, str(out), workers), 1):
            if isinstance(result, _cohort.Chunk):  # csv / sqlite: this process writes
                _emit(main, truth, result.tables, result.truth, result.defects, result.latent)
                result = _summary(result)
            for t, n in result["counts"].items():
                counts[t] += n
                truth_counts[t] += result["truth_counts"][t]
            for k, v in result["kinds"].items():
                kinds[k] = kinds.get(k, 0) + v
            if bar is not None:
                bar.update(result["patients"])
            elif callable(progress):
                progress(done, total)
    finally:
        main.close()
        truth.close()
        if bar is not None:
            bar.close()
    manifest = {
        "generator": "synthetic_data",
        "version": _cohort.GENERATOR_VERSION,
        "seed": entropy,
        "spec": spec,
        "chunk_patients": _cohort.CHUNK_PATIENTS,
        "counts": counts,
        "truth_counts": truth_counts,
        "defect_counts": dict(sorted(kinds.items())),
    }
    return _finish(out, format, manifest, _cohort.all_parameters(spec))


def _read(directory: Path, name: str, format: str) -> pd.DataFrame:
    if format == "parquet":
        parts = sorted((directory / name).glob("part-*.parquet"))
        if not parts:
            raise FileNotFoundError(f"cohort table missing: no {directory / name}/part-*.parquet")
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    if format == "csv":
        path = directory / f"{name}.csv"
        if not path.exists():
            raise FileNotFoundError(f"cohort file missing: {path}")
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    db = directory / (_SQLITE_TRUTH if directory.name == "truth" else _SQLITE_MAIN)
    if not db.exists():
        raise FileNotFoundError(f"cohort file missing: {db}")
    with sqlite3.connect(db) as con:
        return pd.read_sql(f'SELECT * FROM "{name}"', con)


def _typed(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Cast a table read back from disk to the schema's dtypes."""
    for col, dtype in omop.SCHEMA[table]:
        if dtype == omop.STR:
            df[col] = df[col].astype(object).where(df[col].notna(), None).astype(omop.STR)
    return omop.conform(df, table)


def _typed_latent(df: pd.DataFrame) -> pd.DataFrame:
    for col in df.columns:
        if col.endswith("_date") or col in ("observation_start", "observation_end"):
            df[col] = pd.to_datetime(df[col]).astype(omop.DATE)
        elif col in ("person_id", "care_site_id"):
            df[col] = df[col].astype("int64")
        elif col in _cohort.LATENT_BOOL_COLUMNS:
            df[col] = df[col].astype(bool)
    return df


def load_cohort(path) -> _cohort.Cohort:
    """Read a cohort directory written by :func:`write_cohort` or ``Cohort.save``."""
    root = Path(path)
    mpath = root / "manifest.json"
    if not mpath.exists():
        raise FileNotFoundError(f"{root} is not a cohort directory: no manifest.json in it")
    manifest = json.loads(mpath.read_text())
    format = _check_format(manifest.get("format", "parquet"))
    tables = {t: _typed(_read(root, t, format), t) for t in omop.TABLES}
    truth = {t: _typed(_read(root / "truth", t, format), t) for t in omop.TABLES}
    log = _read(root, "defects", format)
    for col in LOG_COLUMNS:
        if col not in log.columns:
            raise ValueError(f"{root}: defect log lacks column {col!r}")
    log = conform_log(log.astype({c: object for c in log.columns if log[c].dtype != "int64"})
                      .where(log.notna(), None))
    latent = _typed_latent(_read(root / "truth", "latent", format))
    params_path = root / "truth" / "parameters.json"
    parameters = json.loads(params_path.read_text()) if params_path.exists() else {}
    return _cohort.Cohort(tables=tables,
                          truth=_cohort.Truth(tables=truth, latent=latent,
                                              parameters=parameters),
                          defects=log, manifest=manifest)


def summarise(manifest: dict) -> str:
    """A short human-readable summary of a cohort manifest (used by the CLI and the demo)."""
    spec = manifest["spec"]
    lines = [f"cohort: {spec['n_patients']:,} patients, {spec['sites']} sites, "
             f"{spec['start']} .. {spec['end']}, seed {manifest['seed']}"]
    for t, n in manifest["counts"].items():
        lines.append(f"  {t:<22}{n:>12,} rows")
    total = sum(manifest.get("defect_counts", {}).values())
    lines.append(f"  defects logged: {total:,} ("
                 + ", ".join(f"{k} {v:,}" for k, v in manifest.get("defect_counts", {}).items())
                 + ")")
    return "\n".join(lines)


__all__ = ["FORMATS", "load_cohort", "save", "summarise", "write_cohort"]
