"""Case mix: HRG weights from a cost table (hand-computed), the table's checks, the shipped table
against the National Cost Collection's department averages, and the generator's spells against the
figures it is set to (HRGs of the spell's department, critical care days, dialysis, neonatal care)."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from openphm.finance.casemix import hrg_weights, load_hrg_costs
from openphm.finance.tariff import TariffError, load_tariff
from openphm.synth import casemix
from openphm.synth.generate import GenerateOptions, generate_ics

HEADER = "department,hrg,activity,unit_cost\n"


def _table(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hrg.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_weights_are_prices_over_the_department_mean_with_a_price_from_elsewhere_when_absent(tmp_path):
    # elective: 100 FCEs of AA01A at 1,000 and 300 of AA01B at 3,000: mean (100,000 + 900,000) / 400 = 2,500
    # day case: 100 of AA01A at 500: mean 500. Dialysis LD02A: 50 sessions at 200. Critical care is no spell.
    path = _table(tmp_path, "elective,AA01A,100,1000\nelective,AA01B,300,3000\nday_case,AA01A,100,500\n"
                            "renal_dialysis,LD02A,50,200\ncritical_care,XC01Z,10,3000\n")
    got = {(c, h): w for c, h, w in hrg_weights(load_hrg_costs(path)).iter_rows()}
    assert got[("elective", "AA01A")] == pytest.approx(0.4)
    assert got[("elective", "AA01B")] == pytest.approx(1.2)
    assert got[("day_case", "AA01A")] == pytest.approx(1.0)
    # AA01B is not a day case HRG here: its price anywhere (3,000) over the day-case mean (500)
    assert got[("day_case", "AA01B")] == pytest.approx(6.0)
    # AA01A anywhere: (100 x 1,000 + 100 x 500) / 200 = 750, but in its own departments its own price wins
    assert got[("elective", "LD02A")] == pytest.approx(200 / 2500)
    assert not any(h == "XC01Z" for _, h in got)
    assert {c for c, _ in got} == {"elective", "day_case"}  # departments with no rows have no mean


@pytest.mark.parametrize("body, message", [
    ("elective,AA01A,100\n", "line 2 does not have the header's 4 fields"),
    ("theatre,AA01A,100,1000\n", "line 2, column department: 'theatre'"),
    ("elective,aa01a,100,1000\n", "line 2, column hrg: 'aa01a'"),
    ("elective,AA01A; DROP,100,1000\n", "line 2, column hrg"),
    ("elective,AA01A,-1,1000\n", "line 2, column activity: must be above 0"),
    ("elective,AA01A,100,abc\n", "line 2, column unit_cost: 'abc' is not a number"),
    ("elective,AA01A,100,nan\n", "line 2, column unit_cost: must be above 0"),
    ("elective,AA01A,100,1000\nelective,AA01A,5,10\n", "line 3 lists elective AA01A again"),
    ("", "no HRG costs"),
])
def test_a_bad_hrg_cost_table_is_named_by_file_line_and_column(tmp_path, body, message):
    with pytest.raises(TariffError, match=message):
        load_hrg_costs(_table(tmp_path, body))


def test_a_table_with_another_header_or_not_text_is_refused(tmp_path):
    path = tmp_path / "hrg.csv"
    path.write_text("dept,code,n,cost\nelective,AA01A,1,1\n", encoding="utf-8")
    with pytest.raises(TariffError, match="line 1"):
        load_hrg_costs(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TariffError, match="cannot be read as UTF-8"):
        load_hrg_costs(path)


def test_shipped_weights_average_one_and_the_department_means_are_the_published_averages():
    costs = load_hrg_costs()
    weights = hrg_weights(costs)
    own = costs.join(weights, left_on=["department", "hrg"], right_on=["category", "hrg"])
    mean_weight = own.group_by("department").agg(
        ((pl.col("activity") * pl.col("weight")).sum() / pl.col("activity").sum()).alias("w"))
    assert mean_weight["w"].to_list() == pytest.approx([1.0] * mean_weight.height)
    # The department means are the National Cost Collection 2023/24 averages (data/SOURCES.md: PSSRU 2024
    # Table 6.1.1 prints 6,215 / 1,031 / 792 for elective, day case and non-elective short stay)
    means = dict(costs.group_by("department").agg(
        ((pl.col("activity") * pl.col("unit_cost")).sum() / pl.col("activity").sum()).alias("m")).iter_rows())
    assert means["elective"] == pytest.approx(6215, abs=2)
    assert means["day_case"] == pytest.approx(1031, abs=2)
    assert means["non_elective_short_stay"] == pytest.approx(792, abs=2)
    lines = {c: v for a, c, v in load_tariff().lines.select("activity", "category", "unit_cost").iter_rows()
             if a == "inpatient_spell"}
    assert lines["regular_day_attender"] == pytest.approx(means["regular_day_attender"], abs=0.01)


@pytest.fixture(scope="module")
def spells(tmp_path_factory) -> pl.DataFrame:
    out = tmp_path_factory.mktemp("casemix_ics")
    generate_ics(GenerateOptions(people=40_000, years=2, seed=77, out=out, format="parquet"))
    frames = [pl.read_parquet(p) for p in sorted((out / "extracts" / "apc").glob("*.parquet"))]
    return pl.concat(frames, how="vertical_relaxed").with_columns(
        (pl.col("discharge_date").cast(pl.Date) - pl.col("admission_date").cast(pl.Date)).dt.total_days().alias("los"),
        pl.col("critical_care_days").cast(pl.Int64).fill_null(0).alias("cc"),
        pl.col("patient_classification").cast(pl.Utf8))


def test_every_generated_spell_groups_to_an_hrg_of_its_department(spells):
    costs = load_hrg_costs()
    kind = np.where(spells["admission_method"].str.starts_with("1").to_numpy(), "elective",
                    np.where(spells["admission_method"].str.starts_with("2").to_numpy(), "emergency", "other"))
    department = casemix.spell_department(kind, spells["patient_classification"].to_numpy(),
                                          spells["los"].to_numpy())
    frame = spells.with_columns(pl.Series("department", department.astype(str)))
    costed = frame.filter(pl.col("department").is_in(["elective", "day_case", "non_elective_long_stay",
                                                      "non_elective_short_stay"]))
    assert costed["spell_hrg"].null_count() == 0
    known = costed.join(costs, left_on=["department", "spell_hrg"], right_on=["department", "hrg"], how="semi")
    assert known.height == costed.height
    # maternity and birth episodes carry no HRG (their tariff lines are averages)
    assert frame.filter(pl.col("department") == "")["spell_hrg"].null_count() == frame.filter(
        pl.col("department") == "").height
    # longer stays group to costlier HRGs: a hip fracture kept 3 weeks is rarely the cheapest group
    weights = {h: w for c, h, w in hrg_weights(costs).iter_rows() if c == "non_elective_long_stay"}
    long = costed.filter(pl.col("department") == "non_elective_long_stay").with_columns(
        pl.col("spell_hrg").replace_strict(weights, default=None).alias("w"))
    assert long.filter(pl.col("los") >= 14)["w"].mean() > 1.2 * long.filter(pl.col("los") <= 3)["w"].mean()


def test_critical_care_days_per_spell_are_the_national_ratios(spells):
    emergency = spells.filter(pl.col("admission_method").str.starts_with("2"))
    long_stay = emergency.filter(pl.col("los") >= 2)
    # 0.8 x 1,310,011 adult critical care days over 4,527,849 non-elective long-stay FCEs = 0.23
    assert 0.17 < long_stay["cc"].sum() / long_stay.height < 0.30
    assert (spells["cc"] <= spells["los"]).all()
    births = spells.filter(pl.col("admission_method").str.starts_with("8"))
    assert 0.10 < (births["cc"] > 0).mean() < 0.18  # about one baby in seven
    assert 6 < births.filter(pl.col("cc") > 0)["cc"].mean() < 12  # about 9 days


def test_planned_admissions_are_day_cases_as_the_national_cost_collection_counts_them(spells):
    # cataract: BZ3 day-case FCEs over day-case and elective FCEs in the NCC 2023/24 table; a knee
    # replacement (HN22-HN24) is rarely a day case; a diagnosis with no HRG takes the national share
    assert casemix.day_case_share("H259") > 0.95
    assert casemix.day_case_share("M171") < 0.2
    assert casemix.day_case_share("X999") == pytest.approx(6_847_546 / (6_847_546 + 1_183_793))
    planned = spells.filter(pl.col("admission_method").str.starts_with("1")
                            & pl.col("patient_classification").is_in(["1", "2"]))
    by_diagnosis = planned.group_by("diag_01").agg((pl.col("patient_classification") == "2").mean().alias("dc"),
                                                   pl.len())
    for diagnosis, share, n in by_diagnosis.filter(pl.col("len") >= 400).iter_rows():
        expected = casemix.day_case_share(diagnosis)
        assert abs(share - expected) < 4 * (expected * (1 - expected) / n) ** 0.5 + 0.005, diagnosis
    # the ordinary elective spells' HRGs cost about the national average elective FCE (6,215)
    weights = {h: w for c, h, w in hrg_weights(load_hrg_costs()).iter_rows() if c == "elective"}
    ordinary = planned.filter(pl.col("patient_classification") == "1")
    assert 0.85 < ordinary["spell_hrg"].replace_strict(weights, default=None).mean() < 1.25


def test_very_preterm_babies_stay_weeks_and_have_about_half_the_neonatal_days():
    days = casemix.neonatal_days(np.random.default_rng(5), 400_000)
    admitted = days[days > 0]
    assert abs(len(admitted) / 400_000 - casemix.NEONATAL_CARE_SHARE) < 0.003
    assert admitted.mean() == pytest.approx(casemix.NEONATAL_MEAN_DAYS, rel=0.04)  # NCC 2023/24: about 9
    # the very preterm (1.2% of births, 44 days at 28-31 weeks: Bliss 2015) are the long stays
    long = days >= 21
    assert 0.009 < long.mean() < 0.015
    assert 0.4 < days[long].sum() / days.sum() < 0.65
    assert 40 < days[long].mean() < 60


def test_dialysis_patients_attend_three_times_a_week_as_regular_day_attenders(spells):
    regular = spells.filter(pl.col("patient_classification") == "3")
    assert regular.height > 0
    assert set(regular["diag_01"].unique()) == {"Z491"}
    assert regular["spell_hrg"].str.starts_with("LD").all()
    per_person_year = regular.group_by("nhs_number", pl.col("admission_date").cast(pl.Date).dt.year()).len()
    assert per_person_year["len"].max() <= 157
    people = regular["nhs_number"].n_unique()
    assert 0.00015 * 40_000 <= people <= 0.0008 * 40_000  # 0.033% of the population, give or take
