"""Assigning every registered person a segment at the start of each month, and the summary tables.

Tables written (schema `segments`):
- `person_segment`: person_id, segment, from_month, to_month (inclusive): each person's spells in
  a segment, so every registered person is in exactly one segment at each month;
- `size`: month, segment, people, share;
- `activity`: for people in each segment on 1 April, their emergency admissions, A&E attendances,
  emergency bed days, outpatient attendances and GP appointments in the following 12 months, per
  1,000 people (costs once the record carries them);
- `transition`: people by segment on 1 April one year and 1 April the next (`not registered` for
  those who died or left);
- `definition`: segment, position, label (labels are bound as parameters, stored exactly as written).

Segments are for planning: they are computed from `planning.*`, so nobody with a National Data
Opt-out is segmented (openphm.identity.optout). Planning readers use `planning.person_segment`,
which also leaves out anyone opted out after the run; the aggregate tables record the opt-out
set they were computed under, and `openphm.identity.optout.stale_outputs` names them (`segments`)
once a build changes that set: run them again.

Nothing from a segmentation file is pasted into SQL as text: rules are rendered from their checked
trees (`Segmentation.case_sql`), and ids and labels are bound parameters.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

from openphm.derive.features import build_features
from openphm.domain import ACTIVITY as DOMAIN_ACTIVITY
from openphm.engine.connection import Connection, transaction
from openphm.identity.optout import planning_view, stamp
from openphm.record.coverage import covered_months
from openphm.segments.rules import Segmentation, load_segmentation

SEGMENT_ACTIVITY = ("emergency_admissions", "emergency_bed_days", "ae_attendances", "outpatient_attendances",
                    "gp_appointments")
ACTIVITY = {name: DOMAIN_ACTIVITY[name] for name in SEGMENT_ACTIVITY}  # name: (table, date column, filter, value)


def record_months(con: Connection) -> list[dt.date]:
    """First days of the months the data really cover (openphm.record.coverage: the months of the
    financial years of hospital spells sent, not stretched by a stray date)."""
    return covered_months(con)


def run_segments(con: Connection, segmentation: Segmentation | None = None,
                 months: list[dt.date] | None = None, progress: Callable[[dt.date], None] | None = None) -> int:
    """Segment everyone at each month and write the segments tables; returns the months done."""
    seg = segmentation or load_segmentation()
    months = months if months is not None else record_months(con)
    if not months:
        raise ValueError("the record has no activity to date a month: run `openphm build` first")
    con.execute("CREATE OR REPLACE TEMP TABLE segment_month (person_id UUID, month DATE, segment VARCHAR)")
    case, used = seg.case_sql(), seg.features_used()  # rendered from the checked rule trees
    for month in months:
        build_features(con, month, table="segment_features", activity=used)
        con.execute(f"INSERT INTO segment_month SELECT person_id, CAST(? AS DATE), {case} FROM segment_features",
                    [_date(month)])
        if progress:
            progress(month)
    con.execute("DROP TABLE segment_features")
    con.execute("CREATE SCHEMA IF NOT EXISTS segments")
    with transaction(con):
        con.execute("CREATE OR REPLACE TABLE segments.definition (segment VARCHAR, position INTEGER, label VARCHAR)")
        con.executemany("INSERT INTO segments.definition VALUES (?, ?, ?)",
                        [[str(s["id"]), i, str(s["label"])] for i, s in enumerate(seg.segments)])
        # spells: consecutive months in the same segment collapse to one row
        con.execute("""
            CREATE OR REPLACE TABLE segments.person_segment AS
            WITH marked AS (
                SELECT *, CASE WHEN lag(segment) OVER w = segment
                                AND lag(month) OVER w = month - INTERVAL 1 MONTH THEN 0 ELSE 1 END AS starts
                FROM segment_month WINDOW w AS (PARTITION BY person_id ORDER BY month)),
            numbered AS (SELECT *, sum(starts) OVER (PARTITION BY person_id ORDER BY month) AS spell FROM marked)
            SELECT person_id, segment, min(month) AS from_month, max(month) AS to_month
            FROM numbered GROUP BY person_id, segment, spell""")
        con.execute("""
            CREATE OR REPLACE TABLE segments.size AS
            SELECT month, segment, count(*) AS people, count(*) / sum(count(*)) OVER (PARTITION BY month) AS share
            FROM segment_month GROUP BY month, segment ORDER BY month, segment""")
        aprils = [m for m in months if m.month == 4]
        _activity(con, aprils)
        _transitions(con, aprils)
        planning_view(con, "person_segment", "segments.person_segment")
        stamp(con, "segments")
    con.execute("DROP TABLE segment_month")
    return len(months)


def _date(day: dt.date) -> str:
    """A date as ISO text for a SQL date literal; refuses anything that is not a date."""
    if not isinstance(day, dt.date):
        raise TypeError(f"a month must be a date, not {type(day).__name__}")
    return day.isoformat()


def _activity(con: Connection, aprils: list[dt.date]) -> None:
    # each activity summed per segment and joined to the segment's people (not a correlated subquery per
    # group, which Spark refuses): the same sums and the same arithmetic on both engines
    parts = []
    for day in aprils:
        april, after = _date(day), _date(dt.date(day.year + 1, 4, 1))
        sums = "".join(
            f" LEFT JOIN (SELECT s2.segment, {value} AS v FROM planning.{tbl} t JOIN segment_month s2 "
            f"USING (person_id) WHERE s2.month = DATE '{april}' AND {where} AND t.{col} >= DATE '{april}' "
            f"AND t.{col} < DATE '{after}' GROUP BY s2.segment) a_{name} USING (segment)"
            for name, (tbl, col, where, value) in ACTIVITY.items())
        rates = ", ".join(f"coalesce(a_{name}.v, 0) * 1000.0 / s.people AS {name}_per_1000" for name in ACTIVITY)
        parts.append(f"SELECT DATE '{april}' AS year_start, segment, s.people, {rates} "
                     f"FROM (SELECT segment, count(*) AS people FROM segment_month WHERE month = DATE '{april}' "
                     f"GROUP BY segment) s{sums}")
    empty = ", ".join(["CAST(NULL AS DATE) AS year_start", "CAST(NULL AS VARCHAR) AS segment",
                       "CAST(NULL AS BIGINT) AS people"] + [f"CAST(NULL AS DOUBLE) AS {name}_per_1000"
                                                            for name in ACTIVITY])
    sql = " UNION ALL ".join(parts) if parts else f"SELECT {empty} WHERE false"  # no April: no rows
    con.execute(f"CREATE OR REPLACE TABLE segments.activity AS {sql} ORDER BY 1, 2")


def _transitions(con: Connection, aprils: list[dt.date]) -> None:
    parts = [f"""SELECT DATE '{a}' AS from_year, DATE '{b}' AS to_year, f.segment AS from_segment,
                        coalesce(t.segment, 'not registered') AS to_segment, count(*) AS people
                 FROM segment_month f LEFT JOIN segment_month t ON t.person_id = f.person_id
                      AND t.month = DATE '{b}'
                 WHERE f.month = DATE '{a}' GROUP BY ALL"""
             for a, b in itertools.pairwise(map(_date, aprils))]
    empty = ("SELECT CAST(NULL AS DATE) AS from_year, CAST(NULL AS DATE) AS to_year, CAST(NULL AS VARCHAR) AS "
             "from_segment, CAST(NULL AS VARCHAR) AS to_segment, CAST(NULL AS BIGINT) AS people WHERE false")
    sql = " UNION ALL ".join(parts) if parts else empty  # fewer than two Aprils: no rows
    con.execute(f"CREATE OR REPLACE TABLE segments.transition AS {sql} ORDER BY 1, 3, 4")
