"""Names, ethnic categories and NHS numbers for synthetic people."""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np

from openphm.identity.nhs_number import check_digits
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


class NameBank:
    """Name lists with Zipf weights by rank, and a source of unique valid NHS numbers."""

    def __init__(self) -> None:
        text = (resources.files("openphm.synth") / "data" / "names.csv").read_text(encoding="utf-8")
        rows = list(csv.DictReader(text.splitlines()))
        self.given_names: list[str] = []
        self.family_names: list[str] = []
        self._pools: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        for kind in ("given_f", "given_m", "family"):
            for group in GROUPS:
                idx, weights = [], []
                for source in NAME_SOURCE[group]:
                    names = [r["name"] for r in rows if r["kind"] == kind and r["group"] == source]
                    target = self.family_names if kind == "family" else self.given_names
                    for rank, name in enumerate(names, start=1):
                        if name not in target:
                            target.append(name)
                        idx.append(target.index(name))
                        weights.append(1.0 / rank**0.9)
                w = np.array(weights)
                self._pools[(kind, group)] = (np.array(idx), w / w.sum())
        self._used_nhs = np.empty(0, dtype=np.int64)
        eth = load_parameters()["ethnicity"]
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
