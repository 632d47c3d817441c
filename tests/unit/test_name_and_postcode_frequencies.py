"""Synthetic people share surnames and postcodes about as often as people in England do: what makes
record linkage hard or easy, and how large its blocks grow with the size of the ICS."""

import re

import numpy as np
import pytest

from openphm.synth.geography import LSOA_SIZE, PLACE_NAMES, build_geography
from openphm.synth.names import GROUPS, NameBank, surname_tail

# UK electoral register 1996, share of people with each of the 21 commonest surnames (%): the
# comparative table of leading surnames, surnamestudies.org.uk (homepages.newnet.co.uk/dance/webpjd/
# offstats/comtable.htm), column "Electoral Reg %".
REGISTER_1996 = {"Smith": 1.20, "Jones": 0.90, "Williams": 0.62, "Taylor": 0.56, "Brown": 0.58, "Davies": 0.47,
                 "Evans": 0.38, "Thomas": 0.34, "Wilson": 0.42, "Roberts": 0.32, "Johnson": 0.33, "Robinson": 0.29,
                 "Wright": 0.30, "Thompson": 0.29, "Walker": 0.30, "White": 0.28, "Edwards": 0.26, "Green": 0.26,
                 "Hall": 0.26, "Wood": 0.25, "Harris": 0.25}
# Lasker (1983), Human Biology 55(2): marriages in England and Wales, first quarter of 1975, coefficient of
# relationship by isonymy 0.0004823, i.e. a couple shares a surname with probability 4 x 0.0004823. Couples
# are more alike than two people drawn at random (they meet locally), so this bounds the random chance above.
MARITAL_ISONYMY = 4 * 0.0004823


@pytest.fixture(scope="module")
def bank() -> NameBank:
    return NameBank()


def _white_surnames(bank: NameBank) -> tuple[list[str], np.ndarray]:
    idx, p = bank._pools[("family", "white")]
    return [bank.family_names[i] for i in idx], p


def test_the_commonest_surnames_are_as_common_as_on_the_electoral_register(bank):
    names, p = _white_surnames(bank)
    share = dict(zip(names, 100 * p, strict=True))
    assert share["Smith"] == pytest.approx(REGISTER_1996["Smith"], abs=0.15)
    order = np.sort(100 * p)[::-1]
    # the tenth commonest name: 0.32% on the register (Roberts)
    assert 0.25 <= order[9] <= 0.40
    # most of the register's 21 commonest names are among the synthetic 60 commonest
    top = {names[i] for i in np.argsort(-p)[:60]}
    assert len(set(REGISTER_1996) & top) >= 17, set(REGISTER_1996) - top


def test_two_people_share_a_surname_about_as_rarely_as_in_england(bank):
    _, p = _white_surnames(bank)
    chance = float((p ** 2).sum())
    # at least what the register's 21 commonest names alone give; below couples' isonymy
    floor = sum((v / 100) ** 2 for v in REGISTER_1996.values())
    assert floor < chance < MARITAL_ISONYMY, (floor, chance, MARITAL_ISONYMY)


def test_a_large_population_holds_thousands_of_surnames(bank):
    rng = np.random.default_rng(5)
    drawn = bank.draw_family(rng, np.zeros(200_000, dtype=np.int64))
    assert len(np.unique(drawn)) > 3_500
    # and each group draws from its own list: no group's commonest name is more than 8% of it
    for g, _ in enumerate(GROUPS):
        counts = np.bincount(bank.draw_family(rng, np.full(50_000, g, dtype=np.int64)))
        assert counts.max() / 50_000 < 0.08


def test_made_up_surnames_look_like_names_and_repeat_none_listed(bank):
    tail = surname_tail(set())
    assert len(tail) == len(set(tail)) > 3_000
    assert all(re.fullmatch(r"[A-Z][a-z]{3,14}", n) for n in tail)
    assert not {"Smith", "Jones"} & set(surname_tail({"Smith", "Jones"}))
    assert surname_tail(set()) == tail  # the same order every time
    assert not set(tail) & {w for place in PLACE_NAMES for w in place.split()}  # Elmstead is a place


def test_about_forty_people_share_a_postcode():
    geo = build_geography(np.random.default_rng([7, 1]), 120_000, 500)
    n_lsoa, per = len(geo.lsoa_first_postcode), int(geo.lsoa_n_postcodes[0])
    homes = geo.postcode[n_lsoa * per:]  # care homes' own postcodes follow the households'
    assert len(homes) == len(geo.care_home_postcode)
    assert len(set(geo.postcode)) == len(geo.postcode)
    assert all(re.fullmatch(r"Z[XYW]\d{1,2} \d[A-Z]{2}", pc) for pc in geo.postcode)
    assert (np.bincount(geo.postcode_lsoa[: n_lsoa * per]) == per).all()
    assert (geo.lsoa_n_postcodes == per).all() and 30 <= LSOA_SIZE / per <= 50
