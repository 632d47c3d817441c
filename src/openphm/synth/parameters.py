"""Load and validate the synthetic ICS's reference parameters (data files, not code)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import numpy as np
import yaml

N_BANDS = 19


def _load(name: str, schema_name: str) -> dict[str, Any]:
    folder = resources.files("openphm.synth") / "data"
    data = yaml.safe_load((folder / name).read_text(encoding="utf-8"))
    schema = json.loads((folder / schema_name).read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    return data


@cache
def load_parameters() -> dict[str, Any]:
    """The reference rates and shares in `data/parameters.yaml`, validated against its schema."""
    return _load("parameters.yaml", "parameters.schema.json")


@dataclass(frozen=True)
class Items:
    """Conditions and frailty deficits as column arrays, one entry per item."""

    ids: list[str]
    labels: list[str]
    kinds: np.ndarray
    snomed: list[str]
    icd10: list[str | None]
    target: np.ndarray
    min_age: np.ndarray
    slope: np.ndarray
    cap: np.ndarray
    deprivation_years: np.ndarray
    female_logodds: np.ndarray
    loading: np.ndarray
    child_cluster: np.ndarray
    survival_uplift: np.ndarray
    earliest_age: np.ndarray
    risk_weight: np.ndarray
    efi_deficit: list[str | None]

    def index(self, item_id: str) -> int:
        """Position of an item by id."""
        return self.ids.index(item_id)

    @property
    def condition_mask(self) -> np.ndarray:
        """True for long-term conditions (the multimorbidity count), False for frailty deficits."""
        return self.kinds == "condition"

    def efi_matrix(self) -> tuple[list[str], np.ndarray]:
        """The 36 eFI deficit names and a (items, deficits) 0/1 matrix mapping items onto them."""
        names = sorted({d for d in self.efi_deficit if d})
        matrix = np.zeros((len(self.ids), len(names)), dtype=np.float32)
        for i, deficit in enumerate(self.efi_deficit):
            if deficit:
                matrix[i, names.index(deficit)] = 1.0
        return names, matrix


@cache
def load_items() -> Items:
    """The conditions and frailty deficits in `data/conditions.yaml`, validated against its schema."""
    rows = _load("conditions.yaml", "conditions.schema.json")["items"]
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("conditions.yaml: item ids must be unique")

    def col(key: str, default: float | None = None) -> np.ndarray:
        return np.array([r.get(key, default) if default is not None else r[key] for r in rows],
                        dtype=np.float64)

    return Items(
        ids=ids,
        labels=[r["label"] for r in rows],
        kinds=np.array([r["kind"] for r in rows]),
        snomed=[r["snomed"] for r in rows],
        icd10=[r["icd10"] for r in rows],
        target=col("target"),
        min_age=col("min_age"),
        slope=col("slope"),
        cap=col("cap"),
        deprivation_years=col("deprivation_years"),
        female_logodds=col("female_logodds"),
        loading=col("loading"),
        child_cluster=col("child_cluster", 0.0),
        survival_uplift=col("survival_uplift", 1.0),
        earliest_age=col("earliest_age"),
        risk_weight=col("risk_weight"),
        efi_deficit=[r["efi_deficit"] for r in rows],
    )


def band_of_age(age_years: np.ndarray) -> np.ndarray:
    """ESP2013 band index (0 = 0-4 ... 18 = 90+) of ages in years."""
    return np.minimum(np.floor_divide(np.maximum(age_years, 0), 5), N_BANDS - 1).astype(np.int64)


def per_band(values: list[float]) -> np.ndarray:
    """A 19-band list from the parameters as an array."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (N_BANDS,):
        raise ValueError("expected one value per ESP2013 band (19)")
    return arr
