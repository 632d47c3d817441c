"""Risk share between partners: the settlement of a year's spend under an agreement, worked by hand; the
simulated spend and settlement against their analytic expectations; scenarios; and what a wrong
agreement or scenario file is told."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from openphm.finance.agreement import (
    AgreementError,
    load_agreement,
    parse_agreement,
    settle,
    settle_runs,
    with_baseline_budgets,
)
from openphm.finance.simulate import BaseYear, Change, Scenario, ScenarioError, ageing_ratios, load_scenario, simulate

DATA = Path(__file__).parents[2] / "src" / "openphm" / "finance" / "data"
NE, AE, GP, ASC = "Non-elective admissions", "A&E", "General practice", "Adult social care"


def agreement(**changes) -> dict:
    """Three partners, the hand-worked terms of the first test; `changes` replace top-level terms."""
    data = {"name": "hand", "year": "2025-26",
            "partners": [{"id": "acute", "name": "Acute trust", "bears": [NE, AE], "budget": 100e6},
                         {"id": "community", "name": "Community", "bears": ["Community health"], "budget": 50e6},
                         {"id": "council", "name": "Council", "bears": [ASC], "budget": 30e6, "cap": 0.5e6}],
            "terms": {"corridor": 0.02, "loss_share": {"acute": 0.5, "community": 0.3, "council": 0.2},
                      "gain_share": {"acute": 0.4, "community": 0.4, "council": 0.2}, "residual": "acute"}}
    data["terms"].update(changes)
    return data


def test_hand_worked_settlement():
    """Corridor 2%; loss shares 0.5 / 0.3 / 0.2; gain shares 0.4 / 0.4 / 0.2; the council's cap £0.5m;
    what caps leave over goes to the acute trust.

    acute: budget 100m, spend 106m: variance +6m; own 2% x 100m = +2m; excess +4m.
    community: budget 50m, spend 47m: variance -3m; own -1m; excess -2m (an underspend to share).
    council: budget 30m, spend 31.2m: variance +1.2m; own +0.6m; excess +0.6m.
    Overspend excess shared: acute's 4m: 2.0 / 1.2 / 0.8; council's 0.6m: 0.3 / 0.18 / 0.12.
    The council's payments to others: 0.8m (of acute's), above its cap: cut to 0.5m; 0.3m left to acute.
    Underspend excess shared: community's 2m: acute receives 0.8, community keeps 0.8, council receives
    0.4 (within its cap).
    acute: 2 + 2.0 + 0.3 - 0.8 + 0.3 (residual) = 3.8m
    community: -1 + 1.2 + 0.18 - 0.8 = -0.42m
    council: 0.6 + 0.5 + 0.12 - 0.4 = 0.82m;  3.8 - 0.42 + 0.82 = 4.2m = 6 - 3 + 1.2."""
    result = settle(parse_agreement(agreement()), {"acute": 106e6, "community": 47e6, "council": 31.2e6})
    assert {k: round(v.net / 1e6, 6) for k, v in result.items()} == {"acute": 3.8, "community": -0.42,
                                                                      "council": 0.82}
    council = result["council"]
    assert (council.own_share, council.excess) == pytest.approx((0.6e6, 0.6e6))
    lines = {(line.of_partner, line.kind): (line.before_cap, line.amount) for line in council.lines}
    assert lines == {("acute", "overspend"): pytest.approx((0.8e6, 0.5e6)),
                     ("council", "overspend"): pytest.approx((0.12e6, 0.12e6)),
                     ("community", "underspend"): pytest.approx((-0.4e6, -0.4e6))}
    assert council.cut_by_cap == pytest.approx(0.3e6)
    assert result["acute"].residual == pytest.approx(0.3e6)
    assert result["community"].own_share == pytest.approx(-1e6)


def test_a_gain_cap_leaves_the_rest_of_the_gain_to_the_residual_partner():
    """Council cap £0.1m. Community underspends by 10m on 50m: own -1m, excess -9m; the council's 20% is
    1.8m, cut to 0.1m; the 1.7m goes to acute (residual): acute receives 0.4 x 9 + 1.7 = 5.3m."""
    data = agreement()
    data["partners"][2]["cap"] = 0.1e6
    result = settle(parse_agreement(data), {"acute": 100e6, "community": 40e6, "council": 30e6})
    assert result["council"].net == pytest.approx(-0.1e6)
    assert result["acute"].net == pytest.approx(-5.3e6)
    assert result["community"].net == pytest.approx(-1e6 - 0.4 * 9e6)


def test_every_pound_is_placed_whatever_the_spend():
    data = agreement()
    data["partners"][1]["cap"] = 0.2e6
    terms = parse_agreement(data)
    rng = np.random.default_rng(3)
    spend = np.array([100e6, 50e6, 30e6])[:, None] * rng.normal(1, 0.08, (3, 2000))
    settled = settle_runs(terms, spend)
    np.testing.assert_allclose(settled["net"].sum(axis=0), settled["variance"].sum(axis=0), rtol=0, atol=1e-3)
    # a partner within its corridor with nobody else beyond theirs bears exactly its variance
    inside = settle(terms, {"acute": 101e6, "community": 49.9e6, "council": 30.3e6})
    assert [round(s.net) for s in inside.values()] == [1_000_000, -100_000, 300_000]


def population(n: int = 400, seed: int = 5) -> BaseYear:
    """People aged 20 to 95 with emergency admissions, A&E and GP appointments (a Poisson number each, at
    tariff-like prices), and a few with social care."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(n)]
    age = rng.integers(20, 96, n).astype(float)
    people = pl.DataFrame({"person_id": ids, "sex": rng.choice(["F", "M"], n).tolist(), "age": age,
                           "practice_code": rng.choice(["A81001", "A81002"], n).tolist()})
    rows = []
    for i, a in enumerate(age):
        for activity, category, setting, mean, price in (
                ("inpatient_spell", "non_elective_long_stay", NE, 0.004 * a, 4000.0),
                ("inpatient_spell", "non_elective_short_stay", NE, 0.002 * a, 700.0),
                ("ae_attendance", "01", AE, 0.01 * a, 250.0), ("gp_appointment", "GP", GP, 0.1 * a, 42.0)):
            events = rng.poisson(mean)
            if events:
                rows.append((ids[i], activity, category, setting, events, events * price * rng.uniform(1, 1.2)))
        if rng.random() < 0.05:
            rows.append((ids[i], "social_care_service", "Home Care", ASC, 1, float(rng.uniform(2e3, 3e4))))
    activity = pl.DataFrame(rows, schema=["person_id", "activity", "cost_category", "setting", "events", "cost"],
                            orient="row")
    return BaseYear("2024-25", people, activity, {}, 0)


