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
# The slowest files (pytest --durations), started first so that `make test`'s two workers (pytest-xdist,
# a file to a worker) do not end with one of them alone on a long file; the rest keep their order.
SLOWEST_FIRST = ("test_spark_ingest_link.py", "test_spark_parity.py", "test_risk_at_200k.py",
                 "test_fault_injection.py", "test_synthetic_intervals.py", "test_evaluate_cli.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kind = Path(str(item.fspath)).parent.name
        if kind not in KINDS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of tests/{{{','.join(KINDS)}}}/")
        item.add_marker(getattr(pytest.mark, kind))
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))  # stable: order kept within
