"""The pages' template environment: `row.name` finds a dict's key before its attribute (for speed),
and still escapes what it finds and still reads objects' attributes."""

from __future__ import annotations

from dataclasses import dataclass

from openphm.web.app import templates


@dataclass
class _Row:
    name: str


def test_a_dict_key_is_found_escaped_and_an_object_attribute_still_read():
    env = templates().env
    page = env.from_string("{{ r.name }}|{{ r.items }}|{{ o.name }}|{{ r.missing }}|{{ r.keys()|list|length }}")
    got = page.render(r={"name": "<script>alert(1)</script>", "items": "three"}, o=_Row("O'Brien & co"))
    assert got == "&lt;script&gt;alert(1)&lt;/script&gt;|three|O&#39;Brien &amp; co||2"
