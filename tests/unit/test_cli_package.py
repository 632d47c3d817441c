"""The command line is a package with no import circle (issue 11): `openphm.cli.app` holds the app and
imports no command module, each command group imports the app and no module of the package that
registers it, and no platform module imports the command line (the face knows the parts, no part
knows the face).

Checked on the syntax tree of every module, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.unit.test_engine_boundary import imports_of as module_imports
from typer.testing import CliRunner

import openphm
from openphm.cli import app

SRC = Path(openphm.__file__).parent
CLI = SRC / "cli"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports; `from openphm.cli import record` imports `openphm.cli` (which
    registers every command group) and `openphm.cli.record`."""
    out = module_imports(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "openphm.cli":
            out += [(node.lineno, f"openphm.cli.{a.name}") for a in node.names]
    return out


def cli_imports(path: Path) -> set[str]:
    return {name for _, name in imports_of(path) if name == "openphm.cli" or name.startswith("openphm.cli.")}


def test_the_app_module_imports_no_command_module():
    assert cli_imports(CLI / "app.py") == set()


def test_a_command_module_imports_the_app_never_the_package_that_registers_it():
    for path in sorted(CLI.glob("*.py")):
        if path.name in ("__init__.py", "__main__.py", "app.py"):
            continue
        imported = cli_imports(path)
        assert "openphm.cli.app" in imported, path.name
        assert "openphm.cli" not in imported, f"{path.name} imports openphm.cli, which imports it"


def test_no_platform_module_imports_the_command_line():
    offenders = [f"{path.relative_to(SRC)}:{line} imports {name}"
                 for path in sorted(SRC.rglob("*.py")) if path.relative_to(SRC).parts[0] != "cli"
                 for line, name in imports_of(path) if name == "openphm.cli" or name.startswith("openphm.cli.")]
    assert offenders == []


def test_the_check_sees_the_old_circle(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("from openphm.cli import app, fail\n\ndef f():\n    from openphm.cli.record import load_folder\n")
    assert cli_imports(sample) == {"openphm.cli", "openphm.cli.app", "openphm.cli.fail", "openphm.cli.record"}


def test_every_command_group_is_registered_on_the_app():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    commands = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert commands == {"generate", "calibrate", "demo", "variation", "codelists", "segments", "ingest", "files",
                        "build", "link", "link-report", "link-files", "optout", "measures", "risk", "lists", "audit",
                        "evaluate", "costs", "budgets", "riskshare", "serve", "users", "report", "tokens"}
