"""Reading and writing cohorts: Parquet, CSV or SQLite, readable by pandas and DuckDB.

Layout of a cohort directory::

    manifest.json                 version, seed, spec, row counts, checksums, file hashes
    person.parquet ...            the OMOP tables (with defects) — what residents get
    defects.parquet               the defect log                 } instructor side: keep
    truth/person.parquet ...      clean tables, latent.parquet,  } these out of residents'
    truth/parameters.json         the model parameters           } reach

(``.csv`` files, or ``cohort.sqlite`` + ``truth/truth.sqlite`` for ``format="sqlite"``.)

:func:`write_cohort` streams chunk by chunk (memory stays flat for millions of patients);
the same seed and versions give byte-identical files, whatever the number of workers.
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

    def write(self, name: str, df: pd.DataFrame) -> None:
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            w = self._writers.get(name)
            if w is None:
                w = pq.ParquetWriter(self.dir / f"{name}.parquet", table.schema,
                                     compression="zstd")
                self._writers[name] = w
            w.write_table(table)
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
        if self.format == "parquet":
            for w in self._writers.values():
                w.close()
        elif self._db is not None:
            self._db.commit()
            self._db.execute("VACUUM")
            self._db.close()


def _emit(main: _Sink, truth: _Sink, tables: dict, truth_tables: dict, log: pd.DataFrame,
          latent: pd.DataFrame) -> None:
    for name, df in tables.items():
        main.write(name, df)
    main.write("defects", log)
    for name, df in truth_tables.items():
        truth.write(name, df)
    truth.write("latent", latent)


def _finish(out: Path, format: str, manifest: dict, parameters: dict) -> dict:
    (out / "truth" / "parameters.json").write_text(json.dumps(parameters, indent=2,
                                                              sort_keys=True) + "\n")
    manifest = dict(manifest, format=format, files=_file_hashes(out))
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


def _chunk_results(spec: dict, entropy: int, workers: int) -> Iterator[_cohort.Chunk]:
    total = _cohort.n_chunks(spec["n_patients"])
    if workers <= 1 or total == 1:
        for i in range(total):
            yield _cohort.generate_chunk(spec, entropy, i)
        return
    from concurrent.futures import ProcessPoolExecutor

    # Chunks come back in order (map keeps order), so files do not depend on worker count.
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_cohort.generate_chunk, [spec] * total, [entropy] * total,
                            range(total))


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
    digests = {t: hashlib.sha256() for t in omop.TABLES}
    try:
        for name in ("care_site", "concept"):
            main.write(name, fixed[name])
            truth.write(name, fixed[name])
            counts[name] = truth_counts[name] = len(fixed[name])
            digests[name].update(_cohort.table_checksum(fixed[name]).encode())
        for done, chunk in enumerate(_chunk_results(spec, entropy, workers), start=1):
            _emit(main, truth, chunk.tables, chunk.truth, chunk.defects, chunk.latent)
            for t, df in chunk.tables.items():
                counts[t] += len(df)
                truth_counts[t] += len(chunk.truth[t])
                digests[t].update(_cohort.table_checksum(df).encode())
            for k, v in chunk.defects.drop_duplicates(["kind", "table", "row_key"]) \
                    .groupby("kind").size().items():
                kinds[k] = kinds.get(k, 0) + int(v)
            if bar is not None:
                bar.update(len(chunk.latent))
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
        # per-table digest of the chunks' content checksums (streaming cannot hash whole tables)
        "checksums": {t: d.hexdigest() for t, d in digests.items()},
    }
    return _finish(out, format, manifest, _cohort.all_parameters(spec))


def _read(directory: Path, name: str, format: str) -> pd.DataFrame:
    if format == "parquet":
        path = directory / f"{name}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"cohort file missing: {path}")
        return pd.read_parquet(path)
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
