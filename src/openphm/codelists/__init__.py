"""Code lists: one versioned CSV per condition or frailty deficit (code system, code, term, source).

`data/manifest.yaml` lists every file with its kind, version, date and SHA-256; a test fails when
a file changes without its version rising, so every list in use can be named by id and version.
`openphm codelists stamp` bumps the version of each changed file. ICD-10 entries are prefixes: a
hospital diagnosis belongs to the condition when its code starts with the entry (so I10 covers
I10X). SNOMED CT entries are exact concepts, and their check digit (Verhoeff) is verified.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from importlib import resources
from pathlib import Path

import jsonschema
import polars as pl
import yaml

COLUMNS = ["code_system", "code", "term", "source"]
SYSTEMS = ("SNOMED CT", "ICD-10")
KINDS = {"condition": "conditions", "frailty_deficit": "frailty_deficits"}


def data_dir() -> Path:
    """The shipped code-list folder."""
    return Path(str(resources.files("openphm.codelists") / "data"))


def load_manifest(folder: Path | None = None) -> list[dict]:
    """The manifest's entries, validated against manifest.schema.json."""
    base = folder or data_dir()
    manifest = yaml.safe_load((base / "manifest.yaml").read_text(encoding="utf-8"))
    schema = json.loads((resources.files("openphm.codelists") / "manifest.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(manifest, schema)
    return manifest["lists"]


def load_codelists(kind: str = "condition", folder: Path | None = None) -> pl.DataFrame:
    """Every code list of a kind as one table, with the list's id (`condition` or `deficit`) and
    version."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    base = folder or data_dir()
    label = "condition" if kind == "condition" else "deficit"
    frames = [pl.read_csv(base / e["file"], schema_overrides={"code": pl.Utf8})
              .with_columns(pl.lit(e["id"]).alias(label), pl.lit(e["version"]).alias("version"))
              for e in load_manifest(base) if e["kind"] == kind]
    return pl.concat(frames).select(label, *COLUMNS, "version")


def sha256(path: Path) -> str:
    """The SHA-256 of a file, as the manifest records it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stale_entries(folder: Path | None = None) -> list[str]:
    """Files whose content no longer matches their manifest entry, and files missing from it."""
    base = folder or data_dir()
    entries = load_manifest(base)
    problems = [f"{e['file']}: changed since version {e['version']} (run `openphm codelists stamp`)"
                for e in entries if (base / e["file"]).exists() and sha256(base / e["file"]) != e["sha256"]]
    problems += [f"{e['file']}: in the manifest but missing" for e in entries if not (base / e["file"]).exists()]
    listed = {e["file"] for e in entries}
    problems += [f"{p.relative_to(base)}: not in the manifest" for sub in KINDS.values()
                 for p in sorted((base / sub).glob("*.csv")) if str(p.relative_to(base)) not in listed]
    return problems


def stamp(folder: Path | None = None, today: dt.date | None = None) -> list[str]:
    """Bump the version of every changed file and add new ones; returns what changed."""
    base = folder or data_dir()
    entries = load_manifest(base)
    listed = {e["file"]: e for e in entries}
    changed = []
    for kind, sub in KINDS.items():
        for path in sorted((base / sub).glob("*.csv")):
            rel, digest = str(path.relative_to(base)), sha256(path)
            entry = listed.get(rel)
            if entry is None:
                entries.append({"id": path.stem, "kind": kind, "file": rel, "version": 1,
                                "updated": str(today or dt.date.today()), "sha256": digest})
                changed.append(f"{rel}: added at version 1")
            elif entry["sha256"] != digest:
                entry.update(version=entry["version"] + 1, updated=str(today or dt.date.today()), sha256=digest)
                changed.append(f"{rel}: now version {entry['version']}")
    text = (base / "manifest.yaml").read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    (base / "manifest.yaml").write_text(header + yaml.safe_dump({"lists": entries}, sort_keys=False),
                                        encoding="utf-8")
    return changed


_VERHOEFF_D = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
               [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
               [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
               [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
_VERHOEFF_P = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
               [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
               [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]


def snomed_check_digit_ok(sctid: str) -> bool:
    """Whether a SNOMED CT identifier's last digit is its Verhoeff check digit (SNOMED CT Technical
    Implementation Guide, "Check-digit computation"); Verhoeff's dihedral-group tables."""
    if not sctid.isdigit() or not 6 <= len(sctid) <= 18:
        return False
    check = 0
    for i, digit in enumerate(reversed(sctid)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(digit)]]
    return check == 0
