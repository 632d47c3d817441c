"""The audit log is append-only in effect: every edit, deletion, reordering, truncation or replacement
of `audit.log` is found by `verify`, a crash between an entry and its checkpoint is told apart from
tampering, and list exports (allowed and refused) are recorded with the OS user as the actor."""

from __future__ import annotations

import gc
import itertools
import json
import sqlite3
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openphm import audit, audit_access, audit_index
from openphm.cli import app  # with every command registered
from openphm.engine.files import mode
from openphm.ingest.loader import open_store
from openphm.lists.run import ListError, export_list, load_lists

NHS_NUMBER = "9434765919"
PRACTICE = "A12345"


@pytest.fixture
def logged(tmp_path):
    """A store whose audit log has four entries."""
    store, con = open_store(tmp_path / "openphm.duckdb")
    for i in range(1, 5):
        audit.append(con, store, "list_export", "allowed", {"list_id": f"list_{i}", "practice_code": PRACTICE,
                                                            "people": i, "purpose": "direct_care"})
    yield store, con
    con.close()


def _on_threads(con, n: int, work) -> None:
    """Run work(cursor, i) on n threads released together, each with its own cursor; no thread may fail."""
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        cur = con.cursor()
        try:
            start.wait()
            work(cur, i)
        except BaseException as exc:
            errors.append(exc)
        finally:
            cur.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def _problems(store, con) -> str:
    result = audit.verify(con, store)
    assert not result.ok
    return "\n".join(result.problems)


def test_a_clean_log_verifies(logged):
    store, con = logged
    result = audit.verify(con, store)
    assert result.ok and result.problems == () and result.notes == ()
    assert result.entries == 4
    entries = audit.read_log(con)
    assert [e.seq for e in entries] == [1, 2, 3, 4] and result.head_hash == entries[-1].entry_hash
    assert entries[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(entries))
    assert json.loads(entries[1].details) == {"list_id": "list_2", "practice_code": PRACTICE, "people": 2,
                                              "purpose": "direct_care"}
    assert entries[1].details == json.dumps(json.loads(entries[1].details), sort_keys=True, separators=(",", ":"))
    assert entries[0].logged_at.endswith("+00:00")
    checkpoint = json.loads(audit.checkpoint_file(store).read_text())
    assert (checkpoint["seq"], checkpoint["entry_hash"]) == (4, entries[-1].entry_hash)
    assert mode(audit.key_file(store)) == 0o600 and mode(audit.checkpoint_file(store)) == 0o600
    assert len(audit.key_file(store).read_bytes()) == 32
    assert audit.key_file(store).parent == store.key_file.parent


def test_appends_from_many_threads_at_once_make_one_clean_chain(logged):
    """The web server's threads append at once (group commit: entries waiting are written together):
    every caller gets its own sequence number, each entry is there once, and the chain verifies."""
    store, con = logged
    returned: dict[str, int] = {}

    def view(cur, i: int) -> None:
        for j in range(5):
            returned[f"list_{i}_{j}"] = audit.append(cur, store, "list_view", "allowed", {
                "list_id": f"list_{i}_{j}", "practice_code": PRACTICE, "people": 1, "purpose": "direct_care"})

    _on_threads(con, 24, view)
    assert sorted(returned.values()) == list(range(5, 5 + 24 * 5))
    entries = audit.read_log(con)
    written = {json.loads(e.details)["list_id"]: e.seq for e in entries if e.seq >= 5}
    assert written == returned  # each caller was told the number its own entry was written under
    result = audit.verify(con, store)
    assert result.ok and result.entries == 4 + 24 * 5, result.problems


ANN, BOB = "0b8f2e3c-1d2a-4c5b-9e6f-7a8b9c0d1e2f", "1c9a3f4d-2e3b-4d6c-8f70-8b9cad1e2f30"


def _views(store, con) -> list[int]:
    return [audit.append(con, store, "record_view", "allowed", {"person_ids": ids, "purpose": "direct_care"},
                         stated_user=f"web:{n}") for n, ids in enumerate((ANN, f"{BOB} {ANN}", BOB, ANN))]


