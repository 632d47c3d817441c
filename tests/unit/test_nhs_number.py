import numpy as np
import pytest
from nhs_number import is_valid as reference_is_valid  # independent implementation (PyPI nhs-number)

from openphm.identity.nhs_number import check_digit, check_digits, is_valid, valid_mask


def test_published_example_is_valid():
    # 943 476 5919 is the example number in the NHS Data Dictionary's description of modulus 11.
    assert is_valid("9434765919")
    assert is_valid("943 476 5919")
    assert check_digit("943476591") == 9


@pytest.mark.parametrize("value", ["9434765918", "943476591", "94347659199", "abcdefghij", "", None])
def test_invalid_values(value):
    assert not is_valid(value)


def test_remainder_ten_has_no_valid_number():
    # weights 10..2 on 000000010 give 2*1... find a stem whose check digit would be 10
    stems = np.arange(400_000_000, 400_001_000)
    checks = check_digits(stems)
    ten = stems[checks == 10]
    assert len(ten) > 0
    for stem in ten[:5]:
        assert check_digit(str(stem)) is None
        assert not any(is_valid(f"{stem}{d}") for d in range(10))


def test_vectorised_matches_independent_implementation():
    rng = np.random.default_rng(0)
    # within the ranges issued in England (the library also checks that the range was issued)
    numbers = np.r_[rng.integers(4_000_000_000, 4_999_999_999, 2_500),
                    rng.integers(6_000_000_000, 7_999_999_999, 2_500)]
    ours = valid_mask(numbers)
    theirs = np.array([reference_is_valid(str(n)) for n in numbers])
    assert (ours == theirs).all()
    assert ours.any() and not ours.all()
    assert valid_mask(np.array([-1]))[0] == False  # noqa: E712  (missing)
