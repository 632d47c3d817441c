"""Source datasets: one module per source, each declaring a `SourceSpec`."""

from __future__ import annotations

from pathlib import Path

from openphm.sources import apc, asc, csds, deaths, ecds, gp_appointments, gp_events, gp_registrations, mhsds, op, vcse
from openphm.sources.base import Column, SourceSpec

SOURCES: dict[str, SourceSpec] = {m.SPEC.name: m.SPEC for m in (
    gp_registrations, gp_events, gp_appointments, apc, op, ecds, csds, mhsds, asc, vcse, deaths)}


def source_for_path(path: Path) -> SourceSpec | None:
    """The source a file belongs to, from its folder or file-name prefix (e.g. extracts/apc/apc_2023-24.csv)."""
    for candidate in (path.parent.name, *[path.stem.rsplit("_", n)[0] for n in (1, 2)]):
        if candidate in SOURCES:
            return SOURCES[candidate]
    return None


__all__ = ["SOURCES", "Column", "SourceSpec", "source_for_path"]
