"""Loading and checking indicator definitions, and writing their documentation.

Each `definitions/<id>.yaml` is validated against `measure.schema.json`; its file name must be its
id; every `where` filter must parse (sqlglot, DuckDB dialect) as a plain condition: columns,
literals, comparisons, AND/OR/NOT, LIKE, IN lists, IS NULL. No subqueries, functions or
statements, so a filter can be compiled safely into SQL for any engine. Columns prefixed `p.`
are the person's attributes in the period (age, age_band, sex, ethnicity, imd_quintile, core20,
care_home_resident, has_smi, has_mental_health_condition, efi); others are the table's own.

Fields that the schema cannot check alone are checked here, so that every field does what it
says: `confidence` must fit the kind and standardisation (`CONFIDENCE`), and `opportunity` is
only allowed where measures.summaries computes one (`_check_opportunity`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import yaml
from sqlglot import exp

from openphm.conditions import check_condition
from openphm.domain import expand_rules

EXTRA_NODES = (exp.Null, exp.Like, exp.In, exp.Is, exp.Tuple)  # beyond openphm.conditions' plain syntax
PERSON_ATTRIBUTES = {"age", "age_band", "sex", "ethnicity", "imd_quintile", "core20", "care_home_resident", "has_smi",
                     "has_mental_health_condition", "efi"}


# the intervals that fit each kind of indicator (kind, standardisation) -> confidence values
PROPORTION_KINDS = ("person_proportion", "event_proportion")
COUNT_INTERVALS = ("byar", "poisson")
CONFIDENCE_WORDS = {
    "wilson": "Wilson score",
    "byar": "exact Poisson below 10 events, Byar's approximation from 10 (PHE)",
    "poisson": "exact Poisson",
    "dobson": "Dobson's method (count limits exact below 10, Byar's from 10)",
}
BED_DAYS_WORDS = {
    "per_emergency_admission": "bed days at the ICS's mean emergency length of stay",
    "counted": "the numerator counts bed days",
    "none": "no bed days",
}


def fitting_confidence(kind: str, standardisation: str) -> tuple[str, ...]:
    """The `confidence` values allowed for an indicator of this kind and standardisation."""
    if kind in PROPORTION_KINDS:
        return ("wilson",)
    if standardisation == "dsr_esp2013":
        return ("dobson",)
    return COUNT_INTERVALS


class DefinitionError(ValueError):
    """An indicator file that is not a valid definition; the message names the file."""


@dataclass(frozen=True)
class Measure:
    """One indicator definition."""

    id: str
    data: dict

    @property
    def multiplier(self) -> float:
        """What values and limits are multiplied by (required; no default anywhere)."""
        return float(self.data["multiplier"])

    @property
    def opportunity(self) -> dict | None:
        """{"counts": words, "bed_days": how} if an opportunity is computed, else None."""
        return self.data.get("opportunity")

    def __getattr__(self, name: str):
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None


def definitions_dir() -> Path:
    """The shipped definitions folder."""
    return Path(str(resources.files("openphm.measures") / "definitions"))


def _schema() -> dict:
    return json.loads((resources.files("openphm.measures") / "measure.schema.json").read_text(encoding="utf-8"))


def check_filter(where: str, context: str) -> exp.Expression:
    """Parse a `where` filter and refuse anything but a plain condition."""
    return check_condition(where, None, context, DefinitionError, extra_nodes=EXTRA_NODES,
                           qualified={"p": (PERSON_ATTRIBUTES, "person attribute p.")})


def load_measure(path: Path) -> Measure:
    """One definition file, validated."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        jsonschema.validate(data, _schema())
    except (yaml.YAMLError, jsonschema.ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise DefinitionError(f"{path.name}: {first}") from None
    if data["id"] != path.stem:
        raise DefinitionError(f"{path.name}: id {data['id']!r} must equal the file name")
    if data["kind"] == "person_proportion" and data["period"] != "financial_year":
        raise DefinitionError(f"{path.name}: a proportion of people is taken once a year (period: financial_year)")
    if data["standardisation"] in ("dsr_esp2013", "isr_ics") and data["kind"] != "event_rate":
        raise DefinitionError(f"{path.name}: {data['standardisation']} applies to event rates only")
    fits = fitting_confidence(data["kind"], data["standardisation"])
    if data["confidence"] not in fits:
        raise DefinitionError(f"{path.name}: confidence {data['confidence']} does not fit a {data['kind']} with "
                              f"standardisation {data['standardisation']} (use {' or '.join(fits)})")
    if "opportunity" in data:
        _check_opportunity(data, path.name)
    for part in ("numerator", "denominator"):
        if data[part].get("where"):
            check_filter(data[part]["where"], f"{path.name} {part}")
    return Measure(data["id"], data)


def _check_opportunity(data: dict, name: str) -> None:
    """Refuse an `opportunity` that measures.summaries would not compute or could not turn into bed days."""
    if data["polarity"] != "lower_is_better":
        raise DefinitionError(f"{name}: an opportunity needs polarity lower_is_better")
    if data["standardisation"] == "dsr_esp2013" or data["kind"] == "person_proportion":
        raise DefinitionError(f"{name}: no opportunity for kind {data['kind']} with standardisation "
                              f"{data['standardisation']} (use the isr_ics indicator for age- and sex-adjusted "
                              "opportunity)")
    bed_days, num = data["opportunity"]["bed_days"], data["numerator"]
    if bed_days != "none" and num["table"] != "inpatient_spell":
        raise DefinitionError(f"{name}: opportunity bed_days {bed_days} needs a numerator of inpatient_spell")
    if bed_days == "per_emergency_admission" and num.get("sum"):
        raise DefinitionError(f"{name}: opportunity bed_days per_emergency_admission needs a numerator counting "
                              "admissions, not a sum")
    if bed_days == "counted" and not num.get("sum"):
        raise DefinitionError(f"{name}: opportunity bed_days counted needs a numerator summing bed days")


@cache
def load_measures(folder: str | None = None) -> dict[str, Measure]:
    """Every definition in the folder (default: the shipped ones), by id."""
    base = Path(folder) if folder else definitions_dir()
    return {m.id: m for m in (load_measure(p) for p in sorted(base.glob("*.yaml")))}


def _rules_said(where: str) -> str:
    """What the domain rules a filter calls by name stand for, for the reader of the docs."""
    called = sorted(set(re.findall(r"\{\{\s*(\w+)\(\s*\)\s*\}\}", where)))
    said = [f"`{name}()` is `{expand_rules('{{ ' + name + '() }}')}`" for name in called]
    return f" (domain rules, defined once in `openphm.domain`: {'; '.join(said)})" if said else ""


def render_doc(m: Measure) -> str:
    """Markdown documentation of one indicator, generated from its file."""
    def part(d: dict) -> str:
        if "population" in d:
            return f"people registered on 1 October (mid-year){' where ' + d['where'] if d.get('where') else ''}"
        what = f"sum of `{d['sum']}`" if d.get("sum") else ("distinct people" if d.get("persons") else "records")
        cond = f" where `{d['where']}`{_rules_said(d['where'])}" if d.get("where") else ""
        date = f", dated by `{d['date']}`" if d.get("date") else ""
        return f"{what} in `record.{d['table']}`{cond}{date}"

    opportunity = (f"{m.opportunity['counts']} above the best quartile of practices; "
                   f"{BED_DAYS_WORDS[m.opportunity['bed_days']]}" if m.opportunity else "not computed")
    return (f"# {m.title}\n\n`{m.id}`: {m.why_it_matters}\n\n"
            f"| | |\n|---|---|\n| kind | {m.kind.replace('_', ' ')} |\n"
            f"| numerator | {part(m.numerator)} |\n| denominator | {part(m.denominator)} |\n"
            f"| population | {m.population} |\n"
            f"| period | {m.period.replace('_', ' ')} |\n| unit | {m.unit} |\n| multiplier | {m.multiplier:,g} |\n"
            f"| standardisation | {m.standardisation} |\n"
            f"| confidence interval | {m.confidence}: {CONFIDENCE_WORDS[m.confidence]} |\n"
            f"| polarity | {m.polarity.replace('_', ' ')} |\n| levels | {', '.join(m.levels)} |\n"
            f"| opportunity | {opportunity} |\n"
            f"| owner | {m.owner} |\n| next review | {m.next_review} |\n| source | {m.data.get('source', '')} |\n")


def render_docs(measures: dict[str, Measure]) -> dict[str, str]:
    """File name -> Markdown for docs/measures/: one page per indicator and an index."""
    pages = {f"{mid}.md": render_doc(m) for mid, m in sorted(measures.items())}
    index = "# Indicators\n\nGenerated from `src/openphm/measures/definitions/` by `openphm measures docs`.\n\n"
    index += "| id | indicator | unit | polarity |\n|---|---|---|---|\n"
    index += "".join(f"| [{mid}]({mid}.md) | {m.title} | {m.unit} | {m.polarity.replace('_', ' ')} |\n"
                     for mid, m in sorted(measures.items()))
    pages["README.md"] = index
    return pages
