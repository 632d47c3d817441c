"""Linkage quality: link rates, match probabilities and, given the truth as plain frames (who each
record really belongs to, and those people; for a synthetic ICS the command reads them with
`openphm.synth.truth_readers`, and this module knows nothing of where they come from),
record-level and person-level quality overall, by source and by age band, sex, ethnicity and IMD
quintile.

Record level: a record is correctly linked when the person it was linked to is, by majority of
that person's records, the record's true person. Precision = correct links / records linked to
someone; recall = correct links / all records.

Person level (what an analyst counting people sees):
- split: the share of true people whose records sit in more than one record person. By source,
  the share of true people with records from the source some of which sit outside the person's
  main record person (the one holding most of their records, ties to the smallest id);
- merged: the share of record persons holding the records of more than one true person (by
  source: of record persons with a record from the source);
- pairwise precision, recall and F1 over all pairs of records: a pair is linked when both records
  are in one record person, true when both belong to one true person. Pairs are counted within
  clusters (n records give n(n-1)/2 pairs), never enumerated; by group, over the pairs with at
  least one record in the group.
Groups other than source are the true person's: sex and ethnic group from the truth, age on the
last day the data cover (the latest end of the active files' periods), or on leaving for people
who died or left before it (the date is in the `age_at` column), and the IMD quintile of the
postcode most of their records give. Linkage bias (worse linkage for some groups) is a known
hazard, so every figure is broken down by group.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import polars as pl

from openphm.domain import broad_age_band, ethnic_group
from openphm.engine.connection import Connection
from openphm.engine.duckdb_store import ident, lit
from openphm.identity import store as identity_store

GROUPS = {"overall": None, "source": "source", "age_band": "age_band", "sex": "true_sex",
          "ethnic_group": "ethnic_group", "imd_quintile": "imd_quintile"}


def link_rates(con: Connection) -> pl.DataFrame:
    """Per source: records, linked to a registered person by NHS number or probabilistically, by the
    source's own person id, clustered with other records that reach no registered person, unlinked."""
    return con.execute("""
        SELECT source, count(*) AS records,
               count(*) FILTER (WHERE method = 'nhs_number') AS by_nhs_number,
               count(*) FILTER (WHERE method = 'probabilistic') AS probabilistic,
               count(*) FILTER (WHERE method = 'native_key') AS by_source_person_id,
               count(*) FILTER (WHERE method = 'clustered') AS clustered,
               count(*) FILTER (WHERE method = 'unlinked') AS unlinked,
               CAST(round(100.0 * count(*) FILTER (WHERE method <> 'unlinked') / count(*), 2) AS DOUBLE)
                   AS link_rate_pct
        FROM link.record_person GROUP BY source ORDER BY source""").pl()


def probability_distribution(con: Connection) -> pl.DataFrame:
    """Probabilistic links by band of match probability."""
    return con.execute("""
        SELECT CASE WHEN match_probability >= 0.999 THEN '0.999+' WHEN match_probability >= 0.99 THEN '0.99-0.999'
                    WHEN match_probability >= 0.95 THEN '0.95-0.99' ELSE 'below 0.95' END AS match_probability,
               count(*) AS records
        FROM link.record_person WHERE method = 'probabilistic' GROUP BY 1 ORDER BY 1 DESC""").pl()


def period_end(period: str | None) -> dt.date | None:
    """The last day of a file's period: a financial year (2025-26 -> 2026-03-31) or a snapshot date."""
    if not period:
        return None
    m = re.fullmatch(r"(\d{4})-(\d{2})", period)
    if m and int(m.group(2)) == (int(m.group(1)) + 1) % 100:
        return dt.date(int(m.group(1)) + 1, 3, 31)
    try:
        return dt.date.fromisoformat(period)
    except ValueError:
        return None


