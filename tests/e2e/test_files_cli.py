"""`openphm ingest --replace`, `openphm files list` and `openphm files restore`, as an operator uses them."""

from __future__ import annotations

import shutil

from tests.spec.test_ingest_rules import GOOD, write_apc
from typer.testing import CliRunner

from openphm.cli import app  # with every command registered

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})


def text(result) -> str:
    """The output with its whitespace made single: rich wraps long lines wherever a path puts them."""
    return " ".join(result.output.split())


def test_a_shrinking_file_is_refused_then_confirmed_listed_and_restored(tmp_path):
    db = str(tmp_path / "openphm.duckdb")
    first, second = tmp_path / "first", tmp_path / "second"
    write_apc(first / "apc" / "apc_2023-24.csv", [{**GOOD, "record_id": f"A{i}"} for i in range(30)])
    write_apc(second / "apc" / "apc_2023-24.csv", [{**GOOD, "record_id": "B1"}])
    assert invoke("ingest", str(first), "--db", db, "--no-link").exit_code == 0

    refused = invoke("ingest", str(second), "--db", db, "--no-link")
    assert refused.exit_code == 1
    assert "refused: apc_2023-24.csv would replace apc_2023-24.csv (file 1, 30 rows) with 1 rows" in text(refused)

    confirmed = invoke("ingest", str(second), "--db", db, "--no-link", "--replace")
    assert confirmed.exit_code == 0 and "replaces file(s) 1" in text(confirmed)
    listed = invoke("files", "list", "--db", db)
    assert listed.exit_code == 0
    assert "superseded" in text(listed) and "Supersessions" in text(listed) and "yes" in text(listed)

    restored = invoke("files", "restore", "1", "--db", db)  # 30 rows back in place of 1: not a shrink
    assert restored.exit_code == 0, restored.output
    assert "back in service in place of file(s) 2" in text(restored)
    missing = invoke("files", "restore", "99", "--db", db)
    assert missing.exit_code == 2 and "no file 99" in text(missing)


def test_sending_the_original_again_restores_it(tmp_path):
    db = str(tmp_path / "openphm.duckdb")
    first, second = tmp_path / "first", tmp_path / "second"
    write_apc(first / "apc" / "apc_2023-24.csv", [{**GOOD, "record_id": f"A{i}"} for i in range(30)])
    write_apc(second / "apc" / "apc_2023-24.csv", [{**GOOD, "record_id": "B1"}])
    invoke("ingest", str(first), "--db", db, "--no-link")
    invoke("ingest", str(second), "--db", db, "--no-link", "--replace")
    shutil.rmtree(second)
    again = invoke("ingest", str(first), "--db", db, "--no-link")
    assert again.exit_code == 0 and "restored: apc_2023-24.csv is back in service" in text(again)
