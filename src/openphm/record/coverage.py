"""The period the data really cover, which indicators and segments are computed over.

Taking the earliest and latest activity dates would let one stray date (an admission typed as
1995 in a 2023-24 file) stretch the analysis over decades of empty years. Instead a financial
year is covered when

- hospital spells were sent for it: an `apc` file in service is named for that year (when the
  files are named by financial year; FHIR or hand-built records skip this test), and
- it holds at least COVERED_SHARE of the spells of a typical covered year (the median), so a
  year with a handful of stray spells is not a year of data.

Months run from the first covered April to the last admission in the last covered year.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics

from openphm.engine.connection import Connection

COVERED_SHARE = 0.1


def _file_years(con: Connection) -> set[int] | None:
    """Financial years (by their starting year) of the apc files in service, or None when there is no
    manifest or the files are not named by financial year."""
    if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ingest' "
                       "AND table_name = 'manifest' AND table_catalog = current_database()").fetchone()[0]:
        return None
    periods = [p for (p,) in con.execute("SELECT DISTINCT period FROM ingest.manifest WHERE source = 'apc' "
                                         "AND status = 'active'").fetchall()]
    years = {int(p[:4]) for p in periods if p and re.fullmatch(r"\d{4}-\d{2}", p)}
    return years or None


def covered_years(con: Connection, spells: str = "planning.inpatient_spell") -> list[dt.date]:
    """First days (1 April) of the financial years the data cover (see the module's note)."""
    counts = dict(con.execute(f"""SELECT CASE WHEN month(admission_date) >= 4 THEN year(admission_date)
                                         ELSE year(admission_date) - 1 END AS fy, count(*)
                                  FROM {spells} WHERE admission_date IS NOT NULL GROUP BY 1""").fetchall())
    files = _file_years(con)
    if files is not None:
        counts = {y: n for y, n in counts.items() if y in files}
    if not counts:
        return []
    typical = statistics.median(counts.values())
    return [dt.date(y, 4, 1) for y in sorted(counts) if counts[y] >= COVERED_SHARE * typical]


def covered_months(con: Connection, spells: str = "planning.inpatient_spell") -> list[dt.date]:
    """First days of the months the data cover: every month of the covered financial years, up to the
    month of the last admission in them."""
    years = covered_years(con, spells)
    if not years:
        return []
    end = dt.date(years[-1].year + 1, 4, 1)
    last = con.execute(f"SELECT max(admission_date) FROM {spells} WHERE admission_date >= ? AND admission_date < ?",
                       [years[-1], end]).fetchone()[0]
    out = []
    for start in years:
        month = start
        while month < dt.date(start.year + 1, 4, 1) and month <= last:
            out.append(month)
            month = dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return out