def two_partners(corridor: float = 0.0, share: float = 0.5) -> dict:
    return {"name": "two", "year": "2025-26",
            "partners": [{"id": "acute", "name": "Acute", "bears": [NE, AE], "budget": "baseline", "growth": 0.01},
                         {"id": "system", "name": "System", "bears": [GP, ASC], "budget": "baseline",
                          "growth": -0.02}],
            "terms": {"corridor": corridor, "loss_share": {"acute": share, "system": 1 - share},
                      "gain_share": {"acute": share, "system": 1 - share}}}


def within_mc_error(values: np.ndarray, expected: float, sds: float = 4.0) -> bool:
    return abs(values.mean() - expected) <= sds * values.std(ddof=1) / np.sqrt(len(values))


def test_simulated_mean_spend_equals_the_analytic_expectation():
    """E[spend] = sum over people of expected events x unit cost = the base year's spend (the bootstrap
    mean is the population total; each Poisson mean is the observed count)."""
    base = population()
    result = simulate(parse_agreement(two_partners()), base, runs=3000, seed=1)
    for q, settings in enumerate(([NE, AE], [GP, ASC])):
        actual = float(base.activity.filter(pl.col("setting").is_in(settings))["cost"].sum())
        assert result.expected_spend[result.agreement.ids[q]] == pytest.approx(actual, rel=1e-12)
        assert within_mc_error(result.spend[q], actual)
        assert result.spend[q].std() > 0.01 * actual  # it does vary


def test_with_no_corridor_and_a_50_50_share_the_mean_split_is_the_analytic_split():
    """With no corridor, no caps and 50/50 shares each partner bears half the total variance, so its mean
    net is half of (expected total spend - total budget)."""
    base = population()
    result = simulate(parse_agreement(two_partners()), base, runs=3000, seed=2)
    budgets = sum(p.budget for p in result.agreement.partners)
    analytic = 0.5 * (sum(result.expected_spend.values()) - budgets)
    for q in range(2):
        assert within_mc_error(result.settlement["net"][q], analytic)
    assert analytic != pytest.approx(0, abs=1e3)  # the budgets' growth differ: a real split