def coverage_end(con: Connection) -> dt.date | None:
    """The last day the active extracts cover: the latest end of their periods (financial years or
    snapshot dates), or, when no file names a period, the latest activity date in them (dates of
    birth aside)."""
    ends = [period_end(p) for (p,) in con.execute(
        "SELECT DISTINCT period FROM ingest.manifest WHERE status = 'active'").fetchall()]
    if any(ends):
        return max(e for e in ends if e)
    columns = con.execute("""
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'raw' AND data_type = 'DATE' AND column_name NOT LIKE '%birth%'
        ORDER BY 1, 2""").fetchall()
    if not columns:
        return None
    parts = [f"SELECT max({ident(c)}) AS d FROM raw.{ident(t)} WHERE file_id IN "
             "(SELECT file_id FROM ingest.manifest WHERE status = 'active')" for t, c in columns]
    return con.execute(f"SELECT max(d) FROM ({' UNION ALL '.join(parts)})").fetchone()[0]


@contextmanager
def _truth_views(con: Connection, records: pl.DataFrame, people: pl.DataFrame | None = None) -> Iterator[None]:
    """The truth as the views `truth_records` (source, record_id, true_person) and, when given,
    `truth_people` (true_person, dob, exit_date, sex, ethnic_category), for the length of the block."""
    views = {"truth_records": records.select(pl.col("source").cast(pl.String), pl.col("record_id").cast(pl.String),
                                             pl.col("true_person").cast(pl.Int64))}
    if people is not None:
        views["truth_people"] = people.select(
            pl.col("true_person").cast(pl.Int64), pl.col("date_of_birth").cast(pl.Date).alias("dob"),
            pl.col("exit_date").cast(pl.Date), pl.col("sex").cast(pl.String), pl.col("ethnic_category").cast(pl.String))
    for name, frame in views.items():
        con.register(name, frame)
    try:
        yield
    finally:
        for name in views:
            con.unregister(name)


def _score_records(con: Connection, age_at: dt.date) -> None:
    """Temp table `scored`: one row per record with its record person, true person, whether it is
    linked and correct, and the true person's groups."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE scored AS
        WITH rec AS (
            SELECT l.source, l.person_id, l.method, t.true_person, i.postcode
            FROM link.record_person l
            JOIN {identity_store.records_sql()} i USING (source, file_id, row_number)
            JOIN truth_records t ON t.source = l.source AND t.record_id = i.record_id),
        majority AS (
            SELECT person_id, first(true_person ORDER BY n DESC, true_person) AS cluster_person
            FROM (SELECT person_id, true_person, count(*) AS n FROM rec GROUP BY 1, 2) GROUP BY 1),
        imd AS (
            SELECT rec.true_person, CAST(ceil(CAST(imd.imd_decile AS INTEGER) / 2.0) AS INTEGER) AS q, count(*) AS n
            FROM rec JOIN reference.postcode_lsoa pl ON pl.postcode_key = upper(replace(rec.postcode, ' ', ''))
            JOIN reference.lsoa_imd2019 imd ON imd.lsoa_code = pl.lsoa_code GROUP BY 1, 2),
        person_imd AS (SELECT true_person, first(q ORDER BY n DESC, q) AS imd_quintile FROM imd GROUP BY 1),
        person AS (
            SELECT true_person, sex AS true_sex, date_sub('year', dob, least(DATE {lit(age_at.isoformat())},
                                                                      coalesce(exit_date, DATE '9999-12-31'))) AS age,
                   {ethnic_group('ethnic_category')} AS ethnic_group
            FROM truth_people)
        SELECT rec.source, rec.person_id, rec.true_person, (rec.method <> 'unlinked') AS linked,
               (rec.method <> 'unlinked' AND m.cluster_person = rec.true_person) AS correct,
               p.true_sex, p.ethnic_group,
               {broad_age_band('p.age')} AS age_band,
               pi.imd_quintile
        FROM rec JOIN majority m USING (person_id)
        JOIN person p ON p.true_person = rec.true_person
        LEFT JOIN person_imd pi ON pi.true_person = rec.true_person""")


def _c2(n: str) -> str:
    """SQL: n(n-1)/2, the pairs among n records."""
    return f"(CAST({n} AS BIGINT) * (CAST({n} AS BIGINT) - 1) // 2)"


