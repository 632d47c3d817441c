"""Generated ICSs shared by the integration tests (each generated once per test session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openphm.synth.generate import GenerateOptions, generate_ics


@pytest.fixture(scope="session")
def care_model_ics(tmp_path_factory) -> Path:
    """40,000 people over 5 years, Parquet, with the new care model switched on."""
    out = tmp_path_factory.mktemp("ics_care_model")
    generate_ics(GenerateOptions(people=40_000, years=5, seed=7, out=out, format="parquet",
                                 care_model=True))
    return out


@pytest.fixture(scope="session")
def calibration_ics(tmp_path_factory) -> Path:
    """100,000 people over 5 years, Parquet, no care model: the calibration run."""
    out = tmp_path_factory.mktemp("ics_calibration")
    generate_ics(GenerateOptions(people=100_000, years=5, seed=2024, out=out, format="parquet"))
    return out
