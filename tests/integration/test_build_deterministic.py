"""Building twice from the same linked data gives identical tables (issue 16): every table of the
person record, row for row and value for value, with DuckDB free to use several threads."""

from __future__ import annotations

from tests.integration.conftest import ingest_link_build

from openphm.record.build import build_record
from openphm.synth.generate import GenerateOptions, generate_ics


def test_two_builds_of_the_same_links_are_identical(tmp_path):
    ics = tmp_path / "ics"
    generate_ics(GenerateOptions(people=6_000, years=2, seed=5, out=ics, format="parquet"))
    con = ingest_link_build(ics, tmp_path / "db" / "openphm.duckdb", threads=4)
    first = build_record(con)
    second = build_record(con)
    assert first["tables"] == second["tables"]
    for table, rows in first["tables"].items():
        a, b = f"record_v{first['version']}.{table}", f"record_v{second['version']}.{table}"
        differ = con.execute(f"SELECT count(*) FROM ((SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) "
                             f"UNION ALL (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}))").fetchone()[0]
        assert differ == 0, f"{table}: {differ} rows differ between two builds"
        assert rows > 0 or table in ("vcse_referral",), f"{table} is empty"
