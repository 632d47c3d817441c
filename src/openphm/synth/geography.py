"""Places, PCNs, practices, LSOAs with IMD deciles, postcodes and care homes.

Sizes follow REFERENCE.md: PCNs of 30-50k people (smaller only when the whole ICS is
too small to hold three), practice list sizes log-normal with a mean near 10,000 and
the commonest size 4,000-5,999, LSOAs of about 1,600 people, IMD 2019 deciles
(1 = most deprived) clustered by place and PCN so that deprivation is geographic.
Codes are ODS-style but fictional (practices `C8xxxx`, PCNs `U9xxxx`, ICB `QZZ`,
trusts `RZx`) and postcodes use the unused areas `ZX`, `ZY`, `ZW`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr as normal_cdf

LSOA_SIZE = 1600
# Residential postcodes per LSOA: an LSOA holds 400-1,200 households (ONS, Census geography) and a
# postcode about 15 addresses (Royal Mail's Postcode Address File: about 1.8 million postcodes for
# 30 million addresses), so about 40 postcodes and 40 people to a postcode.
POSTCODES_PER_LSOA = 40
PLACE_NAMES = [
    "Ashvale", "Brookmere", "Carrowfield", "Dunmore", "Elmstead", "Fenwick", "Greyhaven",
    "Hollins", "Ivybridge Moor", "Kestrel Bay", "Larkhill", "Millbrook",
]
POSTCODE_AREAS = ["ZX", "ZY", "ZW"]
UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
ICB_CODE = "QZZ"
MENTAL_HEALTH_TRUST = "RZX"
COMMUNITY_TRUST = "RZY"


@dataclass
class Geography:
    """Organisations and areas of one synthetic ICS, as parallel arrays."""

    place_name: np.ndarray
    place_code: np.ndarray
    place_acute_trust: np.ndarray
    place_la_code: np.ndarray
    place_deprivation: np.ndarray
    pcn_code: np.ndarray
    pcn_place: np.ndarray
    practice_code: np.ndarray
    practice_pcn: np.ndarray
    practice_place: np.ndarray
    practice_list_target: np.ndarray
    lsoa_code: np.ndarray
    lsoa_pcn: np.ndarray
    lsoa_place: np.ndarray
    lsoa_decile: np.ndarray
    lsoa_weight: np.ndarray
    postcode: np.ndarray
    postcode_lsoa: np.ndarray
    lsoa_first_postcode: np.ndarray
    lsoa_n_postcodes: np.ndarray
    care_home_code: np.ndarray
    care_home_type: np.ndarray
    care_home_beds: np.ndarray
    care_home_postcode: np.ndarray
    care_home_practice: np.ndarray

    @property
    def lsoa_deprivation(self) -> np.ndarray:
        """Deprivation from -1 (decile 10, least deprived) to 1 (decile 1, most deprived)."""
        return (5.5 - self.lsoa_decile) / 4.5

    @property
    def care_home_lsoa(self) -> np.ndarray:
        """LSOA index of each care home."""
        return self.postcode_lsoa[self.care_home_postcode]

    @property
    def care_home_place(self) -> np.ndarray:
        """Place index of each care home."""
        return self.lsoa_place[self.care_home_lsoa]


def _split_sizes(rng: np.random.Generator, total: float, n: int, spread: float) -> np.ndarray:
    weights = rng.uniform(1 - spread, 1 + spread, size=n)
    return total * weights / weights.sum()


def _practice_sizes(rng: np.random.Generator, pcn_size: float) -> np.ndarray:
    # Log-normal list sizes: median 8,500 and sigma 0.6 give a mean near 10,000 and a mode near
    # 5,900 (REFERENCE.md: mean ~9,400-10,000; commonest 4,000-5,999).
    sizes: list[float] = []
    while sum(sizes) < pcn_size:
        sizes.append(float(np.clip(rng.lognormal(np.log(8500), 0.6), 1500, 40000)))
    if len(sizes) > 1 and sum(sizes) - pcn_size > sizes[-1] / 2:
        sizes.pop()
    arr = np.array(sizes)
    return arr * pcn_size / arr.sum()


def build_geography(rng: np.random.Generator, n_people: int, care_home_residents: float) -> Geography:
    """Lay out places, PCNs, practices, LSOAs, postcodes and care homes for `n_people`."""
    n_pcn = max(3, round(n_people / 40_000))
    n_place = max(3, min(n_pcn, 10, round(n_people / 150_000)))
    place_of_pcn = np.sort(np.arange(n_pcn) % n_place)
    pcn_size = _split_sizes(rng, n_people, n_pcn, 0.25)

    place_dep = rng.normal(0, 0.8, n_place)
    pcn_dep = place_dep[place_of_pcn] + rng.normal(0, 0.6, n_pcn)

    practice_pcn_list, practice_size_list = [], []
    for p in range(n_pcn):
        sizes = _practice_sizes(rng, pcn_size[p])
        practice_pcn_list.append(np.full(len(sizes), p))
        practice_size_list.append(sizes)
    practice_pcn = np.concatenate(practice_pcn_list)
    practice_size = np.concatenate(practice_size_list)
    n_practice = len(practice_pcn)

    lsoa_per_pcn = np.maximum(1, np.round(pcn_size / LSOA_SIZE).astype(int))
    lsoa_pcn = np.repeat(np.arange(n_pcn), lsoa_per_pcn)
    n_lsoa = len(lsoa_pcn)
    lsoa_weight = (pcn_size / lsoa_per_pcn)[lsoa_pcn] * rng.uniform(0.85, 1.15, n_lsoa)
    lsoa_weight /= lsoa_weight.sum()
    latent = pcn_dep[lsoa_pcn] + rng.normal(0, 1.0, n_lsoa)
    # National deciles are tenths of ranked LSOAs: map the latent score through its own normal
    # distribution (variance 0.64 + 0.36 + 1) so that deciles are uniform across many ICSs.
    quantile = normal_cdf(latent / np.sqrt(2.0))
    lsoa_decile = (10 - np.floor(quantile * 10).clip(0, 9)).astype(np.int64)

    n_pc = POSTCODES_PER_LSOA
    postcodes, postcode_lsoa = [], []
    # The first 12 units come from the geography's own stream as they always have, the rest from a
    # stream spawned off it, so that the care homes laid out below stay where they were.
    more = rng.spawn(1)[0]
    every_unit = np.arange(len(UNIT_LETTERS) ** 2)
    for i in range(n_lsoa):
        area = POSTCODE_AREAS[(i // 8 // 99) % len(POSTCODE_AREAS)]
        district = (i // 8) % 99 + 1
        sector = i % 8 + 1
        first = rng.choice(len(every_unit), size=12, replace=False)
        rest = more.choice(np.setdiff1d(every_unit, first), size=n_pc - 12, replace=False)
        for u in np.sort(np.concatenate([first, rest])):
            unit = UNIT_LETTERS[u // len(UNIT_LETTERS)] + UNIT_LETTERS[u % len(UNIT_LETTERS)]
            postcodes.append(f"{area}{district} {sector}{unit}")
            postcode_lsoa.append(i)

    n_homes = max(2, int(np.ceil(care_home_residents / 28 / 0.85)))
    home_lsoa = rng.choice(n_lsoa, size=n_homes, p=lsoa_weight)
    # Each care home has a postcode of its own (sector 9), shared with no household.
    home_postcode = len(postcodes) + np.arange(n_homes)
    for h, i in enumerate(home_lsoa):
        area = POSTCODE_AREAS[(i // 8 // 99) % len(POSTCODE_AREAS)]
        unit = UNIT_LETTERS[(h // len(UNIT_LETTERS)) % len(UNIT_LETTERS)] + UNIT_LETTERS[h % len(UNIT_LETTERS)]
        sector = 9 if h < len(UNIT_LETTERS) ** 2 else 0
        postcodes.append(f"{area}{(i // 8) % 99 + 1} {sector}{unit}")
        postcode_lsoa.append(int(i))
    home_beds = np.clip(rng.normal(28, 12, n_homes), 8, 90).round().astype(np.int64)
    home_type = np.where(rng.random(n_homes) < 0.45, "nursing", "residential")
    home_practice = np.empty(n_homes, dtype=np.int64)
    for h, pcn in enumerate(lsoa_pcn[home_lsoa]):
        candidates = np.flatnonzero(practice_pcn == pcn)
        home_practice[h] = rng.choice(candidates)

    n_acute = max(1, (n_place + 1) // 2)
    acute = np.array([f"RZ{chr(ord('A') + i)}" for i in range(n_acute)])
    place_codes = np.array([f"{ICB_CODE}-P{i + 1:02d}" for i in range(n_place)])
    return Geography(
        place_name=np.array(PLACE_NAMES[:n_place] if n_place <= len(PLACE_NAMES)
                            else [f"Place {i + 1}" for i in range(n_place)]),
        place_code=place_codes,
        place_acute_trust=acute[np.arange(n_place) * n_acute // n_place],
        place_la_code=np.array([f"E0600{9100 + i // 3}" for i in range(n_place)]),
        place_deprivation=place_dep,
        pcn_code=np.array([f"U9{1000 + i:04d}" for i in range(n_pcn)]),
        pcn_place=place_of_pcn,
        practice_code=np.array([f"C8{1001 + i:04d}" for i in range(n_practice)]),
        practice_pcn=practice_pcn,
        practice_place=place_of_pcn[practice_pcn],
        practice_list_target=practice_size,
        lsoa_code=np.array([f"E01{900000 + i:06d}" for i in range(n_lsoa)]),
        lsoa_pcn=lsoa_pcn,
        lsoa_place=place_of_pcn[lsoa_pcn],
        lsoa_decile=lsoa_decile,
        lsoa_weight=lsoa_weight,
        postcode=np.array(postcodes),
        postcode_lsoa=np.array(postcode_lsoa, dtype=np.int64),
        lsoa_first_postcode=np.arange(n_lsoa) * n_pc,
        lsoa_n_postcodes=np.full(n_lsoa, n_pc),
        care_home_code=np.array([f"1-{1000000000 + 7919 * i:010d}" for i in range(n_homes)]),
        care_home_type=home_type,
        care_home_beds=home_beds,
        care_home_postcode=home_postcode,
        care_home_practice=home_practice,
    )
