"""Check a generated ICS against the published English figures in REFERENCE.md.

Everything is measured from the files an analyst would receive (the extracts and the
reference folder), except where only the truth can say (30-day readmissions use the true
person, so that linkage errors do not blur the generator's own calibration; care-home
residence uses the truth's dates). Returns one row per figure with its tolerance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import polars as pl

from openphm.synth.geography import MENTAL_HEALTH_TRUST
from openphm.synth.parameters import load_items, load_parameters

ESP_BANDS = load_parameters()["age_bands"]


@dataclass(frozen=True)
class Check:
    """One figure: what was generated, what REFERENCE.md says, and the accepted range."""

    measure: str
    generated: float
    reference: float
    low: float
    high: float
    source: str

    @property
    def ok(self) -> bool:
        """Within the accepted range."""
        return self.low <= self.generated <= self.high


def _scan(folder: Path, source: str) -> pl.LazyFrame:
    files = sorted((folder / "extracts" / source).glob(f"{source}_*"))
    if not files:
        raise FileNotFoundError(f"no {source} extract in {folder / 'extracts' / source}")
    if files[0].suffix == ".parquet":
        return pl.scan_parquet(files)
    return pl.scan_csv(files, infer_schema_length=0)


def _truth(folder: Path, name: str) -> pl.DataFrame:
    path = folder / "truth" / name
    if path.is_dir():
        parts = sorted(path.glob("*.parquet")) or sorted(path.glob("*.csv"))
        if parts[0].suffix == ".parquet":
            return pl.read_parquet(parts)
        return pl.concat([pl.read_csv(p, infer_schema_length=0) for p in parts])
    for suffix in (".parquet", ".csv"):
        if path.with_suffix(suffix).exists():
            p = path.with_suffix(suffix)
            return pl.read_parquet(p) if suffix == ".parquet" else pl.read_csv(p, infer_schema_length=0)
    raise FileNotFoundError(f"{path}.csv or .parquet not found")


def _as_date(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Utf8).str.to_date("%Y-%m-%d", strict=False)


def _age(dob: str, on: dt.date) -> pl.Expr:
    return ((pl.lit(on) - _as_date(dob)).dt.total_days() / 365.25).floor().cast(pl.Int64)


def _band(age: pl.Expr) -> pl.Expr:
    return pl.min_horizontal(age // 5, pl.lit(18))


def registered_on(folder: Path, on: dt.date) -> pl.DataFrame:
    """People registered with an ICS practice on a date: NHS number, age, sex, practice."""
    reg = _scan(folder, "gp_registrations").with_columns(
        _as_date("registration_start").alias("s"), _as_date("registration_end").alias("e"))
    return (reg.filter((pl.col("s") <= on) & (pl.col("e").is_null() | (pl.col("e") > on)))
            .select("nhs_number", "practice_code", "sex", _age("date_of_birth", on).alias("age"))
            .unique("nhs_number").collect())


def calibration_checks(folder: Path, financial_year: int | None = None) -> list[Check]:
    """All calibration figures for the generated ICS in `folder`, for one financial year."""
    folder = Path(folder)
    years = sorted({p.stem.split("_")[-1] for p in (folder / "extracts" / "apc").glob("apc_*")})
    if financial_year is None:
        financial_year = int(years[len(years) // 2][:4])
    fy0, fy1 = dt.date(financial_year, 4, 1), dt.date(financial_year + 1, 4, 1)
    mid = dt.date(financial_year, 10, 1)
    pop = registered_on(folder, mid)
    n = pop.height
    # The age structure is checked at the start, before five years of ageing move it on.
    first = registered_on(folder, dt.date(int(years[0][:4]), 10, 1))
    checks: list[Check] = []
    ref = "REFERENCE.md"

    # Age structure (share of registered population by band).
    share = load_parameters()["population"]["age_band_share"]
    counts = first.group_by(_band(pl.col("age")).alias("b")).len().sort("b")
    by_band = dict(zip(counts["b"].to_list(), counts["len"].to_list(), strict=True))
    total_share = sum(share)
    for b in (0, 10, 14, 16, 17, 18):
        g = 100 * by_band.get(b, 0) / first.height
        r = 100 * share[b] / total_share
        checks.append(Check(f"% aged {ESP_BANDS[b]}", g, r, r * 0.8, r * 1.2, "ONS Census 2021"))
    g65 = 100 * first.filter(pl.col("age") >= 65).height / first.height
    checks.append(Check("% aged 65+", g65, 18.4, 16.5, 20.5, "ONS Census 2021"))

    # Prevalence of each condition from GP coded events.
    items = load_items()
    snomed_to_item = dict(zip(items.snomed, items.ids, strict=True))
    events = (_scan(folder, "gp_events").filter(_as_date("event_date") <= mid)
              .select("nhs_number", "snomed_code").unique().collect())
    events = events.with_columns(pl.col("snomed_code").replace_strict(snomed_to_item, default=None).alias("item"))
    has = events.join(pop, on="nhs_number")
    for k, item in enumerate(items.ids):
        if items.kinds[k] != "condition":
            continue
        min_age = int(items.min_age[k])
        denom = pop.filter(pl.col("age") >= min_age).height
        num = has.filter((pl.col("item") == item) & (pl.col("age") >= min_age))["nhs_number"].n_unique()
        target = 100 * items.target[k]
        label = f"{items.labels[k]} prevalence %" + (f" ({min_age}+)" if min_age else "")
        checks.append(Check(label, 100 * num / denom, target, target * 0.85, target * 1.15,
                            "QOF 2023-24 via " + ref))
    dementia_all = has.filter(pl.col("item") == "dementia")["nhs_number"].n_unique()
    checks.append(Check("Dementia prevalence % (all ages)", 100 * dementia_all / n, 0.7, 0.55, 0.95, ref))

    # Multimorbidity: 2+ long-term conditions.
    conditions = [i for k, i in enumerate(items.ids) if items.kinds[k] == "condition"]
    per_person = (has.filter(pl.col("item").is_in(conditions)).group_by("nhs_number").len()
                  .rename({"len": "n_conditions"}))
    mm = pop.join(per_person, on="nhs_number", how="left").with_columns(pl.col("n_conditions").fill_null(0))

    def mm_share(frame: pl.DataFrame) -> float:
        return 100 * frame.filter(pl.col("n_conditions") >= 2).height / max(frame.height, 1)

    src = "Valabhji et al. 2024"
    checks.append(Check("Multimorbidity % (2+ conditions), all ages", mm_share(mm), 14.8, 12.0, 18.0, src))
    checks.append(Check("Multimorbidity % aged 0-19", mm_share(mm.filter(pl.col("age") < 20)), 0.9, 0.3, 2.0, src))
    checks.append(Check("Multimorbidity % aged 80+", mm_share(mm.filter(pl.col("age") >= 80)), 68, 60, 76, src))

    # Hospital activity in the financial year.
    def in_fy(frame: pl.LazyFrame, col: str) -> pl.LazyFrame:
        return frame.filter((_as_date(col) >= fy0) & (_as_date(col) < fy1))

    n75 = pop.filter(pl.col("age") >= 75).height
    ae = in_fy(_scan(folder, "ecds"), "arrival_date").with_columns(
        ((_as_date("arrival_date") - _as_date("date_of_birth")).dt.total_days() / 365.25).alias("age")).collect()
    checks.append(Check("A&E attendances per 1,000", 1000 * ae.height / n, 425, 380, 470, "NHS Digital via " + ref))
    apc = in_fy(_scan(folder, "apc"), "admission_date").with_columns(
        ((_as_date("admission_date") - _as_date("date_of_birth")).dt.total_days() / 365.25).alias("age"),
        (_as_date("discharge_date") - _as_date("admission_date")).dt.total_days().alias("los"),
    ).collect()
    emerg = apc.filter(pl.col("admission_method").str.starts_with("2"))
    checks.append(Check("Emergency admissions per 1,000", 1000 * emerg.height / n, 105, 95, 115, "HES via " + ref))
    checks.append(Check("Emergency admissions per 1,000 aged 75+",
                        1000 * emerg.filter(pl.col("age") >= 75).height / max(n75, 1), 375, 330, 420, "HES via " + ref))
    checks.append(Check("A&E attendances per 1,000 aged 75+",
                        1000 * ae.filter(pl.col("age") >= 75).height / max(n75, 1), 650, 500, 800,
                        "NHS Digital A&E activity (shape, approx.)"))
    ordinary = apc.filter((pl.col("patient_classification").cast(pl.Utf8) == "1")
                          & pl.col("admission_method").is_in(["11", "12", "13", "21", "22", "23", "24", "28"]))
    checks.append(Check("Mean length of stay, ordinary admissions (days)", ordinary["los"].mean(), 4.9, 4.2, 5.8,
                        "NHS Digital 2015-16 via " + ref))
    zero_day = 100 * emerg.filter(pl.col("los") == 0).height / max(emerg.height, 1)
    checks.append(Check("Emergency admissions with zero-day stay %", zero_day, 33, 25, 40, "Health Foundation 2018"))

    type1 = ae.filter(pl.col("department_type") == "01")
    admitted = 100 * type1.filter(pl.col("disposal") == "admitted").height / max(type1.height, 1)
    real = pl.read_csv(_shared_ae()).filter(pl.col("type") == "1") if _shared_ae() else None
    real_share = 100 * real["admissions"].sum() / real["attendances"].sum() if real is not None else 26.0
    checks.append(Check("Type 1 A&E attendances admitted %", admitted, real_share, real_share - 5, real_share + 5,
                        "NHS England A&E statistics 2016-19 (shared/data)" if real is not None else "RCEM"))

    # Frequent attenders at major (type 1) A&E departments, by the true person.
    who = _truth(folder, "records/ecds").select("record_id", "person_id")
    per_person = (type1.select("record_id").join(who, on="record_id").group_by("person_id").len()["len"])
    n_attenders, n_attendances = max(per_person.len(), 1), max(per_person.sum(), 1)
    greenfield = "Greenfield et al., Emerg Med J 2020 (major A&E, England 2016-17)"
    checks.append(Check("Type 1 A&E attenders attending once %", 100 * (per_person == 1).sum() / n_attenders,
                        73.5, 68.5, 78.5, greenfield))
    checks.append(Check("Type 1 A&E attenders attending 3+ times %", 100 * (per_person >= 3).sum() / n_attenders,
                        9.5, 7.0, 12.0, greenfield))
    checks.append(Check("Type 1 A&E attendances by those attending 3+ times %",
                        100 * per_person.filter(per_person >= 3).sum() / n_attendances, 27.1, 22.0, 32.0, greenfield))

    # 30-day readmissions, by the true person.
    truth_apc = _truth(folder, "records/apc").select("record_id", "person_id")
    em = (_scan(folder, "apc").filter(pl.col("admission_method").str.starts_with("2"))
          .select("record_id", _as_date("admission_date").alias("a"), _as_date("discharge_date").alias("d"),
                  pl.col("discharge_method").cast(pl.Utf8).alias("dm")).collect()
          .join(truth_apc, on="record_id").sort(["person_id", "a"]))
    em = em.with_columns(pl.col("a").shift(-1).over("person_id").alias("next_a"))
    index = em.filter((pl.col("a") >= fy0) & (pl.col("a") < fy1) & (pl.col("dm") != "4"))
    readmit = index.filter((pl.col("next_a") - pl.col("d")).dt.total_days() <= 30).height
    checks.append(Check("Emergency readmissions within 30 days %", 100 * readmit / max(index.height, 1),
                        12, 10, 14, "NHS Digital I02040 via " + ref))

    # Emergency admissions in the last year of life, by the true person's date of death.
    people = _truth(folder, "people").select(
        "person_id", _as_date("care_home_since").alias("ch"), _as_date("exit_date").alias("ex"),
        (pl.col("exit_reason") == "died").alias("died"))
    in_year = em.filter((pl.col("a") >= fy0) & (pl.col("a") < fy1)).join(people, on="person_id")
    last_year = in_year.filter(pl.col("died") & ((pl.col("ex") - pl.col("a")).dt.total_days() <= 365)).height
    checks.append(Check("Emergency admissions in the last year of life %", 100 * last_year / max(in_year.height, 1),
                        15, 11, 19, "Nuffield Trust, Georghiou 2014 (1% of people, 15% of emergency admissions)"))

    # Care-home residents' emergency admissions per resident-year.
    residents = people.filter(pl.col("ch").is_not_null() & (pl.col("ch") < fy1)
                              & (pl.col("ex").is_null() | (pl.col("ex") > fy0)))
    years = residents.select(
        ((pl.min_horizontal(pl.col("ex").fill_null(fy1), pl.lit(fy1))
          - pl.max_horizontal(pl.col("ch"), pl.lit(fy0))).dt.total_days() / 365.25).sum()).item()
    ch_adm = (in_fy(_scan(folder, "apc"), "admission_date")
              .filter(pl.col("admission_method").str.starts_with("2")
                      & (pl.col("admission_source").cast(pl.Utf8) == "85")).collect().height)
    checks.append(Check("Care-home residents' emergency admissions per resident-year", ch_adm / max(years, 1e-9),
                        0.70, 0.55, 0.85, "Health Foundation IAU 2019"))
    checks.append(Check("Care-home residents % of population", 100 * residents.height / n, 0.48, 0.3, 0.7,
                        "Health Foundation IAU 2019 (274,000 of 56.5m)"))

    deaths = in_fy(_scan(folder, "deaths"), "date_of_death").collect()
    checks.append(Check("Deaths per 1,000", 1000 * deaths.height / n, 9.7, 8.2, 11.2, "ONS 2023 via " + ref))
    hospital = 100 * deaths.filter(pl.col("place_of_death") == "hospital").height / max(deaths.height, 1)
    checks.append(Check("Deaths in hospital %", hospital, 43, 38, 48, "OHID 2023 via " + ref))

    in_contact = in_fy(_scan(folder, "mhsds"), "contact_date").select(pl.col("nhs_number").n_unique()).collect().item()
    checks.append(Check("People in contact with secondary mental health services %", 100 * in_contact / n, 5.8,
                        4.5, 7.5, "NHS Digital Mental Health Bulletin 2021-22 (3,256,695 people; 4.5% in 2017-18)"))

    ward = apc.filter(pl.col("provider_code").cast(pl.Utf8) == MENTAL_HEALTH_TRUST)
    bulletin = "HSCIC Mental Health Bulletin 2013-14 (105,300 people)"
    checks.append(Check("People admitted to mental health wards %", 100 * ward["nhs_number"].n_unique() / n, 0.195,
                        0.14, 0.25, bulletin))
    checks.append(Check("Median stay on mental health wards (days)", ward["los"].median() or 0.0, 23, 18, 28, bulletin))

    checks.extend(place_variation(folder, fy0, fy1, mid, pop, has))
    checks.extend(spend_concentration(folder, fy0, fy1, pop))
    return checks


def _shared_ae() -> Path | None:
    here = Path(str(resources.files("openphm"))).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "data" / "ae_attendances.csv"
        if candidate.exists():
            return candidate
        candidate = parent.parent / "shared" / "data" / "ae_attendances.csv"
        if candidate.exists():
            return candidate
    return None


def place_variation(folder: Path, fy0: dt.date, fy1: dt.date, mid: dt.date, pop: pl.DataFrame,
                    has: pl.DataFrame) -> list[Check]:
    """Max/min across places of delayed bed days per 1,000 bed days and of SMI care coordination."""
    orgs = pl.read_csv(folder / "reference" / "organisations.csv").select(
        pl.col("practice_code").alias("gp_practice_code"), "place_code")
    apc = (_scan(folder, "apc").filter((_as_date("admission_date") >= fy0) & (_as_date("admission_date") < fy1))
           .select("gp_practice_code",
                   (_as_date("discharge_date") - _as_date("admission_date")).dt.total_days().alias("bed_days"),
                   (_as_date("discharge_date") - _as_date("discharge_ready_date")).dt.total_days().alias("delayed"))
           .collect().join(orgs, on="gp_practice_code"))
    by_place = apc.group_by("place_code").agg(
        (1000 * pl.col("delayed").sum() / pl.col("bed_days").sum()).alias("rate"))
    dd_ratio = by_place["rate"].max() / by_place["rate"].min()
    smi = has.filter(pl.col("item") == "smi").select("nhs_number", "practice_code").unique("nhs_number")
    smi = smi.join(orgs.rename({"gp_practice_code": "practice_code"}), on="practice_code")
    mh = (_scan(folder, "mhsds").filter((_as_date("contact_date") >= fy0) & (_as_date("contact_date") < fy1)
                                         & (pl.col("care_coordinator") == "Y"))
          .select("nhs_number").unique().collect())
    covered = smi.join(mh.with_columns(pl.lit(1).alias("cc")), on="nhs_number", how="left")
    cov = covered.group_by("place_code").agg(pl.col("cc").fill_null(0).mean().alias("cov"))
    cc_ratio = cov["cov"].max() / cov["cov"].min() if cov["cov"].min() > 0 else float("inf")  # a place with none
    src = "IPPR 2021 via REFERENCE.md"
    return [
        Check("Delayed discharge bed days per 1,000: max/min across places", dd_ratio, 9, 6, 13, src),
        Check("Delayed bed days % of all bed days (ICS)", 100 * apc["delayed"].sum() / apc["bed_days"].sum(),
              13, 9, 17, "NHS Confederation 2023 via REFERENCE.md"),
        Check("SMI with a care coordinator: max/min across places", cc_ratio, 3, 2.0, 4.5, src),
    ]


def _priced(frame: pl.LazyFrame, activity: str, category: pl.Expr, prices: dict) -> pl.LazyFrame:
    """nhs_number and cost of each row at the tariff's line for (activity, category)."""
    lines = {c: v for (a, c), v in prices.items() if a == activity}
    return frame.select("nhs_number", category.replace_strict(lines, default=0.0, return_dtype=pl.Float64)
                        .alias("cost"))


