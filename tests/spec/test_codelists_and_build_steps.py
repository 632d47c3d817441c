"""Code lists are well-formed data; build steps are ordered and retargeted by the runner."""

import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from openphm.codelists import (
    COLUMNS,
    SYSTEMS,
    data_dir,
    load_codelists,
    load_manifest,
    snomed_check_digit_ok,
    stale_entries,
    stamp,
)
from openphm.record.build import DEFAULT_SQL_DIR, BuildFailed, Step, compile_step, read_steps


def test_every_code_list_is_well_formed():
    lists = load_codelists()
    assert lists.columns == ["condition", *COLUMNS, "version"]
    assert lists["condition"].n_unique() >= 15
    deficits = load_codelists("frailty_deficit")
    assert deficits["deficit"].n_unique() == 36  # the electronic Frailty Index's deficits (Clegg 2016)
    for row in [*lists.iter_rows(named=True), *deficits.iter_rows(named=True)]:
        assert row["code_system"] in SYSTEMS, row
        if row["code_system"] == "SNOMED CT":
            assert snomed_check_digit_ok(row["code"]), row
        else:
            assert re.fullmatch(r"[A-Z]([0-9]{1,2}[0-9X]?)?", row["code"]), row
        assert row["term"] and row["source"], row
    # every condition has codes for both primary care and hospital data
    per = {c: set(lists.filter(lists["condition"] == c)["code_system"]) for c in lists["condition"].unique()}
    assert all(s == set(SYSTEMS) for s in per.values()), per


def test_every_file_is_in_the_manifest_at_its_current_version():
    assert stale_entries() == []
    assert {e["kind"] for e in load_manifest()} == {"condition", "frailty_deficit"}


def test_a_changed_file_must_have_its_version_raised(tmp_path: Path):
    shutil.copytree(data_dir(), tmp_path / "data")
    folder = tmp_path / "data"
    with (folder / "conditions" / "asthma.csv").open("a", encoding="utf-8") as f:
        f.write("SNOMED CT,195967001,Asthma,test\n")
    assert stale_entries(folder) == ["conditions/asthma.csv: changed since version 1 (run `openphm codelists stamp`)"]
    (folder / "conditions" / "gout.csv").write_text("code_system,code,term,source\nICD-10,M10,Gout,test\n")
    assert any("gout.csv: not in the manifest" in p for p in stale_entries(folder))
    changed = stamp(folder)
    assert sorted(changed) == ["conditions/asthma.csv: now version 2", "conditions/gout.csv: added at version 1"]
    assert stale_entries(folder) == []
    assert load_codelists(folder=folder).filter(pl.col("condition") == "asthma")["version"][0] == 2


def test_snomed_check_digits():
    # Verhoeff check digits of well-known concepts: diabetes mellitus 73211009, asthma 195967001
    assert snomed_check_digit_ok("73211009") and snomed_check_digit_ok("195967001")
    assert not snomed_check_digit_ok("73211008") and not snomed_check_digit_ok("195967010")
    assert not snomed_check_digit_ok("12A45") and not snomed_check_digit_ok("12345")


def test_steps_are_ordered_by_their_dependencies():
    order = [s.table for s in read_steps(DEFAULT_SQL_DIR)]
    assert order.index("registration") < order.index("person")
    assert max(order.index(t) for t in ("inpatient_spell", "social_care_service")) < order.index("activity_cost")
    assert len(order) == len(set(order)) == 15


def test_circular_or_missing_dependencies_are_refused(tmp_path: Path):
    (tmp_path / "a.sql").write_text("-- table: a\n-- depends: b\nSELECT 1 AS x\n")
    (tmp_path / "b.sql").write_text("-- table: b\n-- depends: a\nSELECT 1 AS x\n")
    with pytest.raises(BuildFailed, match="circular"):
        read_steps(tmp_path)
    (tmp_path / "b.sql").write_text("-- table: b\n-- depends: c\nSELECT 1 AS x\n")
    with pytest.raises(BuildFailed, match="no SQL file makes"):
        read_steps(tmp_path)


def test_references_to_the_record_point_at_the_version_being_built():
    step = Step("person", ("registration",), "SELECT r.person_id FROM record.registration AS r "
                                            "JOIN reference.organisations AS o ON o.practice_code = r.practice_code")
    sql = compile_step(step, "record_v7")
    assert sql.startswith("CREATE TABLE record_v7.person AS")
    assert "record_v7.registration AS r" in sql and "reference.organisations" in sql
    spark = compile_step(step, "record_v7", dialect="spark")
    assert "CREATE TABLE record_v7.person" in spark


def test_a_step_with_an_order_header_stores_its_rows_sorted(tmp_path):
    """`-- order: person_id` (the tables a record page looks a person up in): the table is written
    sorted, so that a person's rows share a row group; a header naming anything but columns is refused."""
    import duckdb

    (tmp_path / "a.sql").write_text("-- table: a\n-- order: person_id, n\n-- depends:\n"
                                    "SELECT (range * 7919) % 1000 AS person_id, range % 3 AS n FROM range(5000)\n")
    step = read_steps(tmp_path)[0]
    assert step.order == ("person_id", "n")
    con = duckdb.connect()
    con.execute("CREATE SCHEMA v1")
    con.execute(compile_step(step, "v1"))
    stored = con.execute("SELECT person_id, n FROM v1.a").fetchall()  # in storage order
    assert stored == sorted(stored) and len(stored) == 5000
    assert "ORDER BY person_id" in compile_step(step, "v1", dialect="spark")
    (tmp_path / "a.sql").write_text("-- table: a\n-- order: person_id; DROP TABLE x\nSELECT 1 AS person_id\n")
    with pytest.raises(BuildFailed, match="order"):
        read_steps(tmp_path)
    shipped = {s.table: s.order for s in read_steps(DEFAULT_SQL_DIR)}
    assert all(shipped[t] == ("person_id",) for t in ("person", "condition", "inpatient_spell", "ae_attendance",
                                                      "outpatient_appointment"))


