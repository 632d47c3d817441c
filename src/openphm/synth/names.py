"""Names, ethnic categories and NHS numbers for synthetic people."""

from __future__ import annotations

import csv
import zlib
from importlib import resources

import numpy as np

from openphm.identity.nhs_number import check_digits
from openphm.synth.geography import PLACE_NAMES
from openphm.synth.parameters import load_parameters

GROUPS = ["white", "asian", "black", "mixed", "other"]
# Names for the mixed and other groups are drawn from all lists in proportion.
NAME_SOURCE = {"white": ["white"], "asian": ["asian"], "black": ["black"],
               "mixed": ["white", "black", "asian"], "other": ["white", "asian", "black"]}
NICKNAMES = {
    "William": "Bill", "Robert": "Bob", "Elizabeth": "Liz", "Margaret": "Maggie",
    "Richard": "Rick", "Thomas": "Tom", "James": "Jim", "Michael": "Mike", "Christopher": "Chris",
    "Catherine": "Kate", "Jennifer": "Jenny", "Patricia": "Pat", "Susan": "Sue", "Deborah": "Debbie",
    "Samantha": "Sam", "Anthony": "Tony", "Stephen": "Steve", "Kenneth": "Ken", "Frederick": "Fred",
    "Edward": "Ed", "Alexander": "Alex", "Benjamin": "Ben", "Matthew": "Matt", "Daniel": "Dan",
    "Joshua": "Josh", "Victoria": "Vicky", "Rebecca": "Becky", "Nicola": "Nicky", "Jacqueline": "Jackie",
    "Christine": "Chris", "Valerie": "Val", "Kathleen": "Kath", "Dorothy": "Dot", "Harold": "Harry",
    "Samuel": "Sam", "Muhammad": "Mohammed", "Oluwaseun": "Seun", "Gurpreet": "Preet",
}


def surname_tail(known: set[str]) -> list[str]:
    """English-style surnames beyond the listed ones, made by joining the elements of
    `surname_elements.csv` (Ash + worth, Brad + ley), in a fixed order that mixes them (CRC-32 of
    the name) so that no element's names are all common or all rare."""
    text = (resources.files("openphm.synth") / "data" / "surname_elements.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    firsts = [r["element"] for r in rows if r["part"] == "first"]
    lasts = [r["element"] for r in rows if r["part"] == "last"]
    made = {f + (last[1:] if f[-1] == last[0] else last) for f in firsts for last in lasts}
    # none may be a place of the synthetic ICS (Elm + stead): a place name is not an identifier
    made -= {word for place in PLACE_NAMES for word in place.split()}
    return sorted(made - known, key=lambda name: (zlib.crc32(name.encode()), name))


class NameBank:
    """Name lists with Zipf weights by rank, and a source of unique valid NHS numbers.

    Surnames are weighted by rank to the power `names.surname_zipf` (parameters.yaml), and the white
    British list continues into a long tail (`surname_tail`): about 1.2% of people are Smiths and
    0.3% carry the tenth commonest name, as on the 1996 electoral register, so that two people share
    a surname about as rarely as in England. Given names keep rank to the power 0.9. A group drawn
    from several lists (mixed, other) takes each list in equal part."""

    def __init__(self) -> None:
        text = (resources.files("openphm.synth") / "data" / "names.csv").read_text(encoding="utf-8")
        rows = list(csv.DictReader(text.splitlines()))
        params = load_parameters()
        self.given_names: list[str] = []
        self.family_names: list[str] = []
        position: dict[tuple[bool, str], int] = {}
        self._pools: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        listed = {(k, g): [r["name"] for r in rows if r["kind"] == k and r["group"] == g]
                  for k in ("given_f", "given_m", "family") for g in GROUPS}
        listed[("family", "white")] += surname_tail({r["name"] for r in rows if r["kind"] == "family"})
        for kind in ("given_f", "given_m", "family"):
            family = kind == "family"
            target = self.family_names if family else self.given_names
            exponent = params["names"]["surname_zipf"] if family else 0.9
            for group in GROUPS:
                idx, weights = [], []
                for source in NAME_SOURCE[group]:
                    names = listed[(kind, source)]
                    w = 1.0 / np.arange(1, len(names) + 1) ** exponent
                    weights.append(w / w.sum() / len(NAME_SOURCE[group]))
                    for name in names:
                        if (family, name) not in position:
                            position[(family, name)] = len(target)
                            target.append(name)
                        idx.append(position[(family, name)])
                w = np.concatenate(weights)
                self._pools[(kind, group)] = (np.array(idx), w / w.sum())
        self._used_nhs = np.empty(0, dtype=np.int64)
        eth = params["ethnicity"]
        self.ethnicity_codes: list[str] = []
        self._eth_pools = []
        for group in eth["groups"]:
            codes = list(group["codes"])
            shares = np.array(list(group["codes"].values()), dtype=float)
            start = len(self.ethnicity_codes)
            self.ethnicity_codes.extend(codes)
            self._eth_pools.append((np.arange(start, start + len(codes)), shares / shares.sum()))
        self.ethnicity_codes.append("Z")  # not stated
        self._not_stated = eth["not_stated_share"]

    def draw_ethnicity_code(self, rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
        """NHS ethnic category code index for each person of a broad group (some not stated)."""
        out = np.empty(len(group), dtype=np.int64)
        for g, (idx, p) in enumerate(self._eth_pools):
            mask = group == g
            out[mask] = rng.choice(idx, size=int(mask.sum()), p=p)
        out[rng.random(len(group)) < self._not_stated] = len(self.ethnicity_codes) - 1
        return out

    def _draw(self, rng: np.random.Generator, kind: str, group: np.ndarray) -> np.ndarray:
        out = np.empty(len(group), dtype=np.int64)
        for g, name in enumerate(GROUPS):
            mask = group == g
            idx, p = self._pools[(kind, name)]
            out[mask] = rng.choice(idx, size=int(mask.sum()), p=p)
        return out

    def draw_given(self, rng: np.random.Generator, group: np.ndarray, female: np.ndarray) -> np.ndarray:
        """Given-name index for each person."""
        women = self._draw(rng, "given_f", group)
        men = self._draw(rng, "given_m", group)
        return np.where(female == 1, women, men)

    def draw_family(self, rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
        """Family-name index for each person."""
        return self._draw(rng, "family", group)

    def new_nhs_numbers(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """`k` new, unique, valid NHS numbers in the ranges issued in England (4xx and 6xx-7xx million)."""
        found = np.empty(0, dtype=np.int64)
        while len(found) < k:
            m = int((k - len(found)) * 1.2) + 16
            stems = np.where(rng.random(m) < 0.5,
                             rng.integers(400_000_000, 500_000_000, m),
                             rng.integers(600_000_000, 800_000_000, m))
            check = check_digits(stems)
            numbers = stems[check != 10] * 10 + check[check != 10]
            numbers = np.unique(numbers)
            numbers = numbers[~np.isin(numbers, self._used_nhs)]
            numbers = numbers[~np.isin(numbers, found)]
            found = np.concatenate([found, rng.permutation(numbers)])
        found = found[:k]
        self._used_nhs = np.concatenate([self._used_nhs, found])
        return found