def person_spend(folder: Path, fy0: dt.date, fy1: dt.date) -> pl.DataFrame:
    """Each person's spend in the year by setting (nhs_number, setting, cost), costed from the extracts
    at the shipped tariff's prices: spells at their category's price times their HRG's weight, plus
    excess bed days and critical care days; attended outpatient appointments; A&E by department type;
    GP, community and mental health contacts. Settings: spell, outpatient, ae (hospital), and gp,
    community, mental_health."""
    from openphm.finance.tariff import load_tariff

    tariff = load_tariff()
    lines = tariff.lines
    prices = {(a, c): v for a, c, v in lines.select("activity", "category", "unit_cost").iter_rows()}
    trims = {c: t for c, t in lines.filter(pl.col("trim_point_days").is_not_null())
             .select("category", "trim_point_days").iter_rows()}

    def in_fy(source: str, col: str) -> pl.LazyFrame:
        return _scan(folder, source).filter((_as_date(col) >= fy0) & (_as_date(col) < fy1))

    los = (_as_date("discharge_date") - _as_date("admission_date")).dt.total_days()
    method, classification = pl.col("admission_method").cast(pl.Utf8), pl.col("patient_classification").cast(pl.Utf8)
    category = (pl.when(classification.is_in(["3", "4"])).then(pl.lit("regular_day_attender"))
                .when(method.str.starts_with("1") & (classification == "2")).then(pl.lit("day_case"))
                .when(method.str.starts_with("1")).then(pl.lit("elective"))
                .when(method.str.starts_with("3")).then(pl.lit("maternity"))
                .when(method.str.starts_with("8")).then(pl.lit("birth"))
                .when(los <= 1).then(pl.lit("non_elective_short_stay")).otherwise(pl.lit("non_elective_long_stay")))
    excess_rate = pl.when(category == "elective").then(prices.get(("inpatient_spell", "excess_bed_day_elective"), 0.0))
    excess_rate = excess_rate.otherwise(prices.get(("inpatient_spell", "excess_bed_day_non_elective"), 0.0))
    trim = category.replace_strict(trims, default=None, return_dtype=pl.Float64)
    adult = (_as_date("admission_date") - _as_date("date_of_birth")).dt.total_days() >= 18 * 365.25
    critical_rate = (pl.when(method.str.starts_with("8"))
                     .then(prices.get(("inpatient_spell", "critical_care_neonatal"), 0.0))
                     .when(adult).then(prices.get(("inpatient_spell", "critical_care_adult"), 0.0))
                     .otherwise(prices.get(("inpatient_spell", "critical_care_paediatric"), 0.0)))
    weights = tariff.hrg_weights.rename({"category": "cost_category", "hrg": "spell_hrg"})
    spells = (in_fy("apc", "admission_date")
              .with_columns(category.alias("cost_category"), pl.col("spell_hrg").cast(pl.Utf8))
              .join(weights.lazy(), on=["cost_category", "spell_hrg"], how="left")
              .select("nhs_number", (pl.col("cost_category").replace_strict(
                  {c: v for (a, c), v in prices.items() if a == "inpatient_spell"}, default=0.0,
                  return_dtype=pl.Float64) * pl.col("weight").fill_null(1.0)
                  + pl.when(los > trim).then((los - trim) * excess_rate).otherwise(0.0)
                  + pl.col("critical_care_days").cast(pl.Float64).fill_null(0.0) * critical_rate).alias("cost")))
    first = pl.col("first_attendance").cast(pl.Utf8) == "1"
    attended = pl.col("attendance_status").cast(pl.Utf8).is_in(["5", "6"])
    settings = {
        "spell": spells,
        "ae": _priced(in_fy("ecds", "arrival_date"), "ae_attendance", pl.col("department_type").cast(pl.Utf8), prices),
        "outpatient": _priced(in_fy("op", "appointment_date"), "outpatient_appointment",
                              pl.when(~attended).then(pl.lit("did_not_attend")).when(first).then(pl.lit("first"))
                              .otherwise(pl.lit("follow_up")), prices),
    }
    status, mode = pl.col("appointment_status").cast(pl.Utf8), pl.col("appointment_mode").cast(pl.Utf8)
    settings["gp"] = _priced(in_fy("gp_appointments", "appointment_date"), "gp_appointment",
                             pl.when(status == "DNA").then(pl.lit("did_not_attend")).when(mode == "Home Visit")
                             .then(pl.lit("home_visit")).otherwise(pl.col("hcp_type").cast(pl.Utf8)), prices)
    settings["community"] = _priced(in_fy("csds", "contact_date"), "community_contact",
                                    pl.col("team_type").cast(pl.Utf8), prices)
    settings["mental_health"] = _priced(in_fy("mhsds", "contact_date"), "mental_health_contact",
                                        pl.col("team_type").cast(pl.Utf8), prices)
    parts = [frame.with_columns(pl.lit(name).alias("setting")) for name, frame in settings.items()]
    return (pl.concat(parts).group_by("nhs_number", "setting").agg(pl.col("cost").sum())
            .collect().sort("nhs_number", "setting"))