def test_a_scenario_removing_a_tenth_of_the_over_75s_emergency_admissions_lowers_spend_by_their_cost():
    base = population()
    terms = parse_agreement(two_partners())
    scenario = Scenario("fewer", load_scenario(DATA / "example_scenario.yaml").changes)
    before = simulate(terms, base, runs=3000, seed=3)
    after = simulate(terms, base, runs=3000, seed=4, scenario=scenario)
    over_75 = base.people.filter(pl.col("age") >= 75)["person_id"].implode()
    cost = float(base.activity.filter((pl.col("setting") == NE) & pl.col("person_id").is_in(over_75))["cost"].sum())
    assert before.expected_spend["acute"] - after.expected_spend["acute"] == pytest.approx(0.1 * cost, rel=1e-9)
    assert before.expected_spend["system"] == pytest.approx(after.expected_spend["system"], rel=1e-12)
    drop = before.spend[0].mean() - after.spend[0].mean()
    error = np.sqrt(before.spend[0].var() / 3000 + after.spend[0].var() / 3000)
    assert abs(drop - 0.1 * cost) <= 4 * error


def test_a_new_care_model_in_some_practices_changes_only_their_patients_activity():
    """GP appointments halve for the patients of A81001: expected GP spend falls by half of theirs, exactly."""
    base = population()
    change = Scenario("new model", (Change(0.5, setting=GP, who={"practices": ["A81001"]}),))
    terms = parse_agreement(two_partners())
    before, after = simulate(terms, base, runs=10), simulate(terms, base, runs=10, scenario=change)
    theirs = base.people.filter(pl.col("practice_code") == "A81001")["person_id"].implode()
    gp = float(base.activity.filter((pl.col("setting") == GP) & pl.col("person_id").is_in(theirs))["cost"].sum())
    assert before.expected_spend["system"] - after.expected_spend["system"] == pytest.approx(0.5 * gp, rel=1e-9)
    assert before.expected_spend["acute"] == pytest.approx(after.expected_spend["acute"], rel=1e-12)


def test_ageing_a_year_uses_the_cost_of_people_a_year_older():
    """Cost per person rising by £10 a year of age (ages 20..80): the smoothed mean at a is 10a, at a + 1
    10(a + 1), so the ratio at 50 is 51/50."""
    ages = list(range(20, 81)) * 4
    people = pl.DataFrame({"person_id": [f"p{i}" for i in range(len(ages))], "sex": ["F"] * len(ages),
                           "age": [float(a) for a in ages], "practice_code": ["A"] * len(ages)})
    activity = pl.DataFrame({"person_id": people["person_id"], "activity": "gp_appointment",
                             "cost_category": "GP", "setting": GP, "events": 1, "cost": [10.0 * a for a in ages]})
    ratios = ageing_ratios(people, activity, 1).filter((pl.col("setting") == GP) & (pl.col("age_year") == 50))
    assert ratios["ratio"].item() == pytest.approx(51 / 50)
    base = BaseYear("2024-25", people, activity, {}, 0)
    data = two_partners()
    for partner in data["partners"]:
        partner["budget"] = 1e6
    aged = simulate(parse_agreement(data), base, runs=10, scenario=Scenario("older", age_years=1))
    assert aged.expected_spend["system"] > sum(10.0 * a for a in ages)


def test_baseline_budgets_are_the_base_years_spend_plus_growth():
    terms = with_baseline_budgets(parse_agreement(two_partners()), {NE: 100.0, AE: 50.0, GP: 20.0, ASC: 10.0})
    assert [p.budget for p in terms.partners] == pytest.approx([150 * 1.01, 30 * 0.98])


