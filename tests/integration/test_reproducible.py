"""The same seed gives byte-identical files; another seed gives other files."""

import hashlib
import json
from pathlib import Path

import pytest

from openphm.synth.generate import GenerateOptions, generate_ics


def digests(folder: Path) -> dict[str, str]:
    """Every file under `folder` (generation.json too), by its path relative to the folder."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_into_different_folders_gives_identical_files_everywhere(tmp_path):
    """Nothing written depends on where it is written: not even generation.json names its folder."""
    folders = [tmp_path / "first", tmp_path / "another" / "folder with a longer name"]
    for out in folders:
        generate_ics(GenerateOptions(people=2_000, years=2, seed=5, out=out))
    first, second = (digests(out) for out in folders)
    assert "generation.json" in first and len(first) > 20
    assert first == second
    summary = json.loads((folders[1] / "generation.json").read_text(encoding="utf-8"))
    assert "out" not in summary["options"] and str(tmp_path) not in json.dumps(summary)
    assert summary["options"]["seed"] == 5 and summary["options"]["people"] == 2_000 and summary["rows"]


@pytest.mark.parametrize("fmt, gp_format", [("csv", "table"), ("parquet", "table"), ("csv", "fhir")])
def test_same_seed_same_bytes(tmp_path, fmt, gp_format):
    runs = []
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        out = tmp_path / name
        generate_ics(GenerateOptions(people=3_000, years=2, seed=seed, out=out, format=fmt,
                                     gp_format=gp_format, care_model=True))
        runs.append(digests(out))
    a, b, c = runs
    assert len(a) > 20
    assert a == b
    differing = [k for k in a if k in c and a[k] != c[k]]
    assert len(differing) > len(a) // 2


def test_fhir_gp_extract_is_valid_r4(tmp_path):
    fhir = pytest.importorskip("fhir.resources.R4B")
    del fhir
    from fhir.resources.R4B.appointment import Appointment
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.episodeofcare import EpisodeOfCare
    from fhir.resources.R4B.patient import Patient

    out = tmp_path / "fhir"
    generate_ics(GenerateOptions(people=1_000, years=1, seed=3, out=out, gp_format="fhir"))
    folder = out / "extracts" / "gp_fhir"
    for name, model in (("Patient", Patient), ("EpisodeOfCare", EpisodeOfCare),
                        ("Condition", Condition), ("Appointment", Appointment)):
        lines = (folder / f"{name}.ndjson").read_text().splitlines()
        assert lines, name
        for line in lines[:200]:
            resource = model.model_validate(json.loads(line))
            assert resource.get_resource_type() == name
