"""Readers of a synthetic ICS's truth folder, for the command line to hand the platform as plain frames.

The truth (`openphm.synth.truth` and the extract writers) is the generator's: who each record really
belongs to, each person's true details and their true yearly risk. Scoring linkage and the risk
model against it needs it, but no platform module reads it or knows its layout; the command reads
it here and passes the frames on (`openphm.identity.report.accuracy`,
`openphm.risk.train.train_and_report`). The truth's own person id is called `true_person` in every
frame, so that it is never taken for the platform's `person_id`.

A table is one file (`<name>.parquet` or `<name>.csv`) or a folder of parts (Parquet preferred);
CSV columns are read as text and typed here.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl


class TruthError(ValueError):
    """The folder is not (or not all of) a synthetic ICS's truth."""


def _parts(folder: Path, pattern: str = "*") -> list[Path]:
    parquet = sorted(folder.rglob(f"{pattern}.parquet"))
    return parquet or sorted(folder.rglob(f"{pattern}.csv"))


def _scan(files: list[Path]) -> pl.LazyFrame:
    if files[0].suffix == ".parquet":
        return pl.scan_parquet(files)
    return pl.concat([pl.scan_csv(f, infer_schema_length=0) for f in files])


def _table(path: Path) -> pl.LazyFrame | None:
    """`path` as a folder of parts, else `path`.parquet, else `path`.csv; None when there is none."""
    files = _parts(path) if path.is_dir() else [p for p in (path.with_suffix(".parquet"), path.with_suffix(".csv"))
                                                 if p.exists()][:1]
    return _scan(files) if files else None


def _date(column: str, schema: pl.Schema) -> pl.Expr:
    if schema[column] == pl.String:
        return pl.col(column).str.to_date("%Y-%m-%d", strict=False)
    return pl.col(column).cast(pl.Date)


def true_records(truth: Path) -> pl.DataFrame:
    """The true person behind every source record: `source` (the extract's source, e.g. apc),
    `record_id` (as the extract gives it) and `true_person`."""
    records = truth / "records"
    if not records.is_dir():
        raise TruthError(f"{truth} is not a truth folder (no records/ inside)")
    parts = [_scan(files).select(pl.lit(folder.name).alias("source"), pl.col("record_id").cast(pl.String),
                                 pl.col("person_id").cast(pl.Int64).alias("true_person"))
             for folder in sorted(records.iterdir()) if folder.is_dir() and (files := _parts(folder))]
    if not parts:
        raise TruthError(f"{truth}: no record files in records/")
    return pl.concat(parts).collect()


def true_people(truth: Path) -> pl.DataFrame:
    """Every true person: `true_person`, `date_of_birth`, `exit_date` (death or leaving; null while
    still in the ICS), `sex` and `ethnic_category`."""
    people = _table(truth / "people")
    if people is None:
        raise TruthError(f"{truth}: no people truth file")
    schema = people.collect_schema()
    return people.select(pl.col("person_id").cast(pl.Int64).alias("true_person"), _date("date_of_birth", schema),
                         _date("exit_date", schema), pl.col("sex").cast(pl.String),
                         pl.col("ethnic_category").cast(pl.String)).collect()


def true_yearly_risk(truth: Path) -> pl.DataFrame:
    """Each true person's risk of an emergency admission in each financial year (e.g. 2023-24), as
    the generator drew it: `true_person`, `financial_year`, `risk_of_emergency_admission`."""
    risk = _table(truth / "person_year_risk")
    if risk is None:
        raise TruthError(f"{truth}: no person_year_risk truth file")
    return risk.select(pl.col("person_id").cast(pl.Int64).alias("true_person"),
                       pl.col("financial_year").cast(pl.String),
                       pl.col("risk_of_emergency_admission").cast(pl.Float64)).collect()
