"""An evaluation's definition: a YAML file checked against `spec.schema.json`, then against itself
(months in order, starts inside the period with months before them)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema

from openphm.yaml_files import read_yaml

SCHEMA = json.loads((Path(__file__).with_name("spec.schema.json")).read_text(encoding="utf-8"))
METHODS = ("staggered_did", "synthetic_did", "synthetic_control", "matched_cohort", "naive_before_after")
PERSON_METHODS = ("matched_cohort", "naive_before_after")
POPULATIONS = {
    "everyone": "everyone registered",
    "aged_75_plus": "people aged 75 and over",
    "care_home": "care-home residents",
    "aged_75_plus_or_care_home": "people aged 75 and over or living in a care home",
}
MIN_PRE_MONTHS = 6


class SpecError(ValueError):
    """An evaluation spec that cannot be run, with where and why."""


def next_month(m: dt.date) -> dt.date:
    """The first day of the month after `m`."""
    return dt.date(m.year + (m.month == 12), m.month % 12 + 1, 1)


def month(text: str) -> dt.date:
    """The first day of a YYYY-MM month."""
    return dt.date(int(text[:4]), int(text[5:7]), 1)


@dataclass(frozen=True)
class EvaluationSpec:
    """A checked evaluation spec."""

    name: str
    level: str
    starts: dict[str, dt.date]
    outcomes: list[str]
    start: dt.date
    end: dt.date  # the first day of the last month
    population: str = "aged_75_plus_or_care_home"
    list_id: str | None = None  # a person-level intervention: this list's members at the `starts` practices
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    control_group: str = "notyettreated"
    bootstrap: int = 999
    placebo: int = 200
    seed: int = 1
    description: str = ""

    @property
    def months(self) -> list[dt.date]:
        """Every month of the period, in order."""
        out, m = [], self.start
        while m <= self.end:
            out.append(m)
            m = next_month(m)
        return out


def load_spec(path: Path) -> EvaluationSpec:
    """Read and check a spec; SpecError naming the file and the field for anything wrong."""
    data = read_yaml(path, SpecError)
    return parse_spec(data, str(path))


def _schema_for(data: object) -> dict:
    """The schema with the intervention's form chosen by its level (people, or units), so that a mistake
    is reported in that form's terms rather than as "not valid under any of the given schemas"."""
    units, people = SCHEMA["properties"]["intervention"]["oneOf"]
    intervention = data.get("intervention") if isinstance(data, dict) else None
    level = intervention.get("level") if isinstance(intervention, dict) else None
    chosen = people if isinstance(level, str) and level == "person" else units
    return {**SCHEMA, "properties": {**SCHEMA["properties"], "intervention": chosen}}


def parse_spec(data: object, where: str = "spec") -> EvaluationSpec:
    """Check a spec already read into Python objects."""
    errors = sorted(jsonschema.Draft202012Validator(_schema_for(data)).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        at = "/".join(str(p) for p in e.path) or "(top level)"
        # "not valid under any of the given schemas" says nothing: say what each alternative wanted
        message = "; or ".join(dict.fromkeys(c.message for c in e.context)) if e.context else e.message
        raise SpecError(f"{where}: {at}: {message}")
    assert isinstance(data, dict)
    period, options, intervention = data["period"], data.get("options", {}), data["intervention"]
    start, end = month(period["start"]), month(period["end"])
    if end <= start:
        raise SpecError(f"{where}: period: end {period['end']} is not after start {period['start']}")
    if intervention["level"] == "person":
        starts = {code: month(intervention["start"]) for code in intervention["practices"]}
        methods = data.get("methods", list(PERSON_METHODS))
        wrong = [m for m in methods if m not in PERSON_METHODS]
        if wrong:
            raise SpecError(f"{where}: methods: {wrong[0]} compares practices, not people; for an intervention "
                            f"on people use {' or '.join(PERSON_METHODS)}")
    else:
        starts = {code: month(m) for code, m in intervention["starts"].items()}
        methods = data.get("methods", list(METHODS))
    for code, first in starts.items():
        if not start < first <= end:
            raise SpecError(f"{where}: intervention/starts/{code}: {first:%Y-%m} is outside the period "
                            f"({period['start']} to {period['end']})")
        before = (first.year - start.year) * 12 + first.month - start.month
        if before < MIN_PRE_MONTHS:
            raise SpecError(f"{where}: intervention/starts/{code}: only {before} months before the start; "
                            f"at least {MIN_PRE_MONTHS} are needed to see the trend before it")
    return EvaluationSpec(
        name=data["name"], level="practice" if intervention["level"] == "person" else intervention["level"],
        starts=starts, outcomes=list(data["outcomes"]), start=start, end=end,
        population=data.get("population", "everyone" if intervention["level"] == "person"
                            else "aged_75_plus_or_care_home"),
        list_id=intervention.get("list"),
        methods=list(methods), control_group=options.get("control_group", "notyettreated"),
        bootstrap=options.get("bootstrap", 999), placebo=options.get("placebo", 200), seed=options.get("seed", 1),
        description=data.get("description", ""))