def _index(store):
    return sqlite3.connect(audit.index_file(store), isolation_level=None)


def test_who_has_seen_a_record_is_found_by_the_access_index_which_verify_checks(logged):
    """The index finds the entries naming a person (newest first, with who and when, and the total);
    verify finds an index that hides a view or adds one."""
    store, con = logged
    seqs = _views(store, con)
    entries, total = audit_access.accesses_of(con, store, ANN, latest=2)
    assert total == 3 and [e.seq for e in entries] == [seqs[3], seqs[1]]
    logged_at = {e.seq: e for e in audit.read_log(con)}
    assert entries[0] == audit_access.Access(seqs[3], logged_at[seqs[3]].logged_at, logged_at[seqs[3]].actor,
                                             "web:3", "record_view", "allowed")
    assert [e.seq for e in audit_access.accesses_of(con, store, BOB)[0]] == [seqs[2], seqs[1]]
    assert audit_access.accesses_of(con, store, "2d0b4a5e-3f4c-4e7d-9a81-9cadbe2f3041") == ([], 0)
    # counted up to a bound (the record page says "more than" beyond it), the latest still found
    entries, counted = audit_access.accesses_of(con, store, ANN, latest=1, count_up_to=2)
    assert counted == 3 and [e.seq for e in entries] == [seqs[3]]
    assert audit_access.accesses_of(con, store, ANN, latest=1, count_up_to=1)[1] == 2  # the bound + 1: more than 1
    assert audit.verify(con, store).ok
    with _index(store) as index:
        index.execute("DELETE FROM named WHERE seq = ?", [seqs[3]])  # hiding a view from the record page
    assert "disagrees with the log (1 of the people entries name missing, 0 not" in _problems(store, con)
    with _index(store) as index:
        index.execute("INSERT INTO named VALUES (?, ?)", [ANN, seqs[3]])
        index.execute("INSERT INTO named VALUES (?, ?)", [ANN, seqs[2]])  # a view that was bob's alone
    assert "(0 of the people entries name missing, 1 not named by any entry)" in _problems(store, con)
    with _index(store) as index:
        index.execute("DELETE FROM named WHERE person_id = ? AND seq = ?", [ANN, seqs[2]])
        index.execute("UPDATE entry SET stated_user = 'someone else' WHERE seq = ?", [seqs[1]])
    assert f"shows 1 of the log's entries otherwise than the log does (first: entry {seqs[1]})" in _problems(store, con)


