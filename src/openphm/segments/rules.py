"""Loading and checking segmentations: ordered segments with rules over person features.

A rule is a plain condition (sqlglot, DuckDB dialect: columns, numbers, comparisons, AND/OR/NOT,
parentheses) over the features of openphm.derive.features; the last segment's rule must be TRUE
so that everyone falls in exactly one segment. Rules reach SQL only as checked trees rendered by
sqlglot, and segment ids and labels only as quoted literals or bound parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema
import yaml
from sqlglot import exp

from openphm.conditions import check_condition, render_condition
from openphm.derive.features import feature_names


class SegmentationError(ValueError):
    """A segmentation file that is not valid; the message names the file and segment."""


@dataclass(frozen=True)
class Segmentation:
    """An ordered list of segments (id, label, description, rule)."""

    id: str
    title: str
    segments: list[dict]

    def rules(self) -> list[exp.Expression]:
        """Each segment's rule as a checked tree (checked again here, however the segmentation was made)."""
        return [_check_rule(s["rule"], f"{self.id} segment {s['id']}") for s in self.segments]

    def features_used(self) -> set[str]:
        """The feature names the rules refer to."""
        return {c.name for rule in self.rules() for c in rule.find_all(exp.Column)}

    def case_sql(self) -> str:
        """SQL CASE giving each row's segment id: the first rule that holds (rendered from the trees)."""
        case = exp.Case()
        for s, rule in zip(self.segments, self.rules(), strict=True):
            case = case.when(rule, exp.Literal.string(str(s["id"])), copy=False)
        return render_condition(case)


def _check_rule(rule: str, where: str) -> exp.Expression:
    return check_condition(rule, feature_names(), where, SegmentationError, "feature")


def definitions_dir() -> Path:
    """The shipped segmentations."""
    return Path(str(resources.files("openphm.segments") / "definitions"))


def load_segmentation(path: Path | None = None) -> Segmentation:
    """A segmentation file (default: Bridges to Health), validated."""
    path = path or definitions_dir() / "bridges_to_health.yaml"
    schema = json.loads((resources.files("openphm.segments") / "segment.schema.json").read_text(encoding="utf-8"))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        jsonschema.validate(data, schema)
    except (yaml.YAMLError, jsonschema.ValidationError) as exc:
        raise SegmentationError(f"{path.name}: {str(exc).splitlines()[0]}") from None
    ids = [s["id"] for s in data["segments"]]
    if len(set(ids)) != len(ids):
        raise SegmentationError(f"{path.name}: segment ids must be unique")
    rules = [_check_rule(s["rule"], f"{path.name} segment {s['id']}") for s in data["segments"]]
    if rules[-1] != exp.true():
        raise SegmentationError(f"{path.name}: the last segment's rule must be TRUE, so everyone has a segment")
    return Segmentation(data["id"], data["title"], data["segments"])
