"""The tariff: a unit cost for every kind of activity in the person record, as data.

`data/tariff.csv` is the shipped table (every figure cited in `data/SOURCES.md`); a user's own table
in the same columns replaces it (`openphm build --tariff FILE`). Each line is checked against
`tariff.schema.json`, and an error names the file, the line and the column. Prices are uplifted to
one price year by the NHS Cost Inflation Index (`data/price_index.csv`):
unit cost x index(target year) / index(the line's price year).

`CATEGORIES` is the contract with the record's SQL steps: the categories each activity table assigns
(its `cost_category` column). A tariff without a line for a category leaves those rows uncosted, and
the build reports them with their counts (never a silent zero).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema
import polars as pl

DATA = Path(str(resources.files("openphm.finance") / "data"))
DEFAULT_TARIFF = DATA / "tariff.csv"
PRICE_INDEX = DATA / "price_index.csv"
COLUMNS = ("activity", "category", "unit", "unit_cost", "trim_point_days", "units_per_week", "price_year",
           "source", "approximation")
_NUMBERS = {"unit_cost": float, "trim_point_days": int, "units_per_week": float}

CATEGORIES: dict[str, tuple[str, ...]] = {
    "inpatient_spell": ("elective", "day_case", "non_elective_short_stay", "non_elective_long_stay",
                        "excess_bed_day_elective", "excess_bed_day_non_elective", "maternity", "birth",
                        "regular_day_attender", "critical_care_adult", "critical_care_paediatric",
                        "critical_care_neonatal"),
    "ae_attendance": ("01", "02", "03"),
    "outpatient_appointment": ("first", "follow_up", "did_not_attend"),
    "gp_appointment": ("GP", "Nurse", "Other Practice staff", "home_visit", "did_not_attend"),
    "community_contact": ("District Nursing", "Physiotherapy", "Podiatry", "Health Visiting", "Intermediate Care",
                          "School Nursing", "Community Matron", "Continence", "Speech and Language Therapy"),
    "mental_health_contact": ("Community Mental Health Team", "Psychological Therapies", "CAMHS",
                              "Crisis Resolution", "Liaison Psychiatry", "Early Intervention in Psychosis",
                              "Memory Service"),
    "social_care_service": ("Residential Care", "Nursing Care", "Home Care", "Day Care", "Short Term Reablement",
                            "Supported Living", "Direct Payment"),
    "vcse_referral": ("Loneliness and isolation", "Mental wellbeing", "Debt and benefits", "Housing",
                      "Physical activity", "Carer support"),
}


class TariffError(ValueError):
    """A tariff or price index that cannot be used; the message names the file, line and column."""


@dataclass(frozen=True)
class Tariff:
    """Unit costs in one price year: `lines` (activity, category, unit, unit_cost, trim_point_days,
    units_per_week, source_price_year), where they came from, categories it does not price, and the
    spells' case-mix weights (category, hrg, weight: see `openphm.finance.casemix`)."""

    lines: pl.DataFrame
    price_year: str
    path: Path
    missing: tuple[tuple[str, str], ...]
    hrg_weights: pl.DataFrame


def _schema() -> dict:
    return json.loads((Path(__file__).with_name("tariff.schema.json")).read_text(encoding="utf-8"))


