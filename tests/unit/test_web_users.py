"""The web's users file as a request reads it: through a connection each thread keeps open, which must
still see every change `openphm users` makes while the server runs, and a file made afresh."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from openphm.web import users

PASSWORD = "correct horse battery"


def test_a_kept_connection_sees_each_change_and_a_users_file_made_again(tmp_path: Path):
    db = tmp_path / "openphm.duckdb"
    assert users.get_user(db, "dee") is None  # no users file yet
    users.add_user(db, "dee", "clinician", PASSWORD, ("A81001",))
    assert users.get_user(db, "dee") == users.User("dee", "clinician", ("A81001",))
    path = users.users_file(db)
    kept = users._reader(path)
    assert kept is users._reader(path)  # the same connection serves the next request on this thread
    with closing(sqlite3.connect(path)) as other, other:  # a change committed elsewhere (into the WAL)
        other.execute("UPDATE users SET role = 'board', scope = '' WHERE username = 'dee'")
    assert users.get_user(db, "dee") == users.User("dee", "board", ())
    assert users._reader(path) is kept  # seen through the kept connection
    users.set_role(db, "dee", "clinician", ("A81002",))
    assert users.get_user(db, "dee") == users.User("dee", "clinician", ("A81002",))
    users.remove_user(db, "dee")
    assert users.get_user(db, "dee") is None
    for leftover in path.parent.glob(path.name + "*"):  # the file deleted and made again, other users in it
        leftover.unlink()
    users.add_user(db, "dee", "analyst", PASSWORD)
    assert users.get_user(db, "dee") == users.User("dee", "analyst", ())