def test_the_index_is_brought_up_to_the_log_when_it_falls_behind_or_is_lost(logged, monkeypatch):
    """An index write that fails (a crash between the entry and its index) loses nothing: the entry is
    recorded, verify notes the index behind, and the next look brings it up to date; an index deleted,
    damaged or copied from another installation is made again from the log."""
    store, con = logged
    seqs = _views(store, con)
    expected = audit_access.accesses_of(con, store, ANN)
    real_add = audit_index.add

    def crash(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(audit_index, "add", crash)
    late = audit.append(con, store, "record_view", "allowed", {"person_ids": ANN, "purpose": "direct_care"})
    monkeypatch.setattr(audit_index, "add", real_add)
    result = audit.verify(con, store)
    assert result.ok and any("1 entry behind the log" in n for n in result.notes), result.notes
    entries, total = audit_access.accesses_of(con, store, ANN)
    assert total == 4 and [e.seq for e in entries] == [late, *[e.seq for e in expected[0]]]
    assert audit.verify(con, store).notes == ()
    expected = audit_access.accesses_of(con, store, ANN)
    audit.index_file(store).unlink()
    assert audit_access.accesses_of(con, store, ANN) == expected
    audit_index.discard(audit.index_file(store))
    audit.index_file(store).write_bytes(b"not a database at all" * 100)
    assert audit_access.accesses_of(con, store, ANN) == expected
    # an index made from another log (here: one where ann was viewed once, by another entry 5)
    other, other_con = open_store(store.key_file.parent.parent / "other" / "openphm.duckdb")
    audit.append(other_con, other, "record_view", "allowed", {"person_ids": f"{ANN} {BOB}", "purpose": "x"})
    audit.append(other_con, other, "record_view", "allowed", {"person_ids": ANN, "purpose": "x"})
    for n in range(3):
        audit.append(other_con, other, "list_export", "allowed", {"list_id": f"l{n}", "purpose": "x"})
    assert audit_access.accesses_of(other_con, other, ANN)[1] == 2
    other_con.close()
    audit_index.discard(audit.index_file(store))
    with _index(other) as index:  # everything into the main file (it is a WAL database), then that file moved
        index.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    audit.index_file(other).rename(audit.index_file(store))
    assert any("made from another log" in n for n in audit.verify(con, store).notes)
    assert audit_access.accesses_of(con, store, ANN) == expected
    assert seqs[0] < seqs[1]


def test_an_installation_whose_index_was_a_database_table_moves_it_to_its_file(logged):
    """Before the index had its own file it was audit.person_access: the next append makes the file
    from the whole log and drops the table."""
    store, con = logged
    seqs = _views(store, con)
    audit_index.discard(audit.index_file(store))
    con.execute("CREATE TABLE audit.person_access (person_id UUID NOT NULL, seq BIGINT NOT NULL)")
    later = audit.append(con, store, "record_view", "allowed", {"person_ids": BOB, "purpose": "direct_care"})
    assert [e.seq for e in audit_access.accesses_of(con, store, BOB)[0]] == [later, seqs[2], seqs[1]]
    assert not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'person_access'"
                           ).fetchone()[0]
    assert audit.verify(con, store).ok


def test_an_append_to_a_log_as_checkpointed_is_one_conditional_statement(logged, monkeypatch):
    """The common case never takes the careful way (it asks the catalogue and reads the head first); the
    one statement writes nothing when the log does not end at the checkpoint's entry, which the careful
    way then refuses."""
    store, con = logged
    careful = audit._append_once
    monkeypatch.setattr(audit, "_append_once", lambda *a: pytest.fail("took the careful way"))
    seqs = [audit.append(con, store, "list_export", "allowed", {"list_id": f"fast_{i}"}) for i in range(3)]
    assert seqs == [5, 6, 7] and audit.verify(con, store).ok
    con.execute("DELETE FROM audit.log WHERE seq = 7")
    monkeypatch.setattr(audit, "_append_once", careful)
    with pytest.raises(audit.AuditError, match="the checkpoint records entry 7 but the log ends at entry 6"):
        audit.append(con, store, "list_export", "allowed", {"list_id": "after_truncation"})
    assert [e.seq for e in audit.read_log(con)] == [1, 2, 3, 4, 5, 6]


def test_an_edited_entry_is_found(logged):
    store, con = logged
    con.execute("""UPDATE audit.log SET details = '{"list_id":"list_2","people":200}' WHERE seq = 2""")
    assert "entry 2: its contents do not match its hash (edited" in _problems(store, con)


def test_an_edited_and_rehashed_entry_is_found(logged):
    """Recomputing the hash after an edit does not help without the key: the MAC fails, and the next
    entry no longer links to it."""
    store, con = logged
    e = audit.read_log(con)[1]
    forged = audit.entry_hash(audit.Entry(**{**e.__dict__, "actor": "someone-else"}))
    con.execute("UPDATE audit.log SET actor = 'someone-else', entry_hash = ? WHERE seq = 2", [forged])
    problems = _problems(store, con)
    assert "entry 2: its hash is not signed with the audit key" in problems
    assert "entry 3: its prev_hash is not entry 2's hash (chain broken)" in problems


def test_a_deleted_middle_entry_is_found(logged):
    store, con = logged
    con.execute("DELETE FROM audit.log WHERE seq = 2")
    assert "entry 2 missing: the sequence jumps from 1 to 3 (deleted)" in _problems(store, con)