def test_the_example_agreement_and_scenario_load():
    terms = load_agreement(DATA / "example_agreement.yaml")
    assert len(terms.partners) == 4 and terms.needs_baseline
    assert sorted(s for p in terms.partners for s in p.bears) == sorted(
        [NE, "Elective and day-case admissions", "Maternity and births", AE, "Outpatients", GP, "Community health",
         "Mental health", ASC, "Social prescribing"])
    assert load_scenario(DATA / "example_scenario.yaml").changes[0].factor == 0.9


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["partners"][1].update(bears=["Theatres"]),
     "a.yaml: partners[1].bears[0]: 'Theatres' is not a setting (settings: Non-elective admissions"),
    (lambda d: d["partners"][1].update(bears=[AE]), "a.yaml: partners[1].bears: 'A&E' is already borne by acute"),
    (lambda d: d["terms"]["loss_share"].update(acute=0.4), "a.yaml: terms.loss_share: the shares sum to 0.9, not 1"),
    (lambda d: d["terms"]["gain_share"].update(pcn=0.0), "a.yaml: terms.gain_share.pcn: not a partner"),
    (lambda d: d["terms"].pop("residual"), "a.yaml: terms.residual: council has a cap"),
    (lambda d: d["partners"][0].update(cap=1.0), "a.yaml: partners[0].cap: acute is the residual partner"),
    (lambda d: d["partners"][0].update(budget="last year"), "a.yaml: partners[0].budget: 'last year' is not a budget"),
    (lambda d: d["terms"].update(corridor=1.5), "a.yaml: terms.corridor: 1.5 is greater than the maximum of 1"),
    (lambda d: d["partners"][2].update(id="acute"), "a.yaml: partners[2].id: 'acute' is also partners[0]"),
    (lambda d: d.update(year="2025-27"), "a.yaml: year: a financial year is written like 2023-24"),
])
def test_a_wrong_agreement_is_told_the_file_and_the_field(change, message):
    data = agreement()
    change(data)
    with pytest.raises(AgreementError) as error:
        parse_agreement(data, "a.yaml")
    assert str(error.value).startswith(message)


def test_a_wrong_scenario_is_told_the_file_and_the_field(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nchanges:\n  - {setting: A&E, activity: ae_attendance, factor: 0.9}\n")
    with pytest.raises(ScenarioError, match=r"s.yaml: changes\[0\]: give either a setting or an activity"):
        load_scenario(path)
    path.write_text("name: x\nchanges:\n  - {setting: Theatres, factor: 0.9}\n")
    with pytest.raises(ScenarioError, match=r"s.yaml: changes\[0\]"):
        load_scenario(path)
    path.write_text("name: x\nchanges:\n  - {activity: ae_attendance, factor: 0.9, who: {age_min: 80, age_max: 70}}\n")
    with pytest.raises(ScenarioError, match=r"changes\[0\].who: age_min is above age_max"):
        load_scenario(path)


def test_the_report_is_self_contained_and_says_what_the_percentiles_mean(tmp_path):
    from openphm.finance.riskshare_report import write_simulation

    result = simulate(parse_agreement(two_partners()), population(), runs=500, seed=6)
    page = write_simulation(result, tmp_path).read_text(encoding="utf-8")
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert page.count("<svg") == 2 and "In 9 of 10 simulated years the net position of Acute lies between" in page
    data = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    net = result.settlement["net"][0]
    assert data["partners"]["acute"]["net"]["p95"] == pytest.approx(np.quantile(net, 0.95))
    assert data["partners"]["acute"]["probability_of_loss"] == pytest.approx((net > 0).mean())
    assert (data["runs"], data["seed"], data["base_year"], data["simulated_year"]) == (500, 6, "2024-25", "2025-26")


def test_system_shocks_keep_the_mean_and_widen_the_spread_by_their_size():
    """Each setting's spend times 1 + e, e ~ N(0, sd): the mean is unchanged, and the variance of a partner's
    spend grows by about (expected spend of each setting x its sd) squared, summed over its settings."""
    base = population()
    shocks = {NE: 0.05, AE: 0.05, GP: 0.02, ASC: 0.10}
    plain = simulate(parse_agreement(two_partners()), base, runs=4000, seed=7)
    shocked = simulate(parse_agreement(two_partners()), base, runs=4000, seed=7, shocks=shocks)
    assert shocked.shocks == shocks
    for q, settings in enumerate(([NE, AE], [GP, ASC])):
        expected = {s: float(base.activity.filter(pl.col("setting") == s)["cost"].sum()) for s in settings}
        assert within_mc_error(shocked.spend[q], sum(expected.values()))
        added = sum((expected[s] * shocks[s]) ** 2 for s in settings)
        assert shocked.spend[q].var() - plain.spend[q].var() == pytest.approx(added, rel=0.15)
