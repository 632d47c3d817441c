"""Linkage quality: link rates, match probabilities and, given the synthetic ICS's truth folder,
precision, recall and F1 overall, by source and by age band, sex, ethnicity and IMD quintile.

A record is correctly linked when the person it was linked to is, by majority of that person's
records, the record's true person. Precision = correct links / records linked to someone;
recall = correct links / all records. Linkage bias (worse linkage for some groups) is a known
hazard, so the same figures are broken down by group.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from openphm.engine.duckdb_store import lit


def link_rates(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per source: records, linked to a registered person by NHS number or probabilistically, unlinked."""
    return con.execute("""
        SELECT source, count(*) AS records,
               count(*) FILTER (WHERE method = 'nhs_number') AS by_nhs_number,
               count(*) FILTER (WHERE method = 'probabilistic') AS probabilistic,
               count(*) FILTER (WHERE method = 'native_key') AS by_source_person_id,
               count(*) FILTER (WHERE method = 'unlinked') AS unlinked,
               round(100.0 * count(*) FILTER (WHERE method <> 'unlinked') / count(*), 2) AS link_rate_pct
        FROM link.record_person GROUP BY source ORDER BY source""").pl()


def probability_distribution(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Probabilistic links by band of match probability."""
    return con.execute("""
        SELECT CASE WHEN match_probability >= 0.999 THEN '0.999+' WHEN match_probability >= 0.99 THEN '0.99-0.999'
                    WHEN match_probability >= 0.95 THEN '0.95-0.99' ELSE 'below 0.95' END AS match_probability,
               count(*) AS records
        FROM link.record_person WHERE method = 'probabilistic' GROUP BY 1 ORDER BY 1 DESC""").pl()


def _load_truth(con: duckdb.DuckDBPyConnection, truth: Path) -> None:
    def scan(path: Path) -> str:
        parquet = sorted(path.rglob("*.parquet"))
        files = parquet or sorted(path.rglob("*.csv"))
        fn = "read_parquet" if parquet else "read_csv_auto"
        return f"{fn}([{', '.join(lit(str(f)) for f in files)}])"

    parts = []
    for folder in sorted((truth / "records").iterdir()):
        if folder.is_dir():
            parts.append(f"SELECT {lit(folder.name)} AS source, CAST(record_id AS VARCHAR) AS record_id, "
                         f"CAST(person_id AS BIGINT) AS true_person FROM {scan(folder)}")
    con.execute("CREATE OR REPLACE TEMP TABLE truth_records AS " + " UNION ALL ".join(parts))
    people = truth / "people"
    src = scan(people) if people.is_dir() else (
        f"read_parquet({lit(str(people.with_suffix('.parquet')))})" if people.with_suffix(".parquet").exists()
        else f"read_csv_auto({lit(str(people.with_suffix('.csv')))})")
    con.execute(f"CREATE OR REPLACE TEMP TABLE truth_people AS SELECT CAST(person_id AS BIGINT) AS true_person, "
                f"CAST(date_of_birth AS DATE) AS dob, sex, ethnic_category FROM {src}")


def accuracy(con: duckdb.DuckDBPyConnection, truth: Path) -> dict[str, pl.DataFrame]:
    """Precision, recall and F1 overall, by source and by group, against the truth folder."""
    _load_truth(con, truth)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE scored AS
        WITH rec AS (
            SELECT l.source, l.person_id, l.method, t.true_person, i.postcode, i.date_of_birth
            FROM link.record_person l
            JOIN idn.identity.records i USING (source, file_id, row_number)
            JOIN truth_records t ON t.source = l.source AND t.record_id = i.record_id),
        majority AS (
            SELECT person_id, arg_max(true_person, n) AS cluster_person
            FROM (SELECT person_id, true_person, count(*) AS n FROM rec GROUP BY 1, 2) GROUP BY 1)
        SELECT rec.*, (rec.method <> 'unlinked') AS linked,
               (rec.method <> 'unlinked' AND m.cluster_person = rec.true_person) AS correct,
               tp.sex AS true_sex,
               CASE WHEN tp.ethnic_category IN ('A', 'B', 'C') THEN 'White'
                    WHEN tp.ethnic_category IN ('D', 'E', 'F', 'G') THEN 'Mixed'
                    WHEN tp.ethnic_category IN ('H', 'J', 'K', 'L') THEN 'Asian'
                    WHEN tp.ethnic_category IN ('M', 'N', 'P') THEN 'Black'
                    WHEN tp.ethnic_category IN ('R', 'S') THEN 'Other' ELSE 'Not stated' END AS ethnic_group,
               CASE WHEN date_diff('year', tp.dob, DATE '2024-01-01') < 18 THEN '0-17'
                    WHEN date_diff('year', tp.dob, DATE '2024-01-01') < 45 THEN '18-44'
                    WHEN date_diff('year', tp.dob, DATE '2024-01-01') < 65 THEN '45-64'
                    WHEN date_diff('year', tp.dob, DATE '2024-01-01') < 80 THEN '65-79' ELSE '80+' END AS age_band,
               CAST(ceil(CAST(imd.imd_decile AS INTEGER) / 2.0) AS INTEGER) AS imd_quintile
        FROM rec JOIN majority m USING (person_id)
        JOIN truth_people tp ON tp.true_person = rec.true_person
        LEFT JOIN reference.postcode_lsoa pl ON pl.postcode_key = upper(replace(rec.postcode, ' ', ''))
        LEFT JOIN reference.lsoa_imd2019 imd ON imd.lsoa_code = pl.lsoa_code""")

    def metrics(by: str | None) -> pl.DataFrame:
        group = f"{by}, " if by else ""
        sql = f"""
            SELECT {group}count(*) AS records, sum(linked::INT) AS linked, sum(correct::INT) AS correct,
                   round(sum(correct::INT) / greatest(sum(linked::INT), 1), 4) AS precision,
                   round(sum(correct::INT) / count(*), 4) AS recall
            FROM scored {'GROUP BY ' + by + ' ORDER BY ' + by if by else ''}"""
        frame = con.execute(sql).pl()
        return frame.with_columns((2 * pl.col("precision") * pl.col("recall")
                                   / (pl.col("precision") + pl.col("recall"))).round(4).alias("f1"))

    result = {"overall": metrics(None), "source": metrics("source"), "age_band": metrics("age_band"),
              "sex": metrics("true_sex"), "ethnic_group": metrics("ethnic_group"),
              "imd_quintile": metrics("imd_quintile")}
    for temp in ("scored", "truth_records", "truth_people"):
        con.execute(f"DROP TABLE IF EXISTS {temp}")  # scored holds postcodes and dates of birth
    return result


def true_person_map(con: duckdb.DuckDBPyConnection, truth: Path) -> pl.DataFrame:
    """For a synthetic ICS: each record person_id and the true person most of its records belong to
    (needs the identity store attached as `idn`; for scoring models against the truth only)."""
    _load_truth(con, truth)
    frame = con.execute("""
        SELECT CAST(person_id AS VARCHAR) AS person_id, arg_max(true_person, n) AS true_person
        FROM (SELECT l.person_id, t.true_person, count(*) AS n
              FROM link.record_person l JOIN idn.identity.records i USING (source, file_id, row_number)
              JOIN truth_records t ON t.source = l.source AND t.record_id = i.record_id
              GROUP BY 1, 2)
        GROUP BY 1""").pl()
    con.execute("DROP TABLE truth_records; DROP TABLE truth_people")
    return frame