def test_reordered_entries_are_found(logged):
    store, con = logged
    con.execute("UPDATE audit.log SET seq = -1 WHERE seq = 2")
    con.execute("UPDATE audit.log SET seq = 2 WHERE seq = 3")
    con.execute("UPDATE audit.log SET seq = 3 WHERE seq = -1")
    problems = _problems(store, con)
    assert "entry 2: written as entry 3 (entries reordered)" in problems
    assert "entry 3: written as entry 2 (entries reordered)" in problems


def test_deleting_the_latest_entries_is_found_and_stops_further_appends(logged):
    store, con = logged
    con.execute("DELETE FROM audit.log WHERE seq >= 3")
    message = "the checkpoint records entry 4 but the log ends at entry 2: the latest 2 entries deleted"
    assert message in _problems(store, con)
    # appending now would move the checkpoint over the gap and hide it: refused
    with pytest.raises(audit.AuditError, match="log truncated"):
        audit.append(con, store, "list_export", "allowed", {"list_id": "x"})
    assert [e.seq for e in audit.read_log(con)] == [1, 2]


def _forge(tmp_path, n: int) -> tuple:
    """A freshly chained log of n entries made by another installation (so with another key)."""
    other, ocon = open_store(tmp_path / "forger" / "openphm.duckdb")
    for i in range(n):
        audit.append(ocon, other, "list_export", "allowed", {"list_id": f"innocent_{i}", "people": 1})
    return other, ocon


def test_a_log_replaced_by_a_forged_chain_is_found(logged, tmp_path):
    store, con = logged
    other, ocon = _forge(tmp_path, 4)
    forged = ocon.execute("SELECT * FROM audit.log").fetchall()
    assert audit.verify(ocon, other).ok  # a perfectly good chain in itself
    con.execute("DELETE FROM audit.log")
    con.executemany("INSERT INTO audit.log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", forged)
    problems = _problems(store, con)
    assert "entry 4 is not the entry the checkpoint recorded: the log was replaced" in problems
    assert "entry 1: its hash is not signed with the audit key" in problems
    # the forger's own checkpoint, signed with the forger's key, does not help
    audit.checkpoint_file(store).write_bytes(audit.checkpoint_file(other).read_bytes())
    assert "the checkpoint's HMAC does not match" in _problems(store, con)
    ocon.close()


def test_a_missing_checkpoint_is_found(logged):
    store, con = logged
    audit.checkpoint_file(store).unlink()
    assert "no checkpoint but the log has 4 entries" in _problems(store, con)
    with pytest.raises(audit.AuditError, match="no checkpoint"):
        audit.append(con, store, "list_export", "allowed", {"list_id": "x"})


def test_a_crash_between_entry_and_checkpoint_is_explained_not_tampering(logged, monkeypatch):
    store, con = logged

    def crash(*args):
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(audit, "_write_checkpoint", crash)
        with pytest.raises(audit.AuditError, match="entry 5 was recorded but the checkpoint could not be written"):
            audit.append(con, store, "list_export", "allowed", {"list_id": "list_5"})
    result = audit.verify(con, store)
    assert result.ok and result.entries == 5
    assert "the checkpoint is 1 entry behind (up to entry 5)" in result.notes[0] and "crash" in result.notes[0]
    assert audit.append(con, store, "list_export", "allowed", {"list_id": "list_6"}) == 6  # moves it on
    result = audit.verify(con, store)
    assert result.ok and result.notes == () and result.entries == 6


