"""Reason templates for case-finding lists: plain words with a person's values filled in.

A reason is text in which `{field}` or `{field:spec}` fills in the person's value of a known field
(a person feature, `risk` or `risk_centile`); `{{` and `}}` write braces. Only a bare field name
is allowed (no attribute access, indexing, conversions such as `!r`, or nested fields), and the
spec is one of a small set: empty, `,`, or an optional `,` then `.N` and `f` or `%` (`.0f`,
`.2f`, `.0%`, `,.1f`). A template is parsed once when the list is loaded and filled in by
`ReasonTemplate.render`, never by `str.format`, so a reason cannot reach anything but the value.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass

FIELD = re.compile(r"[a-z_][a-z0-9_]*\Z")
SPEC = re.compile(r",?(?:\.[0-9][f%])?\Z")
MISSING = "unknown"


class ReasonError(ValueError):
    """A reason template that names something other than a known field, or uses a disallowed spec."""


@dataclass(frozen=True)
class ReasonTemplate:
    """A parsed reason: (literal text, field or None, spec) parts."""

    text: str
    parts: tuple[tuple[str, str | None, str], ...]

    @property
    def fields(self) -> set[str]:
        """The fields the reason fills in."""
        return {field for _, field, _ in self.parts if field is not None}

    def render(self, row: Mapping[str, object]) -> str:
        """The reason with `row`'s values filled in (`unknown` where a value is missing)."""
        out = []
        for literal, field, spec in self.parts:
            out.append(literal)
            if field is not None:
                value = row[field]
                out.append(MISSING if value is None else format(value, spec))
        return "".join(out)


def parse_reason(text: str, names: Collection[str]) -> ReasonTemplate:
    """The parsed template; raises ReasonError (one line, saying what is wrong) for anything else."""
    if not isinstance(text, str):
        raise ReasonError(f"the reason must be text, not {type(text).__name__}")
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ReasonError(f"the reason {text!r} is not a valid template ({exc}); write {{{{ and }}}} for braces") \
            from None
    parts = []
    for literal, field, spec, conversion in pieces:
        if field is None:
            parts.append((literal, None, ""))
            continue
        if not FIELD.match(field):
            raise ReasonError(f"the reason may only name a field as {{field}} or {{field:spec}}, not {{{field}}} "
                              f"(no attributes, indexing or positions) in {text!r}")
        if conversion is not None:
            raise ReasonError(f"the reason may not use a conversion (!{conversion}) in {text!r}")
        if field not in names:
            raise ReasonError(f"the reason names unknown field {field!r}")
        if not SPEC.match(spec or ""):
            raise ReasonError(f"the reason's format {spec!r} for {field} is not allowed (use .0f, .2f, .0%, "
                              "or nothing)")
        parts.append((literal, field, spec or ""))
    return ReasonTemplate(text, tuple(parts))
