"""Sensitive files are the owner's only (600, folders 700) whatever the umask: the identity store, the
analytic database, their write-ahead logs, the secret key, the linkage models folder and a list
exported with NHS numbers. (Risk model files: tests/unit/test_risk_model_files.py.)"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openphm.cli import app  # with every command registered
from openphm.engine.duckdb_store import Store
from openphm.engine.files import mode, open_private, private_dir, private_output, touch_private, write_private
from openphm.ingest.loader import open_store
from openphm.lists.run import load_lists


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_helpers_set_modes_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        assert mode(private_dir(tmp_path / "a" / "b")) == 0o700
        assert mode(write_private(tmp_path / "new" / "f.json", "{}")) == 0o600
        assert mode(tmp_path / "new") == 0o700  # a folder created for the file
        with open_private(tmp_path / "g.csv", newline="") as fh:
            fh.write("x\n")
        assert mode(tmp_path / "g.csv") == 0o600 and (tmp_path / "g.csv").read_text() == "x\n"
        assert touch_private(tmp_path / "h") and mode(tmp_path / "h") == 0o600
        # existing files others could read are tightened before anything is written
        for name in ("old1", "old2", "old3"):
            (tmp_path / name).write_text("before")
            os.chmod(tmp_path / name, 0o644)
        write_private(tmp_path / "old1", "after")
        open_private(tmp_path / "old2").close()
        assert not touch_private(tmp_path / "old3")
        assert [mode(tmp_path / n) for n in ("old1", "old2", "old3")] == [0o600] * 3
        assert (tmp_path / "old3").read_text() == "before"
        os.chmod(tmp_path / "a" / "b", 0o755)
        assert mode(private_dir(tmp_path / "a" / "b")) == 0o700
        assert mode(tmp_path / "a") == 0o755 or umask == 0  # a parent is not the helper's to tighten
        assert not list(tmp_path.glob(".*.tmp")) and not list((tmp_path / "new").glob(".*.tmp"))
    finally:
        os.umask(old)


def test_private_output_removes_a_file_it_created_when_the_writer_fails(tmp_path):
    with pytest.raises(RuntimeError), private_output(tmp_path / "x.csv"):
        raise RuntimeError("refused")
    assert not (tmp_path / "x.csv").exists()
    (tmp_path / "y.csv").write_text("kept")
    with pytest.raises(RuntimeError), private_output(tmp_path / "y.csv"):
        raise RuntimeError("refused")
    assert (tmp_path / "y.csv").read_text() == "kept"


def test_the_store_is_the_owners_only(tmp_path, umask_022):
    db = tmp_path / "store" / "openphm.duckdb"
    store, con = open_store(db)
    store.key()
    con.execute("CREATE TABLE idn.identity.secret AS SELECT '9434765919' AS nhs_number")
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    wals = [p for p in (Path(f"{db}.wal"), Path(f"{store.identity_db}.wal")) if p.exists()]
    for path in (db, store.identity_db, store.key_file, *wals):
        assert mode(path) == 0o600, path.name
    assert mode(store.key_file.parent) == 0o700
    con.execute("CHECKPOINT idn")
    con.execute("INSERT INTO idn.identity.secret VALUES ('9434765920')")  # DuckDB makes a new .wal
    assert mode(Path(f"{store.identity_db}.wal")) == 0o600
    con.close()
    for path in (db, store.identity_db):
        assert mode(path) == 0o600, path.name


def test_an_old_store_is_tightened_on_connecting(tmp_path, umask_022, monkeypatch):
    monkeypatch.setattr("openphm.engine.duckdb_store.owner_only_umask", lambda: 0o022)  # explicit modes alone
    db = tmp_path / "openphm.duckdb"
    store = Store(db)
    store.connect().close()
    store.key()
    store.model_dir.mkdir()
    (store.model_dir / "linkage_model.json").write_text("{}")
    for path in (db, store.identity_db, store.key_file, store.model_dir / "linkage_model.json"):
        os.chmod(path, 0o644)
    for folder in (store.key_file.parent, store.model_dir):
        os.chmod(folder, 0o755)
    store.connect().close()
    for path in (db, store.identity_db, store.key_file, store.model_dir / "linkage_model.json"):
        assert mode(path) == 0o600, path.name
    assert mode(store.key_file.parent) == 0o700 and mode(store.model_dir) == 0o700


def _invoke(args: list[str]) -> tuple[int, str]:
    """Run the command as its own process would: its connection closed when it ends."""
    result = CliRunner().invoke(app, args)
    code, output = result.exit_code, result.output
    del result
    gc.collect()  # the command leaves its connection to the process's end; close it here
    return code, output


def _store_with_a_list(db: Path) -> tuple[str, str]:
    """A store with one person on a list and their NHS number in the identity store."""
    list_id = sorted(load_lists())[0]
    _, con = open_store(db)
    con.execute("CREATE SCHEMA lists")
    con.execute("""CREATE TABLE lists.member AS SELECT ? AS list_id, DATE '2024-04-01' AS as_of,
                   'A12345' AS practice_code, 'U1' AS pcn_code, uuid() AS person_id, 0.5 AS risk, 1 AS rank,
                   ['a reason'] AS reasons, ['a factor'] AS risk_factors""", [list_id])
    con.execute("CREATE TABLE idn.identity.person_key AS SELECT person_id, '9434765919' AS nhs_number "
                "FROM lists.member")
    con.close()
    return list_id, "A12345"


@pytest.mark.parametrize("umask_side_effect", [True, False])
def test_an_exported_list_is_the_owners_only(tmp_path, umask_022, monkeypatch, umask_side_effect):
    if not umask_side_effect:  # the export's own explicit modes, without the store's umask
        monkeypatch.setattr("openphm.engine.duckdb_store.owner_only_umask", lambda: 0o022)
    db = tmp_path / "openphm.duckdb"
    list_id, practice = _store_with_a_list(db)
    os.umask(0o022)
    out = tmp_path / "exports" / "list.csv"
    base = ["lists", "export", list_id, "--practice", practice, "--out", str(out), "--db", str(db)]
    assert _invoke(base)[0] != 0 and not out.exists()  # refused: nothing left behind
    code, output = _invoke([*base, "--purpose", "direct_care"])
    assert code == 0, output
    assert "9434765919" in out.read_text()
    assert mode(out) == 0o600 and mode(out.parent) == 0o700
    # an existing file others could read is tightened before the rows are written
    os.chmod(out, 0o644)
    assert _invoke([*base, "--purpose", "direct_care"])[0] == 0
    assert mode(out) == 0o600