def group_metrics(con: Connection, table: str, by: str | None) -> pl.DataFrame:
    """Record- and person-level quality by `by` (a column of `table`, or None for overall) over a
    table of records with person_id (record person), true_person, linked and correct."""
    g = by or "'all'"
    sql = f"""
    WITH r AS (SELECT {g} AS g, person_id, true_person, linked, correct FROM {table}),
    cell_all AS (SELECT person_id, true_person, count(*) AS n FROM {table} GROUP BY 1, 2),
    main AS (SELECT true_person, first(person_id ORDER BY n DESC, person_id) AS main_person FROM cell_all GROUP BY 1),
    persons AS (SELECT person_id, count(*) AS people, sum(n) AS n FROM cell_all GROUP BY 1),
    trues AS (SELECT true_person, sum(n) AS n FROM cell_all GROUP BY 1),
    records AS (SELECT g, count(*) AS records, count(*) FILTER (WHERE linked) AS linked,
                       count(*) FILTER (WHERE correct) AS correct FROM r GROUP BY 1),
    split AS (SELECT r.g, count(DISTINCT r.true_person) AS true_people,
                     count(DISTINCT r.true_person) FILTER (WHERE r.person_id <> m.main_person) AS split_people
              FROM r JOIN main m USING (true_person) GROUP BY 1),
    merged AS (SELECT r.g, count(DISTINCT r.person_id) AS record_persons,
                      count(DISTINCT r.person_id) FILTER (WHERE p.people > 1) AS merged_persons
               FROM r JOIN persons p USING (person_id) GROUP BY 1),
    pair_tp AS (SELECT c.g, sum({_c2('a.n')} - {_c2('a.n - c.n')}) AS pairs_correct
                FROM (SELECT g, person_id, true_person, count(*) AS n FROM r GROUP BY ALL) c
                JOIN cell_all a USING (person_id, true_person) GROUP BY 1),
    pair_linked AS (SELECT c.g, sum({_c2('p.n')} - {_c2('p.n - c.n')}) AS pairs_linked
                    FROM (SELECT g, person_id, count(*) AS n FROM r GROUP BY ALL) c
                    JOIN persons p USING (person_id) GROUP BY 1),
    pair_true AS (SELECT c.g, sum({_c2('t.n')} - {_c2('t.n - c.n')}) AS pairs_true
                  FROM (SELECT g, true_person, count(*) AS n FROM r GROUP BY ALL) c
                  JOIN trues t USING (true_person) GROUP BY 1)
    SELECT g AS {ident(by or 'group')}, CAST(records AS BIGINT) AS records, CAST(linked AS BIGINT) AS linked,
           CAST(correct AS BIGINT) AS correct,
           round(correct / greatest(linked, 1), 4) AS precision, round(correct / records, 4) AS recall,
           CAST(true_people AS BIGINT) AS true_people, CAST(split_people AS BIGINT) AS split_people,
           round(split_people / true_people, 5) AS split_share,
           CAST(record_persons AS BIGINT) AS record_persons, CAST(merged_persons AS BIGINT) AS merged_persons,
           round(merged_persons / record_persons, 5) AS merged_share,
           CAST(pairs_true AS BIGINT) AS pairs_true, CAST(pairs_linked AS BIGINT) AS pairs_linked,
           CAST(pairs_correct AS BIGINT) AS pairs_correct,
           CAST(pairs_correct AS DOUBLE) / nullif(pairs_linked, 0) AS pair_precision,
           CAST(pairs_correct AS DOUBLE) / nullif(pairs_true, 0) AS pair_recall
    FROM records JOIN split USING (g) JOIN merged USING (g) JOIN pair_tp USING (g) JOIN pair_linked USING (g)
    JOIN pair_true USING (g)
    ORDER BY g"""
    frame = con.execute(sql).pl()
    frame = frame.with_columns(
        (2 * pl.col("precision") * pl.col("recall") / (pl.col("precision") + pl.col("recall"))).round(4).alias("f1"),
        (2 * pl.col("pair_precision") * pl.col("pair_recall") / (pl.col("pair_precision") + pl.col("pair_recall")))
        .round(5).alias("pair_f1"),
        pl.col("pair_precision").round(5), pl.col("pair_recall").round(5))
    columns = [c for c in frame.columns if c not in ("f1", "pair_f1")]
    at = columns.index("recall") + 1
    frame = frame.select([*columns[:at], "f1", *columns[at:], "pair_f1"])
    return frame if by else frame.drop("group")