def test_an_entry_added_after_the_checkpoint_without_the_key_is_found(logged):
    """Tampering that looks like a crash (an entry past the checkpoint) is told apart by the MAC."""
    store, con = logged
    head = audit.read_log(con)[-1]
    e = audit.Entry(5, head.logged_at, "intruder", None, "list_export", "allowed", '{"list_id":"x"}',
                    head.entry_hash, "", "")
    con.execute("INSERT INTO audit.log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*list(e.__dict__.values())[:8], audit.entry_hash(e), "0" * 64])
    problems = _problems(store, con)
    assert "entry 5: its hash is not signed with the audit key" in problems
    assert "the checkpoint is 1 entry behind and not all are signed" in problems
    with pytest.raises(audit.AuditError):
        audit.append(con, store, "list_export", "allowed", {"list_id": "y"})


def test_details_hold_no_identifiers_and_only_known_fields(tmp_path):
    store, con = open_store(tmp_path / "openphm.duckdb")
    with pytest.raises(audit.AuditError, match="may hold only"):
        audit.append(con, store, "list_export", "refused", {"nhs_number": NHS_NUMBER})
    audit.append(con, store, "list_export", "refused", {"reason": f"no list '{NHS_NUMBER}' or '943 476 5919'"},
                 stated_user=f"clerk {NHS_NUMBER}")
    text = json.dumps([e.__dict__ for e in audit.read_log(con)])
    assert NHS_NUMBER not in text and "943 476 5919" not in text and "[NHS number removed]" in text
    con.close()


def _store_with_a_list(db: Path):
    """A store with one person on a list and their NHS number in the identity store."""
    list_id = sorted(load_lists())[0]
    store, con = open_store(db)
    con.execute("CREATE SCHEMA lists")
    con.execute("""CREATE TABLE lists.member AS SELECT ? AS list_id, DATE '2024-04-01' AS as_of,
                   ? AS practice_code, 'U1' AS pcn_code, uuid() AS person_id, 0.5 AS risk, 1 AS rank,
                   ['a reason'] AS reasons, ['a factor'] AS risk_factors""", [list_id, PRACTICE])
    con.execute("CREATE TABLE idn.identity.person_key AS SELECT person_id, ? AS nhs_number FROM lists.member",
                [NHS_NUMBER])
    return store, con, list_id


def test_exports_allowed_and_refused_are_logged_with_the_os_user_as_actor(tmp_path, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "os-user")
    store, con, list_id = _store_with_a_list(tmp_path / "openphm.duckdb")
    out = tmp_path / "list.csv"
    with pytest.raises(ListError, match="direct care only"):
        export_list(con, store, list_id, PRACTICE, out, purpose="planning", user="dr-who")
    with pytest.raises(ListError, match="no list 'nonexistent'"):
        export_list(con, store, "nonexistent", PRACTICE, out, purpose="direct_care")
    with pytest.raises(ListError, match="no one on"):
        export_list(con, store, list_id, "Z99999", out, purpose="direct_care")
    assert not out.exists()
    assert export_list(con, store, list_id, PRACTICE, out, purpose="direct_care", user="dr-who") == 1
    assert NHS_NUMBER in out.read_text()
    entries = audit.read_log(con)
    assert [(e.actor, e.stated_user, e.action, e.outcome) for e in entries] == [
        ("os-user", "dr-who", "list_export", "refused"), ("os-user", None, "list_export", "refused"),
        ("os-user", None, "list_export", "refused"), ("os-user", "dr-who", "list_export", "allowed")]
    details = [json.loads(e.details) for e in entries]
    assert details[0]["purpose"] == "planning" and "direct care only" in details[0]["reason"]
    assert "no list 'nonexistent'" in details[1]["reason"] and "no one on" in details[2]["reason"]
    person = con.execute("SELECT CAST(person_id AS VARCHAR) FROM lists.member WHERE list_id = ? AND "
                         "practice_code = ?", [list_id, PRACTICE]).fetchone()[0]
    assert details[3] == {"list_id": list_id, "practice_code": PRACTICE, "people": 1, "purpose": "direct_care",
                          "file": str(out.resolve()), "person_ids": person}
    assert NHS_NUMBER not in json.dumps([e.__dict__ for e in entries])
    assert audit.verify(con, store).ok
    assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'export_log'"
                       ).fetchone()[0] == 0
    con.close()


def _invoke(args: list[str]) -> tuple[int, str]:
    """Run the command as its own process would: its connection closed when it ends."""
    result = CliRunner().invoke(app, args)
    code, output = result.exit_code, result.output
    del result
    gc.collect()  # the command leaves its connection to the process's end; close it here
    return code, output


