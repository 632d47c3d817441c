"""Emergency admissions near the end of life (synth.hospital.end_of_life_events): as many as the
parameter says in a last year of life, all within it, rising towards death as the intensity says,
whatever periods the year is cut into, and none for people who do not die within a year."""

import types

import numpy as np
import pytest

from openphm.synth.hospital import end_of_life_events, end_of_life_share
from openphm.synth.parameters import load_parameters
from openphm.synth.people import EXIT_DIED
from openphm.synth.periods import Periods

N, DEATH = 40_000, 400


def _periods(pid: np.ndarray, start: np.ndarray, end: np.ndarray) -> Periods:
    zeros = np.zeros(len(pid), dtype=np.int64)
    return Periods(pid=pid, pos=pid, start=start, end=end, practice=zeros, postcode=zeros, care_home=zeros - 1,
                   band=zeros + 17, age=zeros + 85.0)


def _people(exit_day: int, reason: int) -> types.SimpleNamespace:
    return types.SimpleNamespace(exit=np.full(N, exit_day), exit_reason=np.full(N, reason))


@pytest.fixture(scope="module")
def hosp() -> dict:
    return load_parameters()["hospital"]


def test_a_whole_last_year_gets_the_expected_number_all_within_it_rising_towards_death(hosp):
    pid = np.arange(N)
    periods = _periods(pid, np.zeros(N, dtype=np.int64), np.full(N, DEATH))
    idx, date = end_of_life_events(np.random.default_rng(1), periods, _people(DEATH, EXIT_DIED))
    total, days = hosp["end_of_life_admissions"], hosp["end_of_life_days"]
    assert abs(len(idx) / N - total) < 4 * np.sqrt(total / N)
    assert date.min() >= DEATH - 366 and date.max() < DEATH
    # share within `days` of death: (1 - e^-1) / (1 - e^(-365.25 / days)) under the intensity
    expected = (1 - np.exp(-1)) / (1 - np.exp(-365.25 / days))
    within = np.mean(date >= DEATH - days)
    assert abs(within - expected) < 4 * np.sqrt(expected * (1 - expected) / len(date))


def test_cutting_the_year_into_periods_changes_nothing_but_the_draws(hosp):
    pid = np.repeat(np.arange(N), 2)
    start, end = np.tile([0, 250], N), np.tile([250, DEATH], N)
    idx, date = end_of_life_events(np.random.default_rng(2), _periods(pid, start, end), _people(DEATH, EXIT_DIED))
    assert abs(len(idx) / N - hosp["end_of_life_admissions"]) < 4 * np.sqrt(hosp["end_of_life_admissions"] / N)
    assert np.all((date >= start[idx]) & (date < end[idx]))  # each event dated within its own period


def test_no_admissions_for_people_who_leave_alive_or_die_more_than_a_year_after_the_period():
    periods = _periods(np.arange(N), np.zeros(N, dtype=np.int64), np.full(N, DEATH))
    left = end_of_life_events(np.random.default_rng(3), periods, _people(DEATH, EXIT_DIED + 1))
    later = end_of_life_events(np.random.default_rng(3), periods, _people(DEATH + 366, EXIT_DIED))
    assert len(left[0]) == 0 and len(later[0]) == 0


def test_share_kept_within_the_year_of_death_matches_simulation():
    rng = np.random.default_rng(4)
    for days in (30.0, 120.0, 365.0):
        d = rng.uniform(0, 365.25, 400_000)  # days from the start of the year to the death
        simulated = np.mean((1 - np.exp(-d / days)) / (1 - np.exp(-365.25 / days)))
        assert end_of_life_share(days) == pytest.approx(simulated, abs=0.002)
