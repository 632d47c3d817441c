"""The generator's truth is read at the face (issue 11): only `openphm.synth` (which writes it and
reads it in `synth.truth_readers`) and `openphm.cli` (which hands the platform plain frames) may know
the truth folder's layout. No other module names one of its files or folders, in a path or a string.

Checked on the syntax tree of every module: a file name of the truth (`people.parquet`,
`person_year_risk`, ...) anywhere in a string, and a truth folder or table joined onto a path
(`truth / "records"`, `folder / "people"`, `ics / "truth"`, `.joinpath("records")`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import openphm

SRC = Path(openphm.__file__).parent
AT_THE_FACE = ("synth", "cli")
# what the generator writes into truth/ (openphm.synth.truth and the extract writers), and truth/ itself
TRUTH_PARTS = ("truth", "records", "people", "person_year_risk", "places", "conditions", "care_model")
FILE_NAME = re.compile(r"\b(person_year_risk|(people|places|conditions)\.(csv|parquet)|care_model\.json)\b")


def _part(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        name = node.value.strip("/")
        return name if name.split(".")[0] in TRUTH_PARTS else None
    return None


def truth_layout_in(path: Path) -> list[str]:
    """Each place the module names the truth's layout: `line: text`."""
    found: list[tuple[int, int, str]] = []
    seen: set[int] = set()  # strings already reported as a path part
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and (name := _part(node.right)):
            found.append((node.lineno, node.col_offset, f"/ {name!r}"))
            seen.add(id(node.right))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "joinpath"
              and any(_part(a) for a in node.args)):
            found.append((node.lineno, node.col_offset, f"joinpath({', '.join(repr(_part(a)) for a in node.args)})"))
            seen.update(id(a) for a in node.args)
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in seen
              and (m := FILE_NAME.search(node.value))):
            found.append((node.lineno, node.col_offset, repr(m.group(0))))
    return [f"{line}: {text}" for line, _, text in sorted(found)]


def test_only_synth_and_the_command_line_know_the_truth_folders_layout():
    offenders = [f"{path.relative_to(SRC)}:{where}" for path in sorted(SRC.rglob("*.py"))
                 if path.relative_to(SRC).parts[0] not in AT_THE_FACE for where in truth_layout_in(path)]
    assert offenders == []


def test_the_check_sees_the_truth_read_inside_the_platform(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text('def f(truth, ics):\n'
                      '    a = sorted((truth / "records").iterdir())\n'
                      '    b = truth / "person_year_risk.parquet"\n'
                      '    c = ics.joinpath("truth", "people")\n'
                      '    return "SELECT * FROM read_parquet(\'t/people.parquet\')"\n'
                      'PEOPLE = ["people", "records"]  # column and table names are not the layout\n')
    assert truth_layout_in(sample) == ["2: / 'records'", "3: / 'person_year_risk.parquet'",
                                       "4: joinpath('truth', 'people')", "5: 'people.parquet'"]


def test_the_readers_at_the_face_are_seen_by_the_check():
    assert truth_layout_in(SRC / "synth" / "truth_readers.py") != []
