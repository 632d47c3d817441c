"""Disclosure control, hand-worked: redact 1-7, round the rest to 5, rates from the rounded counts,
secondary suppression within groups that add up to a total."""

import polars as pl
import pytest

from openphm.governance.disclosure import (
    assert_no_small_counts,
    protect_count,
    protect_frame,
    protect_rate,
    small_counts,
)


@pytest.mark.parametrize("n, shown", [(0, 0), (1, None), (7, None), (8, 10), (10, 10), (12, 10), (13, 15),
                                      (17, 15), (18, 20), (1002, 1000), (1003, 1005), (None, None)])
def test_counts(n, shown):
    assert protect_count(n) == shown


def test_every_count_up_to_500_is_zero_redacted_or_a_multiple_of_5_within_2():
    for n in range(501):
        shown = protect_count(n)
        assert shown is None or shown == 0 or (shown >= 10 and shown % 5 == 0 and abs(shown - n) <= 2)
        assert (shown is None) == (1 <= n <= 7)


@pytest.mark.parametrize("bad", [-1, 2.5])
def test_a_count_that_is_not_a_count_is_refused(bad):
    with pytest.raises(ValueError):
        protect_count(bad)


def test_rates_come_from_the_rounded_counts_and_are_redacted_with_them():
    assert protect_rate(12, 98, 1000) == pytest.approx(1000 * 10 / 100)  # not 122.4
    assert protect_rate(5, 98, 1000) is None
    assert protect_rate(12, 6) is None
    assert protect_rate(0, 40) == 0
    assert protect_rate(0, 0) is None


def test_a_table_with_secondary_suppression_within_each_pcn():
    # PCN U1: P1 has 3 (redacted); the next smallest, P2 with 9 (shown 10), goes too, or P1 = total - rest.
    # PCN U2: two cells already redacted: nothing more to do. PCN U3: none redacted. Zeros stay zeros.
    frame = pl.DataFrame({
        "pcn": ["U1", "U1", "U1", "U2", "U2", "U2", "U3", "U3"],
        "practice": ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8"],
        "events": [3, 9, 40, 2, 6, 51, 0, 23],
        "people": [120, 130, 150, 88, 90, 1001, 12, 300],
    })
    got = protect_frame(frame, ["events", "people"], {"rate": ("events", "people", 1000)}, within=["pcn"])
    assert got["events"].to_list() == [None, None, 40, None, None, 50, 0, 25]
    assert got["people"].to_list() == [120, 130, 150, 90, 90, 1000, 10, 300]
    rates = got["rate"].to_list()
    assert rates[0] is None and rates[1] is None and rates[3] is None
    assert rates[2] == pytest.approx(1000 * 40 / 150) and rates[5] == pytest.approx(1000 * 50 / 1000)
    assert rates[6] == 0 and rates[7] == pytest.approx(1000 * 25 / 300)
    assert_no_small_counts(got, ["events", "people"])


def test_a_rate_must_be_built_from_protected_counts():
    frame = pl.DataFrame({"events": [10], "people": [100]})
    with pytest.raises(ValueError, match="protected counts"):
        protect_frame(frame, ["events"], {"rate": ("events", "people", 1.0)})


def test_the_last_check_finds_what_protection_cannot_produce():
    assert small_counts([0, 10, 15, None, 3, 12, 7.0, 2.5, True]) == [3, 12, 7.0]
    with pytest.raises(ValueError, match="column n"):
        assert_no_small_counts(pl.DataFrame({"n": [10, 4]}), ["n"])