def _rows(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TariffError(f"{path}: cannot be read as UTF-8 text ({exc.__class__.__name__})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    absent = [c for c in ("activity", "category", "unit", "unit_cost", "price_year", "source") if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if absent or unknown:
        raise TariffError(f"{path}: line 1 (the header) " + "; ".join(
            ([f"lacks column(s) {', '.join(absent)}"] if absent else [])
            + ([f"has unknown column(s) {', '.join(unknown)}"] if unknown else []))
            + f" (columns: {', '.join(COLUMNS)})")
    rows = []
    for line, raw in enumerate(reader, start=2):
        if None in raw:
            raise TariffError(f"{path}: line {line} has more fields than the header")
        rows.append((line, raw))
    if not rows:
        raise TariffError(f"{path}: no tariff lines")
    return rows


def _typed(path: Path, line: int, raw: dict) -> dict:
    row: dict = {}
    for column, value in raw.items():
        value = (value or "").strip()
        if column in _NUMBERS:
            if value == "":
                row[column] = None
                continue
            try:
                row[column] = _NUMBERS[column](value)
            except ValueError:
                raise TariffError(f"{path}: line {line}, column {column}: {value[:40]!r} is not "
                                  f"{'a whole number' if _NUMBERS[column] is int else 'a number'}") from None
        else:
            row[column] = value if value != "" or column in ("activity", "category", "unit", "source",
                                                              "price_year") else None
    return row


def price_index(path: Path = PRICE_INDEX) -> dict[str, float]:
    """The cost inflation index by financial year ('2022-23': value)."""
    index: dict[str, float] = {}
    for line, raw in _rows_plain(path):
        try:
            index[raw["price_year"].strip()] = float(raw["index"])
        except (KeyError, TypeError, ValueError):
            raise TariffError(f"{path}: line {line}: needs price_year and a numeric index") from None
    return index


def _rows_plain(path: Path) -> list[tuple[int, dict]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(enumerate(csv.DictReader(f), start=2))


def load_tariff(path: Path | None = None, price_year: str | None = None, hrg_costs: Path | None = None) -> Tariff:
    """Read and check a tariff, and uplift every line to `price_year` (default: the latest price year
    among its lines); with the case-mix weights of `hrg_costs` (default: the shipped National Cost
    Collection table)."""
    from openphm.finance.casemix import hrg_weights, load_hrg_costs
    path = Path(path) if path else DEFAULT_TARIFF
    schema = _schema()
    validator = jsonschema.Draft202012Validator(schema)
    seen: dict[tuple[str, str], int] = {}
    lines = []
    for line, raw in _rows(path):
        row = _typed(path, line, raw)
        for error in validator.iter_errors({k: v for k, v in row.items() if v is not None or k in _NUMBERS}):
            column = error.path[0] if error.path else (error.message.split("'")[1] if "'" in error.message else "?")
            raise TariffError(f"{path}: line {line}, column {column}: {error.message[:200]}")
        key = (row["activity"], row["category"])
        if key in seen:
            raise TariffError(f"{path}: line {line} prices {key[0]} {key[1]!r} again (first on line {seen[key]})")
        if row["category"] not in CATEGORIES[row["activity"]]:
            raise TariffError(f"{path}: line {line}, column category: {row['category']!r} is not a category of "
                              f"{row['activity']} ({', '.join(CATEGORIES[row['activity']])})")
        seen[key] = line
        lines.append(row)
    index = price_index()
    target = price_year or max(r["price_year"] for r in lines)
    years = sorted({r["price_year"] for r in lines} | {target})
    unknown = [y for y in years if y not in index]
    if unknown:
        raise TariffError(f"no cost inflation index for {', '.join(unknown)} in {PRICE_INDEX.name} "
                          f"(years: {', '.join(sorted(index))})")
    frame = pl.DataFrame({
        "activity": [r["activity"] for r in lines],
        "category": [r["category"] for r in lines],
        "unit": [r["unit"] for r in lines],
        "unit_cost": [r["unit_cost"] * index[target] / index[r["price_year"]] for r in lines],
        "trim_point_days": [r.get("trim_point_days") for r in lines],
        "units_per_week": [r.get("units_per_week") for r in lines],
        "source_price_year": [r["price_year"] for r in lines],
    }, schema={"activity": pl.Utf8, "category": pl.Utf8, "unit": pl.Utf8, "unit_cost": pl.Float64,
               "trim_point_days": pl.Int32, "units_per_week": pl.Float64, "source_price_year": pl.Utf8})
    missing = tuple((a, c) for a, cats in CATEGORIES.items() for c in cats if (a, c) not in seen)
    return Tariff(frame, target, path, missing, hrg_weights(load_hrg_costs(hrg_costs)))