ADMITTED = ("spell",)  # admitted patient care: the published concentration figures' spend


def top_share(spend: pl.DataFrame, pop: pl.DataFrame | None, share: float,
              settings: tuple[str, ...] | None = None) -> float:
    """Percentage of the spend in `settings` (all if None) on the costliest `share` of people: everyone
    registered at mid-year (`pop`), and everyone with spending in the year (those who died or left
    before mid-year, or came after, included), as the published figures count people; with `pop`
    None, of patients (the people with spending in those settings)."""
    if settings is not None:
        spend = spend.filter(pl.col("setting").is_in(settings))
    per = spend.group_by("nhs_number").agg(pl.col("cost").sum()).filter(pl.col("cost") > 0)
    if pop is not None:
        per = pop.select("nhs_number").join(per, on="nhs_number", how="full", coalesce=True)
    costs = per["cost"].fill_null(0.0).sort(descending=True).to_numpy()
    k = max(round(share * len(costs)), 1)
    return 100 * costs[:k].sum() / max(costs.sum(), 1e-9)


def panel_patients(folder: Path, fy0: dt.date, fy1: dt.date, pop: pl.DataFrame,
                   spend: pl.DataFrame) -> pl.DataFrame:
    """The published figures' patients (nhs_number): people admitted at some time in the three financial
    years around [fy0, fy1) (those the extract holds), and present in it: registered at mid-year
    (`pop`) or with admitted care in it."""
    before, after = fy0.replace(year=fy0.year - 1), fy1.replace(year=fy1.year + 1)
    admission = _as_date("admission_date")
    admitted = (_scan(folder, "apc").filter((admission >= before) & (admission < after))
                .select("nhs_number").unique().collect())
    present = pl.concat([pop.select("nhs_number"),
                         spend.filter(pl.col("setting").is_in(ADMITTED)).select("nhs_number")]).unique()
    return admitted.join(present, on="nhs_number")


