"""Case mix: what a spell's Healthcare Resource Group (HRG) costs relative to its department's average.

A national average per department (a non-elective long stay, a day case) prices every spell alike, so
a hip fracture and a night's observation for chest pain cost the same, and spend looks far less
concentrated on the sickest people than it is. Where an extract carries the spell's HRG (SUS+ gives the
spell core HRG), the record prices the spell at its department's tariff line times the HRG's
relative weight: the HRG's national unit cost over the department's activity-weighted mean unit cost,
both from the National Cost Collection 2023/24 (`data/hrg_costs.csv`, derived by
`scripts/derive_hrg_costs.py`; sources in `data/SOURCES.md`). A weight is a ratio of two prices of one
year, so it holds in any price year the tariff is uplifted to.

An HRG the department does not list (a dialysis session recorded as a regular day admission, say)
takes its national price in whichever departments list it (activity-weighted) over the department's
mean. A spell with no HRG, or one the table does not know, is priced at the department's line (weight
1), and the build counts those spells.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from pathlib import Path

import polars as pl

from openphm.finance.tariff import DATA, TariffError

DEFAULT_HRG_COSTS = DATA / "hrg_costs.csv"
# Departments of the National Cost Collection that are the record's spell cost categories.
SPELL_DEPARTMENTS = ("elective", "day_case", "non_elective_long_stay", "non_elective_short_stay",
                     "regular_day_attender")
# Departments whose currencies are not spells: sessions and bed days, used only when a spell's HRG
# is one of their currencies (renal dialysis sessions) and never for critical care bed days.
OTHER_DEPARTMENTS = ("renal_dialysis", "critical_care")
# HRG4+ codes (two letters, two digits, a letter) and the few other national currencies (IVF01).
HRG_CODE = re.compile(r"^[A-Z]{2}[A-Z0-9]{1,6}$")
_COLUMNS = ("department", "hrg", "activity", "unit_cost")


def load_hrg_costs(path: Path | None = None) -> pl.DataFrame:
    """Read and check an HRG cost table (department, hrg, activity, unit_cost); an error names the
    file, line and column. The shipped table is read once per process."""
    if path is None:
        return _shipped_hrg_costs()
    return _read_hrg_costs(Path(path))


@functools.cache
def _shipped_hrg_costs() -> pl.DataFrame:
    return _read_hrg_costs(DEFAULT_HRG_COSTS)


def _read_hrg_costs(path: Path) -> pl.DataFrame:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TariffError(f"{path}: cannot be read as UTF-8 text ({exc.__class__.__name__})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if tuple(reader.fieldnames or ()) != _COLUMNS:
        raise TariffError(f"{path}: line 1 (the header) must be {','.join(_COLUMNS)}")
    rows: list[tuple[str, str, float, float]] = []
    seen: dict[tuple[str, str], int] = {}
    for line, raw in enumerate(reader, start=2):
        if None in raw or any(v is None for v in raw.values()):
            raise TariffError(f"{path}: line {line} does not have the header's {len(_COLUMNS)} fields")
        department, hrg = raw["department"].strip(), raw["hrg"].strip()
        if department not in SPELL_DEPARTMENTS + OTHER_DEPARTMENTS:
            raise TariffError(f"{path}: line {line}, column department: {department[:40]!r} is not one of "
                              f"{', '.join(SPELL_DEPARTMENTS + OTHER_DEPARTMENTS)}")
        if not HRG_CODE.match(hrg):
            raise TariffError(f"{path}: line {line}, column hrg: {hrg[:40]!r} is not an HRG code "
                              "(such as EB12E: letters and digits, 3 to 8, upper case)")
        numbers = []
        for column in ("activity", "unit_cost"):
            try:
                value = float(raw[column])
            except ValueError:
                raise TariffError(f"{path}: line {line}, column {column}: {raw[column][:40]!r} is not a number") \
                    from None
            if not (0 < value < 1e9):
                raise TariffError(f"{path}: line {line}, column {column}: must be above 0 and below 1e9")
            numbers.append(value)
        if (department, hrg) in seen:
            raise TariffError(f"{path}: line {line} lists {department} {hrg} again (first on line "
                              f"{seen[(department, hrg)]})")
        seen[(department, hrg)] = line
        rows.append((department, hrg, numbers[0], numbers[1]))
    if not rows:
        raise TariffError(f"{path}: no HRG costs")
    return pl.DataFrame(rows, schema={"department": pl.Utf8, "hrg": pl.Utf8, "activity": pl.Float64,
                                      "unit_cost": pl.Float64}, orient="row")


def hrg_weights(costs: pl.DataFrame) -> pl.DataFrame:
    """(category, hrg, weight) for every spell department and every HRG priced anywhere but critical
    care: the HRG's price in the department (else its activity-weighted price across the departments
    that list it) over the department's activity-weighted mean price."""
    priced = costs.filter(pl.col("department") != "critical_care")
    mean = (priced.filter(pl.col("department").is_in(SPELL_DEPARTMENTS)).group_by("department")
            .agg(((pl.col("activity") * pl.col("unit_cost")).sum() / pl.col("activity").sum()).alias("mean")))
    anywhere = priced.group_by("hrg").agg(
        ((pl.col("activity") * pl.col("unit_cost")).sum() / pl.col("activity").sum()).alias("price_anywhere"))
    grid = mean.join(anywhere, how="cross")
    own = priced.select(pl.col("department"), "hrg", pl.col("unit_cost").alias("price_here"))
    return (grid.join(own, on=["department", "hrg"], how="left")
            .select(pl.col("department").alias("category"), "hrg",
                    (pl.coalesce("price_here", "price_anywhere") / pl.col("mean")).alias("weight"))
            .sort("category", "hrg"))