def test_a_step_materialised_as_a_view_reads_the_version_it_belongs_to(tmp_path):
    """`-- materialise: view`: the step is a view over the version's tables (no copy of their rows),
    so it follows what that version holds; anything but table or view, or a view with an order, is refused."""
    import duckdb

    (tmp_path / "a.sql").write_text("-- table: a\n-- depends:\nSELECT range AS n FROM range(4)\n")
    (tmp_path / "b.sql").write_text("-- table: b\n-- materialise: view\n-- depends: a\n"
                                    "SELECT n * 10 AS m FROM record.a\n")
    steps = read_steps(tmp_path)
    assert [(s.table, s.view) for s in steps] == [("a", False), ("b", True)]
    assert compile_step(steps[1], "v2").startswith("CREATE VIEW v2.b AS")
    assert compile_step(steps[1], "v2", dialect="spark").startswith("CREATE VIEW v2.b AS")
    con = duckdb.connect()
    con.execute("CREATE SCHEMA v2")
    for step in steps:
        con.execute(compile_step(step, "v2"))
    assert con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'b'").fetchone() == (
        "VIEW",)
    con.execute("INSERT INTO v2.a VALUES (9)")
    assert sorted(r[0] for r in con.execute("SELECT m FROM v2.b").fetchall()) == [0, 10, 20, 30, 90]
    for header in ("-- materialise: index\n", "-- materialise: view\n-- order: m\n"):
        (tmp_path / "b.sql").write_text(f"-- table: b\n{header}-- depends: a\nSELECT n AS m FROM record.a\n")
        with pytest.raises(BuildFailed, match="materialise"):
            read_steps(tmp_path)
    assert {s.table for s in read_steps(DEFAULT_SQL_DIR) if s.view} == {"activity_cost"}


def test_a_stored_by_person_table_keeps_its_person_ids_unpacked_for_quick_lookups(tmp_path):
    """DuckDB bit-packs sorted UUIDs, and unpacking a row group's person ids made each record lookup
    cost 6-8 ms at 1.25M people; an `-- order:` table is written without bit-packing (and checkpointed,
    so that a table smaller than a row group is too), the other tables as DuckDB chooses. The build
    writes its `-- order:` tables so (`compile_step`'s caller)."""
    import duckdb

    from openphm.engine import lookup_storage

    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    make = "CREATE TABLE {} AS SELECT uuid() AS person_id, range % 7 AS n FROM range(1300000) ORDER BY 1"
    with lookup_storage(con):
        con.execute(make.format("ordered"))
    con.execute(make.format("plain"))
    con.execute("CHECKPOINT")

    def packed(table: str) -> int:
        return con.execute(f"SELECT count(*) FROM pragma_storage_info('{table}') WHERE column_name = 'person_id' "
                           "AND compression = 'BitPacking'").fetchone()[0]

    assert packed("plain") > 0 and packed("ordered") == 0
    assert con.execute("SELECT value FROM duckdb_settings() WHERE name = 'disabled_compression_methods'"
                       ).fetchone()[0] == ""


def test_person_keys_are_stored_uncompressed_in_the_attached_identity_store(tmp_path):
    """The identity store's person keys, read a page of people at a time through their index, are
    written without compression (`lookup_storage(compressed=False)` checkpoints the attached store),
    and the setting does not outlast the write."""
    import duckdb

    from openphm.identity.store import PERSON_KEY, replace_person_keys

    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    con.execute(f"ATTACH '{tmp_path / 'x-identity.duckdb'}' AS idn")
    con.execute("CREATE SCHEMA idn.identity")
    con.execute("CREATE TABLE people AS SELECT uuid() AS person_id, "
                "'nhs:' || CAST(9000000000 + range % 5000 AS VARCHAR) AS person_key FROM range(300000)")
    replace_person_keys(con, "people", "run-1")
    compressed = con.execute("SELECT count(*) FROM pragma_storage_info('idn.identity.person_key') "
                             "WHERE segment_type <> 'VALIDITY' AND compression <> 'Uncompressed'").fetchone()[0]
    assert compressed == 0
    con.execute("CREATE TABLE plain AS FROM idn.identity.person_key")
    con.execute("CHECKPOINT")
    assert con.execute("SELECT count(*) FROM pragma_storage_info('plain') WHERE segment_type <> 'VALIDITY' "
                       "AND compression <> 'Uncompressed'").fetchone()[0] > 0  # what DuckDB does otherwise
    assert con.execute(f"SELECT count(*), count(nhs_number) FROM {PERSON_KEY}").fetchone() == (300000, 300000)
    assert con.execute("SELECT value FROM duckdb_settings() WHERE name = 'disabled_compression_methods'"
                       ).fetchone()[0] == ""