def test_audit_verify_and_list_commands(tmp_path):
    db = tmp_path / "openphm.duckdb"
    _, con, list_id = _store_with_a_list(db)
    con.close()
    base = ["lists", "export", list_id, "--practice", PRACTICE, "--out", str(tmp_path / "list.csv"), "--db", str(db)]
    assert _invoke([*base, "--user", "dr-who"])[0] != 0  # refused: no purpose
    assert _invoke([*base, "--purpose", "direct_care", "--user", "dr-who"])[0] == 0
    code, output = _invoke(["audit", "verify", "--db", str(db)])
    assert code == 0, output
    assert output.startswith("OK: 2 entries, head ")
    code, output = _invoke(["audit", "list", "--db", str(db)])
    assert code == 0 and "refused" in output and "allowed" in output and "stated user 'dr-who'" in output
    assert NHS_NUMBER not in output
    _, con = open_store(db)
    con.execute("""UPDATE audit.log SET details = '{"list_id":"innocent"}' WHERE seq = 2""")
    con.close()
    code, output = _invoke(["audit", "verify", "--db", str(db)])
    assert code == 1
    assert "FAILED: entry 2: its contents do not match its hash" in output and "does not verify" in output
    assert _invoke(["audit", "verify", "--db", str(tmp_path / "missing.duckdb")])[0] == 2


def test_a_log_whose_seq_column_was_retyped_is_still_read_row_by_row(logged):
    """`append` reads the log's head by its BIGINT key; a log remade with text sequence numbers is cast
    row by row instead, so an entry without a number is still refused and an intact one still chains."""
    store, con = logged
    con.execute("CREATE TABLE audit.retyped AS SELECT CAST(seq AS VARCHAR) AS seq, * EXCLUDE (seq) FROM audit.log")
    con.execute("DROP TABLE audit.log")
    con.execute("ALTER TABLE audit.retyped RENAME TO log")
    assert audit.append(con, store, "list_view", "allowed", {"people": 1, "purpose": "direct_care"}) == 5
    assert audit.verify(con, store).ok
    con.execute("INSERT INTO audit.log SELECT 'x', * EXCLUDE (seq) FROM audit.log WHERE seq = '5'")
    with pytest.raises(audit.AuditError, match="without a sequence number"):
        audit.append(con, store, "list_view", "allowed", {"people": 1, "purpose": "direct_care"})


def test_a_thread_keeps_a_few_index_connections_however_many_installations_it_serves(tmp_path):
    for i in range(10):
        store, con = open_store(tmp_path / f"i{i}" / "openphm.duckdb")
        audit.append(con, store, "record_view", "allowed", {"person_ids": ANN, "purpose": "direct_care"})
        assert audit_access.accesses_of(con, store, ANN)[1] == 1
        con.close()
    assert 1 <= len(audit_index._local.kept) <= 8


def test_a_view_sees_itself_among_the_viewers_while_other_threads_view_and_append(logged):
    """A record page appends its view, then lists the viewers: with other threads appending and
    reading at the same time, each list includes the view just made, and at the end every person's
    viewers are exactly what the log says."""
    import uuid

    store, con = logged
    people = [str(uuid.UUID(int=i + 1)) for i in range(6)]

    def page(cur, i: int) -> None:
        for j in range(8):
            named = people[(i + j) % 6] if j % 2 else " ".join(people)  # a record view, a list view
            seq = audit.append(cur, store, "record_view", "allowed", {"person_ids": named, "purpose": "x"})
            for pid in named.split():
                assert seq in [a.seq for a in audit_access.accesses_of(cur, store, pid)[0]]

    _on_threads(con, 12, page)
    for pid in people:
        said = [e.seq for e in reversed(audit.read_log(con)) if pid in json.loads(e.details).get("person_ids", "")]
        assert [a.seq for a in audit_access.accesses_of(con, store, pid)[0]] == said
    assert audit.verify(con, store).ok
