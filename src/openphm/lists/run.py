"""Running case-finding lists and exporting them for direct care, with an audit record.

A list is a YAML file in `definitions/` (schema `list.schema.json`): people meeting every
criterion, each criterion a plain condition over the person features (openphm.derive.features)
and `risk`, `risk_centile` from the latest `openphm risk score`, with a reason in plain words.
`run_lists` writes `lists.member` (list, practice, PCN, pseudonymous person, risk, rank within the
practice or PCN, the reasons they are on the list, and the factors behind their risk), ordered by
risk (equal risks in person-id order, so every engine ranks alike): no identifiers. Lists are for
direct care, so people with a National Data Opt-out stay on them (openphm.identity.optout);
analysts read `planning.list_member` and `planning.list_size`, which leave them out.

Criteria reach SQL only as checked condition trees rendered by sqlglot (openphm.conditions), and
reasons are templates that can only name fields (openphm.lists.reasons), checked when the list is
loaded; nothing from a definition file is pasted into SQL or given to `str.format`.

Exports that identify people are for direct care only: `export_list` refuses unless the purpose
is stated as direct care, adds the NHS number from the identity store, and records every request
in the tamper-evident audit log (`audit.log`, see openphm.audit): an export as `allowed` before the
file is written, and a refusal (wrong purpose, unknown list, no one on it) as `refused` with the
reason, before raising. The actor is the operating-system user; `--user` is kept as `stated_user`.
The web application will add role checks on top of this.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import jsonschema
import polars as pl
import yaml
from sqlglot import exp

from openphm import audit
from openphm.conditions import check_condition, render_condition
from openphm.derive.features import build_features, feature_names
from openphm.engine.connection import Connection, EngineError, transaction
from openphm.engine.files import open_private
from openphm.identity import store as identity_store
from openphm.identity.optout import direct_care_schema, planning_view
from openphm.lists.reasons import ReasonError, ReasonTemplate, parse_reason

if TYPE_CHECKING:
    from openphm.engine.duckdb_store import Store

DIRECT_CARE = "direct_care"
EXTRA_FIELDS = ("risk", "risk_centile")


class ListError(ValueError):
    """A list definition or request that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class CaseList:
    """One case-finding list definition."""

    id: str
    title: str
    run_by: str
    criteria: list[dict]

    def checked(self) -> list[tuple[exp.Expression, ReasonTemplate]]:
        """Each criterion's rule as a checked tree and its reason as a parsed template (checked again
        here, however the list was made)."""
        return [_check(c["rule"], c["reason"], f"{self.id} criterion {i}") for i, c in enumerate(self.criteria, 1)]


def definitions_dir() -> Path:
    """The shipped list definitions."""
    return Path(str(resources.files("openphm.lists") / "definitions"))


def _check(rule: str, reason: str, where: str) -> tuple[exp.Expression, ReasonTemplate]:
    """The rule's checked tree and the reason's template; ListError naming `where` otherwise."""
    names = set(feature_names()) | set(EXTRA_FIELDS)
    tree = check_condition(rule, names, where, ListError, "field")
    try:
        return tree, parse_reason(reason, names)
    except ReasonError as exc:
        raise ListError(f"{where}: {exc}") from None


def load_lists(folder: Path | None = None) -> dict[str, CaseList]:
    """Every list definition, validated, by id. Validated once per version of the files (name, size and
    modification time): the web application asks on every list request, and validation is slow."""
    files = tuple((path, path.stat().st_mtime_ns, path.stat().st_size)
                  for path in sorted((folder or definitions_dir()).glob("*.yaml")))
    return dict(_validated_lists(files))


@functools.lru_cache(maxsize=8)
def _validated_lists(files: tuple[tuple[Path, int, int], ...]) -> dict[str, CaseList]:
    schema = json.loads((resources.files("openphm.lists") / "list.schema.json").read_text(encoding="utf-8"))
    out = {}
    for path, _, _ in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            jsonschema.validate(data, schema)
        except (yaml.YAMLError, jsonschema.ValidationError) as exc:
            raise ListError(f"{path.name}: {str(exc).splitlines()[0]}") from None
        if data["id"] != path.stem:
            raise ListError(f"{path.name}: id {data['id']!r} must equal the file name")
        for i, c in enumerate(data["criteria"], 1):
            _check(c["rule"], c["reason"], f"{path.name} criterion {i}")
        out[data["id"]] = CaseList(data["id"], data["title"], data["run_by"], data["criteria"])
    return out


