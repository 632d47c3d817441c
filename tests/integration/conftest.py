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


def ingest_link_build(ics: Path, database: Path, threads: int | None = None):
    """A generated ICS ingested (reference data, then every extract), linked and built into a new
    database; returns the connection."""
    from openphm.identity.linkage import link_records
    from openphm.ingest.loader import extract_files, ingest_file, load_reference, open_store
    from openphm.record.build import build_record

    store, con = open_store(database)
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    load_reference(con, ics / "reference")
    for f in extract_files(ics):
        ingest_file(con, f)
    link_records(con, store, 0.9)
    build_record(con)
    return con
