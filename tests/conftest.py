"""Shared fixtures. Each test file lives in a folder by kind (unit, spec, integration, e2e) and
carries that kind's marker, applied here from the folder name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Every `openphm` command the tests start reports a hang with its Python stacks and exits (status 1)
# after this long, before the tests' own 600-second time limits give a bare TimeoutExpired.
os.environ.setdefault("OPENPHM_WATCHDOG_SECONDS", "480")

KINDS = ("unit", "spec", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kind = Path(str(item.fspath)).parent.name
        if kind not in KINDS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of tests/{{{','.join(KINDS)}}}/")
        item.add_marker(getattr(pytest.mark, kind))