def latest_scoring(con: Connection) -> dt.date:
    """The date of the latest risk scoring."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'risk' "
                         "AND table_name = 'score'").fetchone()[0]
    when = con.execute("SELECT max(as_of) FROM risk.score").fetchone()[0] if exists else None
    if when is None:
        raise ListError("no risk scores yet: run `openphm risk train` and `openphm risk score` first")
    return when


def scoring_model(con: Connection, as_of: dt.date, model: str | None = None) -> str:
    """The model whose scores on `as_of` the lists use: `model` if given (and scored that day), else
    the only model scored that day; several, with none chosen, is an error (each person would
    otherwise be listed once per model)."""
    scored = [m for (m,) in con.execute("SELECT DISTINCT model FROM risk.score WHERE as_of = CAST(? AS DATE) "
                                        "ORDER BY 1", [as_of]).fetchall()]
    if model is not None:
        if model not in scored:
            raise ListError(f"no {model} scores on {as_of} (scored: {', '.join(scored)})")
        return model
    if len(scored) > 1:
        raise ListError(f"risk.score holds scores from {len(scored)} models on {as_of} ({', '.join(scored)}): "
                        "choose one with --model")
    return scored[0]


def run_lists(con: Connection, only: list[str] | None = None, model: str | None = None) -> pl.DataFrame:
    """Run every list (or `only` these) at the latest risk scoring (of `model`, needed when several
    models scored that day) into lists.member; returns counts per list and practice or PCN."""
    lists = load_lists()
    unknown = set(only or []) - set(lists)
    if unknown:
        raise ListError(f"unknown list(s): {', '.join(sorted(unknown))}")
    as_of = latest_scoring(con)
    chosen_model = scoring_model(con, as_of, model)
    # direct care: everyone in the record, opted out of planning or not (openphm.identity.optout)
    build_features(con, as_of, schema=direct_care_schema(con), table="list_features")
    con.execute("""CREATE OR REPLACE TEMP TABLE list_people AS
                   SELECT f.*, s.risk, CAST(s.centile AS DOUBLE) AS risk_centile, s.reasons AS risk_factors
                   FROM list_features f JOIN risk.score s ON s.person_id = f.person_id
                        AND s.as_of = CAST(? AS DATE) AND s.model = ?""", [as_of, chosen_model])
    frames = []
    for lid, case_list in lists.items():
        if only and lid not in only:
            continue
        checked = case_list.checked()
        where = render_condition(exp.and_(*(rule for rule, _ in checked)))
        unit = "practice_code" if case_list.run_by == "practice" else "pcn_code"
        fields = sorted(set().union(*(template.fields for _, template in checked)) - {"risk"})  # risk: already
        picked = ", ".join(render_condition(exp.column(f, quoted=True)) for f in fields) or "NULL AS none"
        rows = con.execute(f"""SELECT CAST(person_id AS VARCHAR) AS person_id, practice_code, pcn_code, risk,
                                      risk_factors, {picked},
                                      row_number() OVER (PARTITION BY {unit} ORDER BY risk DESC,
                                                         CAST(person_id AS VARCHAR)) AS rank
                               FROM list_people WHERE {where}""").pl()
        reasons = [[template.render(r) for _, template in checked] for r in rows.iter_rows(named=True)]
        kept = rows.select("person_id", "practice_code", "pcn_code", "risk", "rank", "risk_factors")
        frames.append(kept.with_columns(
            pl.lit(lid).alias("list_id"), pl.lit(as_of).alias("as_of"),
            pl.Series("reasons", reasons, dtype=pl.List(pl.Utf8))))
    con.execute("DROP TABLE list_features; DROP TABLE list_people")
    members = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
    con.execute("CREATE SCHEMA IF NOT EXISTS lists")
    con.register("members", members.to_arrow())
    with transaction(con):
        con.execute("CREATE TABLE IF NOT EXISTS lists.member AS SELECT list_id, as_of, practice_code, pcn_code, "
                    "CAST(person_id AS UUID) AS person_id, risk, rank, reasons, risk_factors FROM members LIMIT 0")
        con.execute("DELETE FROM lists.member WHERE list_id IN (SELECT DISTINCT list_id FROM members)")
        con.execute("INSERT INTO lists.member SELECT list_id, as_of, practice_code, pcn_code, CAST(person_id AS UUID), "
                    "risk, rank, reasons, risk_factors FROM members")
        if planning_view(con, "list_member", "lists.member"):  # analysts' view: no one opted out
            con.execute("CREATE OR REPLACE VIEW planning.list_size AS SELECT list_id, as_of, practice_code, pcn_code, "
                        "count(*) AS people FROM planning.list_member GROUP BY ALL")
    con.unregister("members")
    return con.execute("SELECT list_id, practice_code, count(*) AS people FROM lists.member "
                       "GROUP BY ALL ORDER BY 1, 2").pl()


EXPORT_COLUMNS = ("nhs_number", "practice_code", "rank", "risk", "reasons", "risk_factors", "as_of")


LIST_ORDERS = {"rank": "m.rank", "risk": "m.risk DESC NULLS LAST, m.rank"}  # how a list can be sorted


def identified_list(con: Connection, store: Store, list_id: str, practice: str, purpose: str | None,
                    user: str | None = None, action: str = "list_export", file: Path | None = None,
                    with_person_id: bool = False, order: str = "rank", limit: int | None = None,
                    offset: int = 0) -> list[tuple]:
    """One practice's list with NHS numbers (EXPORT_COLUMNS, then the pseudonym if `with_person_id`), for
    direct care, after writing the audit entry (`action`: list_export, list_view), which names the
    people shown by their pseudonyms. Refuses without the direct-care purpose, for an unknown
    list or one with no one on it, recording each refusal in the audit log first. `user` is recorded
    as the stated user only. `order` (LIST_ORDERS), `limit` and `offset` give one page of the list:
    the audit entry names the people on that page, the ones shown."""
    details: dict[str, object] = {"list_id": list_id, "practice_code": practice, "purpose": purpose}
    if file is not None:
        details["file"] = str(file.resolve())

    def refuse(reason: str) -> ListError:
        try:
            audit.append(con, store, action, "refused", {**details, "reason": reason}, stated_user=user)
        except (audit.AuditError, *EngineError) as exc:
            return ListError(f"{reason} (and the audit log could not record the refusal: {exc})")
        return ListError(reason)

    if purpose != DIRECT_CARE:
        raise refuse(f"an export that identifies people is for direct care only: give --purpose {DIRECT_CARE} "
                     "(the request is refused and nothing is written)")
    if list_id not in load_lists():
        raise refuse(f"no list {list_id!r}; `openphm lists run` shows the lists")
    if order not in LIST_ORDERS:
        raise ValueError(f"order must be one of {', '.join(LIST_ORDERS)}")
    page = f"LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
    members = con.execute(f"""
        SELECT m.practice_code, m.rank, round(m.risk, 3) AS risk, array_to_string(m.reasons, '; ') AS reasons,
               array_to_string(m.risk_factors, '; ') AS risk_factors, m.as_of, CAST(m.person_id AS VARCHAR)
        FROM lists.member m WHERE m.list_id = ? AND m.practice_code = ? ORDER BY {LIST_ORDERS[order]} {page}""",
                          [list_id, practice]).fetchall()
    numbers = identity_store.nhs_numbers_of(con, [r[-1] for r in members])
    rows = [(numbers[r[-1]], *r) for r in members]
    if not rows and offset == 0:
        raise refuse(f"no one on {list_id} at practice {practice} (run `openphm lists run`, check the code)")
    if not rows:
        return []  # a page past the end: no one shown, nothing to record
    try:
        audit.append(con, store, action, "allowed", {**details, "people": len(rows),
                                                      "person_ids": " ".join(r[-1] for r in rows)}, stated_user=user)
    except audit.AuditError as exc:
        raise ListError(f"the audit log cannot record this request, so nothing is shown or written: {exc}") from None
    return [r[:-1] for r in rows] if not with_person_id else rows


def export_list(con: Connection, store: Store, list_id: str, practice: str, out: Path,
                purpose: str | None, user: str | None = None) -> int:
    """Write one practice's list with NHS numbers to a CSV for direct care (`identified_list`: audited
    first, refused without the direct-care purpose)."""
    rows = identified_list(con, store, list_id, practice, purpose, user, "list_export", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open_private(out, newline="") as f:  # NHS numbers: owner-only, whatever the umask
        writer = csv.writer(f)
        writer.writerow(EXPORT_COLUMNS)
        writer.writerows(rows)
    return len(rows)
