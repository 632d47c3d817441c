"""Every field of an indicator definition does what its documentation says: `confidence` chooses
the interval, `multiplier` is required and scales every value, `opportunity.bed_days` (not the
words in `opportunity.counts`) decides how an opportunity becomes bed days; combinations that
would do nothing or the wrong thing are refused when the file is loaded."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pytest
import yaml
from scipy import stats as sps

from openphm.measures.definitions import DefinitionError, definitions_dir, load_measure
from openphm.measures.periods import measure_values
from openphm.measures.summaries import opportunity_table

Z95, Z998 = sps.norm.ppf(0.975), sps.norm.ppf(0.999)


def write_definition(tmp_path: Path, base: str, name: str, drop: tuple[str, ...] = (), **changes) -> Path:
    """A shipped definition copied under a new id, with fields changed or dropped."""
    data = yaml.safe_load((definitions_dir() / f"{base}.yaml").read_text(encoding="utf-8"))
    data.update(changes, id=name)
    for field in drop:
        data.pop(field)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def exact(count: int, z: float) -> tuple[float, float]:
    """Exact Poisson limits from the gamma distribution (independent of openphm.stats' chi-squared)."""
    tail = sps.norm.sf(z)
    return sps.gamma.ppf(tail, count), sps.gamma.ppf(1 - tail, count + 1)


def byar(count: int, z: float) -> tuple[float, float]:
    """Byar's approximation, written out from the PHE technical guide."""
    o = float(count)
    return (o * (1 - 1 / (9 * o) - z / (3 * math.sqrt(o))) ** 3,
            (o + 1) * (1 - 1 / (9 * (o + 1)) + z / (3 * math.sqrt(o + 1))) ** 3)


# ---- confidence ----------------------------------------------------------------------------------

def strata(count: int, population: float) -> pl.DataFrame:
    """One ICS, one financial year: `count` events in May 2023 over a mid-year population."""
    return pl.DataFrame({"level": ["ics", "ics"], "unit": ["ICS", "ICS"],
                         "fy_start": [dt.date(2023, 4, 1)] * 2, "month": [dt.date(2023, 5, 1), None],
                         "esp_band": ["70-74", "70-74"], "sex": ["F", "F"],
                         "numerator": [float(count), 0.0], "denominator": [0.0, population]},
                        schema={"level": pl.Utf8, "unit": pl.Utf8, "fy_start": pl.Date, "month": pl.Date,
                                "esp_band": pl.Utf8, "sex": pl.Utf8, "numerator": pl.Float64,
                                "denominator": pl.Float64})


@pytest.mark.parametrize("count", [10, 17, 30])
@pytest.mark.parametrize("base, standardisation, per", [
    ("emergency_admissions_75plus", "crude", 1_000),    # a crude rate: limits of the count over the population
    ("emergency_admissions_sar", "isr_ics", 100),      # an ISR: limits of the observed over the expected
])
def test_confidence_chooses_the_interval_of_a_count(tmp_path, count, base, standardisation, per):
    population = 2_000.0
    # the ICS's own ratio is 1 (expected = observed): the limits are those of the count over itself
    scale = per / population if standardisation == "crude" else per / count
    rows = {}
    for method in ("poisson", "byar"):
        m = load_measure(write_definition(tmp_path, base, f"check_{method}", confidence=method, period="financial_year",
                                          multiplier=per, standardisation=standardisation))
        rows[method] = measure_values(m, strata(count, population)).row(0, named=True)
    for method, limits in (("poisson", exact), ("byar", byar)):
        r = rows[method]
        assert r["value"] == pytest.approx(count * scale)
        assert (r["lower95"], r["upper95"]) == pytest.approx(tuple(x * scale for x in limits(count, Z95)), rel=1e-9)
        assert (r["lower998"], r["upper998"]) == pytest.approx(tuple(x * scale for x in limits(count, Z998)),
                                                               rel=1e-9)
    # the two differ (Byar's is an approximation), so the field is not ignored
    assert rows["poisson"]["lower95"] != pytest.approx(rows["byar"]["lower95"], rel=1e-6)


def test_byar_below_ten_is_exact(tmp_path):
    """PHE's convention: under 10 events the `byar` interval is the exact one."""
    m = load_measure(write_definition(tmp_path, "emergency_admissions_75plus", "small", period="financial_year"))
    r = measure_values(m, strata(7, 1_000.0)).row(0, named=True)
    assert (r["lower95"], r["upper95"]) == pytest.approx(exact(7, Z95), rel=1e-9)


@pytest.mark.parametrize("base, changes", [
    ("emergency_admissions_75plus", {"confidence": "wilson"}),          # wilson on an event rate
    ("emergency_admissions_75plus", {"confidence": "dobson"}),          # dobson without dsr_esp2013
    ("emergency_admissions_sar", {"confidence": "dobson"}),             # dobson on an ISR
    ("emergency_admissions_dsr", {"confidence": "byar"}),               # a DSR's limits are Dobson's
    ("prevalence_diabetes", {"confidence": "poisson"}),                 # a proportion's are Wilson's
    ("readmissions_30_days", {"confidence": "byar"}),
    ("delayed_discharge_bed_days", {"confidence": "wilson"}),           # a ratio of sums is not a proportion
])
def test_a_confidence_that_does_not_fit_is_refused_in_one_line_naming_the_file(tmp_path, base, changes):
    path = write_definition(tmp_path, base, "misfit", **changes)
    with pytest.raises(DefinitionError) as caught:
        load_measure(path)
    message = str(caught.value)
    assert message.startswith("misfit.yaml: confidence") and "\n" not in message


def test_every_fitting_confidence_loads(tmp_path):
    for base, method in (("emergency_admissions_75plus", "poisson"), ("emergency_admissions_sar", "poisson"),
                         ("delayed_discharge_bed_days", "poisson"), ("emergency_admissions_dsr", "dobson"),
                         ("deaths_in_hospital", "wilson"), ("prevalence_asthma", "wilson")):
        assert load_measure(write_definition(tmp_path, base, "fits", confidence=method)).confidence == method


# ---- multiplier -------------------------------------------------------------------------------------

@pytest.mark.parametrize("base", ["emergency_admissions_dsr", "emergency_admissions_sar", "prevalence_diabetes"])
def test_a_missing_multiplier_is_refused(tmp_path, base):
    with pytest.raises(DefinitionError, match=r"^no_multiplier\.yaml: 'multiplier' is a required property"):
        load_measure(write_definition(tmp_path, base, "no_multiplier", drop=("multiplier",)))


def test_the_multiplier_scales_the_value_and_every_limit(tmp_path):
    frames = {}
    for per in (1, 1_000):
        m = load_measure(write_definition(tmp_path, "emergency_admissions_sar", f"per_{per}", multiplier=per,
                                          period="financial_year"))
        frames[per] = measure_values(m, strata(12, 500.0)).row(0, named=True)
    for col in ("value", "lower95", "upper95", "lower998", "upper998"):
        assert frames[1_000][col] == pytest.approx(1_000 * frames[1][col])
    assert frames[1]["value"] == pytest.approx(1.0)  # an ISR with multiplier 1 is the plain ratio


# ---- opportunity ------------------------------------------------------------------------------------

MEAN_STAY = 4.5  # the emergency spells below: 3 and 6 days


@pytest.fixture
def planning() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA planning")
    con.execute("""CREATE TABLE planning.inpatient_spell AS SELECT * FROM (VALUES
                   (DATE '2023-06-01', 'emergency', 3), (DATE '2024-01-10', 'emergency', 6),
                   (DATE '2023-07-01', 'elective', 40)) t(admission_date, admission_type, length_of_stay)""")
    return con


def practice_results(mid: str) -> pd.DataFrame:
    """Six practices in 2023-24 with rates 1% to 6%: the best quartile is the 25th centile, 2.25%."""
    n = 6
    return pd.DataFrame({"measure_id": mid, "period_type": "financial_year", "period": "2023-24",
                         "level": "practice", "unit": [f"P{i}" for i in range(n)],
                         "numerator": [float(i + 1) * 10 for i in range(n)], "denominator": [1_000.0] * n,
                         "value": [float(i + 1) for i in range(n)]})


@pytest.mark.parametrize("counts, bed_days, per_event", [
    ("emergency admissions", "per_emergency_admission", MEAN_STAY),
    ("emergency admissions", "none", None),              # the same words, no bed days: the field decides
    ("admissions avoided", "per_emergency_admission", MEAN_STAY),  # other words, still bed days
    ("bed days", "none", None),
])
def test_opportunity_bed_days_follow_the_structured_field(tmp_path, planning, counts, bed_days, per_event):
    m = load_measure(write_definition(tmp_path, "emergency_admissions_75plus", "opp",
                                      opportunity={"counts": counts, "bed_days": bed_days}))
    table = opportunity_table(planning, practice_results("opp"), {"opp": m})
    assert list(table["unit"]) == ["P2", "P3", "P4", "P5"]  # worse than the best quartile (2.25%)
    assert table["opportunity"].to_numpy() == pytest.approx([30 - 22.5, 40 - 22.5, 50 - 22.5, 60 - 22.5])
    assert (table["counts"] == counts).all()
    assert table["value"].to_numpy() == pytest.approx([30, 40, 50, 60])  # per 1,000: the multiplier
    if per_event is None:
        assert table["bed_days"].isna().all() and "bed days" not in table["method"].iloc[0]
    else:
        assert table["bed_days"].to_numpy() == pytest.approx(table["opportunity"].to_numpy() * per_event)


def test_counted_bed_days_are_the_opportunity(tmp_path, planning):
    m = load_measure(write_definition(tmp_path, "delayed_discharge_bed_days", "beds",
                                      opportunity={"counts": "delayed days", "bed_days": "counted"}))
    table = opportunity_table(planning, practice_results("beds"), {"beds": m})
    assert len(table) == 4 and (table["bed_days"] == table["opportunity"]).all()


def test_no_opportunity_field_no_opportunity(tmp_path, planning):
    m = load_measure(write_definition(tmp_path, "emergency_admissions_75plus", "none_", drop=("opportunity",)))
    assert opportunity_table(planning, practice_results("none_"), {"none_": m}).empty


@pytest.mark.parametrize("base, changes, problem", [
    ("emergency_admissions_dsr", {"opportunity": {"counts": "emergency admissions", "bed_days": "none"}},
     "no opportunity for kind event_rate with standardisation dsr_esp2013"),
    ("smi_care_plan", {"opportunity": {"counts": "care plans", "bed_days": "none"}}, "lower_is_better"),
    ("ae_attendances", {"opportunity": {"counts": "A&E attendances", "bed_days": "per_emergency_admission"}},
     "needs a numerator of inpatient_spell"),
    ("delayed_discharge_bed_days", {"opportunity": {"counts": "bed days", "bed_days": "per_emergency_admission"}},
     "not a sum"),
    ("emergency_admissions_sar", {"opportunity": {"counts": "emergency admissions", "bed_days": "counted"}},
     "summing bed days"),
    ("emergency_admissions_sar", {"opportunity": {"counts": "emergency admissions", "bed_days": "some"}},
     "is not one of"),
    ("emergency_admissions_sar", {"opportunity": {"counts": "emergency admissions"}}, "'bed_days' is a required"),
    ("emergency_admissions_sar", {"counts": "emergency admissions"}, "Additional properties"),  # the old field
])
def test_an_opportunity_that_could_not_be_computed_is_refused(tmp_path, base, changes, problem):
    with pytest.raises(DefinitionError, match=problem):
        load_measure(write_definition(tmp_path, base, "bad_opportunity", **changes))
