import numpy as np

from openphm.identity.nhs_number import valid_mask
from openphm.synth.errors import (
    dates_of_birth_with_errors,
    misspell,
    mistype_nhs_numbers,
    mistype_postcodes,
    nhs_numbers_with_errors,
)
from openphm.synth.names import NameBank


def days(iso: str) -> int:
    return int((np.datetime64(iso) - np.datetime64("1970-01-01")).astype(int))


def test_mistyped_numbers_always_fail_modulus_11():
    rng = np.random.default_rng(1)
    good = NameBank().new_nhs_numbers(rng, 20_000)
    assert valid_mask(good).all()
    bad = mistype_nhs_numbers(rng, good)
    assert not valid_mask(bad).any()
    # one keying error: the numbers differ in one or two adjacent digits
    diff = np.array([sum(a != b for a, b in zip(f"{x:010d}", f"{y:010d}", strict=True))
                     for x, y in zip(good[:500], bad[:500], strict=True)])
    assert set(diff) <= {1, 2}


def test_error_codes_describe_what_was_done():
    rng = np.random.default_rng(2)
    good = NameBank().new_nhs_numbers(rng, 50_000)
    sent, code = nhs_numbers_with_errors(rng, good, 0.02, 0.01)
    assert (sent[code == 1] == -1).all()
    assert not valid_mask(sent[code == 2]).any()
    assert (sent[code == 0] == good[code == 0]).all()
    assert 0.015 < (code == 1).mean() < 0.025 and 0.007 < (code == 2).mean() < 0.013


def test_day_and_month_transposed():
    rng = np.random.default_rng(3)
    dob = np.array([days("1980-03-07"), days("1955-12-25"), days("2001-05-05")])
    out, code = dates_of_birth_with_errors(rng, dob, 1.0)
    assert out[0] == days("1980-07-03") and code[0] == 1
    # 25 cannot be a month and 5/5 swaps to itself: those are shifted by a day instead
    assert abs(out[1] - dob[1]) == 1 and code[1] == 2
    assert abs(out[2] - dob[2]) == 1 and code[2] == 2


def test_misspelling_and_postcode_typos_change_the_value():
    rng = np.random.default_rng(4)
    words = np.array(["Smith", "Patel", "Okonkwo"] * 100, dtype=object)
    out, flags = misspell(rng, words, 1.0)
    assert (out[flags == 1] != words[flags == 1]).all()
    assert flags.mean() > 0.9
    pcs = np.array(["ZX1 2AB", "ZY12 3DD"], dtype=object)
    out, flags = mistype_postcodes(rng, pcs, 1.0)
    assert list(out) == ["ZX1 2BA", "ZY12 3DA"] and flags.all()