def spend_concentration(folder: Path, fy0: dt.date, fy1: dt.date, pop: pl.DataFrame) -> list[Check]:
    """Share of admitted-care spend on the costliest 1% of the mid-year population and of patients
    (`panel_patients`), overall, at 65+ and under 25, and of health care spend on the costliest 5%
    (`person_spend`), set beside the published English figures.

    As read here (docs/synthetic-ics.md, "Concentration of spend"; the paper's method could not be
    read): Kelly, Stoye & Vera-Hernandez costed HES admitted patient care (the data released to the
    project: NHS Digital data release register, DARS-NIC-17824-V9F2B) over 2010/11-2012/13, and their
    patients are the people in that extract, some with no spending in a given year (the abstract
    follows "those with zero expenditures"): so here admitted care, and patients admitted at some time
    in the three years around the one measured."""
    spend = person_spend(folder, fy0, fy1)
    patients = panel_patients(folder, fy0, fy1, pop, spend)
    ifs = "Kelly, Stoye & Vera-Hernandez, IFS W15/21 (2015)"
    fiscal = "Kelly, Stoye & Vera-Hernandez, Fiscal Studies 2016"

    def shares(keep: pl.Expr | None) -> tuple[float, float]:
        """(% on the costliest 1% of people, % on the costliest 1% of patients) in the group `keep`."""
        people = pop if keep is None else pop.filter(keep)
        who = people.select("nhs_number")
        group = spend if keep is None else spend.join(who, on="nhs_number")
        their = patients if keep is None else patients.join(who, on="nhs_number")
        return (top_share(group, people, 0.01, ADMITTED),
                top_share(group.join(their, on="nhs_number"), their, 0.01, ADMITTED))

    (everyone, all_patients), (old, old_patients), (young, young_patients) = (
        shares(None), shares(pl.col("age") >= 65), shares(pl.col("age") < 25))
    return [
        Check("Admitted-care spend on the costliest 1% of people %", everyone, 32, 24, 40, ifs),
        Check("Admitted-care spend on the costliest 1% of patients %", all_patients, 18, 13.5, 22.5, ifs),
        # within age groups (Fiscal Studies 37(3-4), 2016): people, then patients
        Check("Admitted-care spend on the costliest 1% of people aged 65+ %", old, 22, 17, 27, fiscal),
        Check("Admitted-care spend on the costliest 1% of patients aged 65+ %", old_patients, 13, 9.75, 16.25, fiscal),
        Check("Admitted-care spend on the costliest 1% of people under 25 %", young, 33, 25, 41, fiscal),
        Check("Admitted-care spend on the costliest 1% of patients under 25 %", young_patients, 20, 15, 25, fiscal),
        Check("Health care spend on the costliest 5% of people %", top_share(spend, pop, 0.05), 50, 40, 60,
              "Dreyer et al., Health Foundation working paper 7 (2019)"),
    ]


def calibration_frame(checks: list[Check]) -> pl.DataFrame:
    """The checks as a table for printing or writing."""
    return pl.DataFrame({
        "measure": [c.measure for c in checks],
        "generated": [round(c.generated, 2) for c in checks],
        "reference": [round(c.reference, 2) for c in checks],
        "accepted": [f"{c.low:.2f}-{c.high:.2f}" for c in checks],
        "ok": [c.ok for c in checks],
        "source": [c.source for c in checks],
    })