RECORD_COLUMNS = ["records", "linked", "correct", "precision", "recall", "f1"]
PERSON_COLUMNS = ["true_people", "split_share", "record_persons", "merged_share", "pair_precision", "pair_recall",
                  "pair_f1"]
COUNT_COLUMNS = ["true_people", "split_people", "record_persons", "merged_persons", "pairs_true", "pairs_linked",
                 "pairs_correct"]


def accuracy(con: Connection, true_records: pl.DataFrame, true_people: pl.DataFrame,
             age_at: dt.date | None = None) -> dict[str, pl.DataFrame]:
    """Quality against the truth: `true_records` gives the true person of each source record (`source`,
    `record_id`, `true_person`), `true_people` each true person's `true_person`, `date_of_birth`,
    `exit_date` (null while present), `sex` and `ethnic_category`. Returns record level (`overall`,
    `source`, `age_band`, `sex`, `ethnic_group`, `imd_quintile`), person level by the same groups
    (`people_overall`, `people_source`, ...) and the overall counts behind the person-level shares
    (`people_counts`). Ages are taken on `age_at` (default: the last day the data cover), stated in
    the age_band frame."""
    age_at = age_at or coverage_end(con) or dt.date.today()
    with _truth_views(con, true_records, true_people):
        _score_records(con, age_at)
    result: dict[str, pl.DataFrame] = {}
    people: dict[str, pl.DataFrame] = {}
    for name, by in GROUPS.items():
        frame = group_metrics(con, "scored", by)
        key = [by] if by else []
        if by == "true_sex":
            frame, key = frame.rename({"true_sex": "sex"}), ["sex"]
        result[name] = frame.select([*key, *RECORD_COLUMNS])
        people[f"people_{name}"] = frame.select([*key, *PERSON_COLUMNS])
        if by is None:
            people["people_counts"] = frame.select(COUNT_COLUMNS)
    result["age_band"] = result["age_band"].with_columns(pl.lit(age_at).alias("age_at"))
    con.execute("DROP TABLE IF EXISTS scored")
    return result | people


def _plain(value: Any) -> Any:
    """JSON for values json cannot write itself: decimals as numbers, dates as ISO text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def report_json(frames: dict[str, pl.DataFrame]) -> str:
    """The report as JSON, numbers as JSON numbers (NaN as null)."""
    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and v != v else v

    data = {k: [{c: clean(v) for c, v in row.items()} for row in f.to_dicts()] for k, f in frames.items()}
    return json.dumps(data, indent=1, default=_plain)


def true_person_map(con: Connection, true_records: pl.DataFrame) -> pl.DataFrame:
    """Each record person_id and the true person most of its records belong to (ties to the smallest),
    given the true person of each source record (`source`, `record_id`, `true_person`, as for
    `accuracy`); needs the identity store attached as `idn`. For scoring models against the truth only."""
    with _truth_views(con, true_records):
        return con.execute(f"""
            SELECT CAST(person_id AS VARCHAR) AS person_id,
                   first(true_person ORDER BY n DESC, true_person) AS true_person
            FROM (SELECT l.person_id, t.true_person, count(*) AS n
                  FROM link.record_person l JOIN {identity_store.records_sql()} i
                  USING (source, file_id, row_number)
                  JOIN truth_records t ON t.source = l.source AND t.record_id = i.record_id
                  GROUP BY 1, 2)
            GROUP BY 1""").pl()
