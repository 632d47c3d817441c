"""Reading one extract file into DuckDB as text columns with row numbers.

A file that cannot be read at all (truncated, wrong delimiter, wrong columns, not Parquet)
raises `RejectedFile` naming the file and what was expected; nothing is loaded from it.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import polars as pl

from openphm.engine.connection import Connection, EngineError
from openphm.engine.reading import parquet_columns, stage_rows
from openphm.sources.base import SourceSpec

STAGED = "staged_rows"


class RejectedFile(Exception):  # noqa: N818
    """A file rejected whole, with the reason in words."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]{0,63}")


def _check_columns(path: Path, spec: SourceSpec, found: list[str], hint: str = "") -> None:
    """Refuse a file whose columns are not the source's, naming what is missing or unexpected but never
    echoing a value that might be data: a file without its header row has a patient's details where
    the names should be, so unexpected names are shown only when the line is clearly a header (most
    expected names present) and only when they look like column names."""
    expected = spec.column_names
    if sorted(found) == sorted(expected):
        return
    present = [c for c in expected if c in found]
    if len(present) * 2 < len(expected):
        raise RejectedFile(path, f"the first line is not a {spec.name} header: {len(found)} fields, "
                                 f"{len(present)} of the {len(expected)} expected column names{hint} (is the "
                                 f"header row missing?); expected {', '.join(expected)}")
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    shown = [c for c in extra if COLUMN_NAME.fullmatch(c)]
    detail = []
    if missing:
        detail.append(f"missing {', '.join(missing[:6])}{'...' if len(missing) > 6 else ''}")
    if extra:
        names = f": {', '.join(shown[:3])}{'...' if len(shown) > 3 else ''}" if shown else ""
        detail.append(f"{len(extra)} unexpected{names}")
    raise RejectedFile(path, f"wrong columns for {spec.name} ({'; '.join(detail)}){hint}; expected "
                             f"{len(expected)} columns: {', '.join(expected)}")


def stage_file(con: Connection, path: Path, spec: SourceSpec) -> int:
    """Read `path` into temp table `staged_rows` (all text, plus `row_number`); returns rows read."""
    con.execute(f"DROP TABLE IF EXISTS {STAGED}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            # the header line is read here (and checked) before the engine reads the rows
            # utf-8-sig: a byte-order mark (as Excel writes) is not part of the first column's name
            with path.open("r", encoding="utf-8-sig", newline="") as fh:
                header = fh.readline().rstrip("\r\n")
            names = header.split(",")
            hint = " (is the file comma-delimited?)" if len(names) == 1 and (";" in header or "\t" in header) else ""
            _check_columns(path, spec, names, hint)
            stage_rows(con, path, STAGED, list(spec.column_names), names)
        elif suffix == ".parquet":
            _check_columns(path, spec, parquet_columns(con, path))
            stage_rows(con, path, STAGED, list(spec.column_names))
        else:
            raise RejectedFile(path, f"unsupported file type {suffix or '(none)'}; expected .csv or .parquet")
    except RejectedFile:
        raise
    except (*EngineError, UnicodeDecodeError, OSError) as exc:
        # DuckDB's message goes on to quote the offending line, so only its first line is used, and for
        # a CSV the line at fault is found again here (its number and what is wrong, never its values)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if suffix == ".csv" and not isinstance(exc, OSError):
            first = first_bad_csv_line(path, len(spec.column_names)) or first
        raise RejectedFile(path, f"cannot be read as {spec.name} {suffix[1:]} ({first[:200]}); "
                                 f"expected {len(spec.column_names)} comma-separated columns: "
                                 f"{', '.join(spec.column_names)}") from None
    return con.execute(f"SELECT count(*) FROM {STAGED}").fetchone()[0]


def first_bad_csv_line(path: Path, n_columns: int) -> str | None:
    """Where a CSV file stops being readable, in words (line number and the fault, no values), or None."""
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            for row in reader:
                if len(row) != n_columns:
                    return f"line {reader.line_num} has {len(row)} fields, not {n_columns}"
    except csv.Error as exc:
        return f"line {reader.line_num}: {str(exc).split(':')[0]}"
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.start:,} of the file)"
    return None


