"""The ingest rules' fast conditions give the plain conditions' answers on any value.

`openphm.ingest.validation` orders each condition so that a good row is settled by its first,
cheapest test, and trims a value only where trimming can change the answer. Here every shipped
source's rules are set against the plain forms (`c IS NULL OR trim(c) = ''`,
`c <> '' AND NOT matches(trim(c))`, the date parsed from the trimmed text) on awkward values, and
the assumption the code-format shortcut rests on (no format matches a value with a space at
either end) is checked on values drawn from each pattern.
"""

from __future__ import annotations

import datetime as dt
import re

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from openphm.engine.duckdb_store import ident, lit
from openphm.ingest.validation import date_column, date_shape, known_column, parsed_date_sql, rules
from openphm.sources import SOURCES
from openphm.sources.base import FORMATS

TODAY = dt.date(2026, 11, 23)
AWKWARD = ["", " ", "   ", "\t", " A81001", "A81001 ", " A81001 ", "A81001", "a81001", "A8100", "2024-01-10",
           " 2024-01-10", "2024-01-10 ", "2024-1-5", "24-01-10", "2024-02-30", "1899-12-31", "2027-01-01",
           "RZA", " RZA ", "J189", "J18.9", "ZX1 2AB", " ZX1 2AB", "ZX12AB ", "10/01/2024", " 10/01/2024 ",
           "x" * 300, " " * 300 + "y", "E08000001", "21", " 3", "Y", "N ", "99", "12345678901234567890", None]


def _plain_date(c: str, fmt: str) -> str:
    """The date parsed from the trimmed text, in shape (the plain form of `parsed_date_sql`)."""
    shape, f = lit(date_shape(fmt)), lit(fmt)
    return f"CASE WHEN regexp_full_match(trim({c}), {shape}) THEN CAST(try_strptime(trim({c}), {f}) AS DATE) END"


def _plain(spec, col, kind: str) -> str:
    """The plain form of one rule for one column (what the fast one must equal)."""
    c = ident(col.name)
    if kind == "MISSING_REQUIRED":
        return f"({c} IS NULL OR trim({c}) = '')"
    if kind == "BAD_DATE":
        return f"({c} IS NOT NULL AND trim({c}) <> '' AND {_plain_date(c, col.date_format)} IS NULL)"
    if kind == "BAD_CODE":
        return f"({c} IS NOT NULL AND trim({c}) <> '' AND NOT regexp_full_match(trim({c}), {lit(FORMATS[col.format])}))"
    return f"({c} IS NOT NULL AND trim({c}) <> '' AND NOT {ident(known_column(col.name))})"


def test_each_fast_rule_gives_the_plain_rules_answer_on_awkward_values():
    con = duckdb.connect()
    checked = 0
    for spec in SOURCES.values():
        cols = {c.name: c for c in spec.columns}
        known = frozenset(c.name for c in spec.columns if c.known_in)
        for condition, reason, name in rules(spec, TODAY, known):
            if reason not in ("MISSING_REQUIRED", "BAD_DATE", "BAD_CODE", "UNKNOWN_ORGANISATION"):
                continue
            col = cols[name]
            c = ident(name)
            parsed = parsed_date_sql(c, col.date_format)
            dates = f", {parsed} AS {ident(date_column(name))}" if col.kind == "date" else ""
            flag = f", {c} IN ('A81001', 'RZA') AS {ident(known_column(name))}"
            rows = con.execute(
                f"SELECT v, coalesce({condition}, false), coalesce({_plain(spec, col, reason)}, false) "
                f"FROM (SELECT *{dates}{flag} FROM (SELECT unnest(?::VARCHAR[]) AS v, v AS {c}))",
                [AWKWARD]).fetchall()
            differing = [(v, fast, plain) for v, fast, plain in rows if fast != plain]
            assert not differing, f"{spec.name}.{name} {reason}: {differing}"
            checked += 1
    assert checked > 40  # every source's required, date, format and organisation rules


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(FORMATS)).flatmap(
    lambda key: st.tuples(st.just(key), st.from_regex(FORMATS[key], fullmatch=True))))
def test_no_code_format_matches_a_value_with_a_space_at_either_end(drawn):
    key, value = drawn
    assert value == value.strip(" "), key
    assert not re.fullmatch(FORMATS[key], f" {value}") and not re.fullmatch(FORMATS[key], f"{value} ")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=" 0123456789-/ADJFMaejnub", max_size=14))
def test_a_date_parses_as_it_would_from_the_trimmed_text(text):
    con = duckdb.connect()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%b-%Y"):
        query = f"SELECT {parsed_date_sql('v', fmt)}, {_plain_date('v', fmt)} FROM (SELECT ? AS v)"
        fast, expected = con.execute(query, [text]).fetchone()
        assert fast == expected, (fmt, text)
