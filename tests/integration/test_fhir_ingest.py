"""GP data sent as FHIR R4 NDJSON loads into the same sources as the tables."""

import json

from openphm.ingest.loader import ingest_fhir_folder, open_store
from openphm.synth.generate import GenerateOptions, generate_ics


def test_fhir_gp_data_loads_as_the_three_gp_sources(tmp_path):
    ics = tmp_path / "ics"
    generate_ics(GenerateOptions(people=1_500, years=2, seed=4, out=ics, gp_format="fhir"))
    rows = json.loads((ics / "generation.json").read_text())["rows"]
    _, con = open_store(tmp_path / "db" / "openphm.duckdb")
    results = {r.source: r for r in ingest_fhir_folder(con, ics / "extracts" / "gp_fhir")}
    assert set(results) == {"gp_registrations", "gp_events", "gp_appointments"}
    assert results["gp_appointments"].rows_read == rows["gp_fhir_appointments"]
    assert results["gp_registrations"].rows_read > rows["gp_fhir_patients"]
    for r in results.values():
        assert r.rows_quarantined == 0 and r.rows_read == r.rows_loaded > 0
    assert con.execute("SELECT count(*) FROM idn.identity.records WHERE NOT nhs_number_valid").fetchone()[0] == 0
    again = ingest_fhir_folder(con, ics / "extracts" / "gp_fhir")
    assert [r.status for r in again] == ["unchanged"]