def fhir_to_tables(folder: Path) -> dict[str, pl.DataFrame]:
    """GP data sent as FHIR R4 NDJSON (Patient, EpisodeOfCare, Condition, Appointment) as the rows of
    the gp_registrations, gp_events and gp_appointments sources."""
    def lines(name: str) -> list[dict]:
        path = folder / f"{name}.ndjson"
        if not path.exists():
            return []
        try:
            return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise RejectedFile(path, f"not valid NDJSON at line {exc.lineno}: each line must be one "
                                     "FHIR R4 resource") from None

    def nhs_of(resource: dict) -> str | None:
        for i in resource.get("identifier", []):
            if i.get("system") == "https://fhir.nhs.uk/Id/nhs-number":
                return i.get("value")
        return None

    patients = {f"Patient/{p['id']}": p for p in lines("Patient")}
    reg_rows = []
    for i, ep in enumerate(lines("EpisodeOfCare"), start=1):
        p = patients.get(ep["patient"]["reference"], {})
        name = (p.get("name") or [{}])[0]
        eth = next((e["valueCodeableConcept"]["coding"][0]["code"] for e in p.get("extension", [])
                    if "EthnicCategory" in e.get("url", "")), None)
        reg_rows.append({
            "record_id": ep.get("id", f"reg-{i}"), "nhs_number": nhs_of(p),
            "given_name": (name.get("given") or [None])[0], "family_name": name.get("family"),
            "date_of_birth": p.get("birthDate"),
            "sex": {"female": "F", "male": "M"}.get(p.get("gender", ""), "U"),
            "ethnic_category": eth, "postcode": ((p.get("address") or [{}])[0]).get("postalCode"),
            "practice_code": ep.get("managingOrganization", {}).get("identifier", {}).get("value"),
            "registration_start": ep.get("period", {}).get("start"),
            "registration_end": ep.get("period", {}).get("end"),
            "deregistration_reason": None,
        })
    nhs_by_ref = {ref: nhs_of(p) for ref, p in patients.items()}
    practice_by_nhs = {r["nhs_number"]: r["practice_code"] for r in reg_rows}
    events = [{
        "record_id": c["id"], "nhs_number": nhs_by_ref.get(c["subject"]["reference"]),
        "practice_code": practice_by_nhs.get(nhs_by_ref.get(c["subject"]["reference"])),
        "event_date": (c.get("onsetDateTime") or c.get("recordedDate") or "")[:10] or None,
        "snomed_code": c["code"]["coding"][0]["code"],
    } for c in lines("Condition")]
    status = {"fulfilled": "Attended", "noshow": "DNA"}
    appts = []
    for a in lines("Appointment"):
        actors = [p["actor"] for p in a.get("participant", [])]
        patient = next((x["reference"] for x in actors if "reference" in x), None)
        practice = next((x["identifier"]["value"] for x in actors if "identifier" in x), None)
        appts.append({
            "record_id": a["id"], "nhs_number": nhs_by_ref.get(patient), "practice_code": practice,
            "appointment_date": a.get("start", "")[:10] or None,
            "hcp_type": (a.get("serviceType") or [{}])[0].get("text"),
            "appointment_mode": a.get("appointmentType", {}).get("text"),
            "appointment_status": status.get(a.get("status"), "Unknown"),
        })
    return {"gp_registrations": pl.DataFrame(reg_rows, infer_schema_length=None),
            "gp_events": pl.DataFrame(events, infer_schema_length=None),
            "gp_appointments": pl.DataFrame(appts, infer_schema_length=None)}


def stage_frame(con: Connection, frame: pl.DataFrame, spec: SourceSpec) -> int:
    """Stage rows already in memory (from FHIR) the same way as a file."""
    con.execute(f"DROP TABLE IF EXISTS {STAGED}")
    frame = frame.select([pl.col(c).cast(pl.Utf8) if c in frame.columns else pl.lit(None, pl.Utf8).alias(c)
                          for c in spec.column_names])
    con.register("fhir_frame", frame.with_row_index("row_number", offset=1).cast({"row_number": pl.Int64}).to_arrow())
    con.execute(f"CREATE TEMP TABLE {STAGED} AS SELECT * FROM fhir_frame")
    con.unregister("fhir_frame")
    return frame.height
