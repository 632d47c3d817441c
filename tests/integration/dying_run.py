"""A run of ingest (load and link) or build that dies, as if killed, just before its N-th SQL statement.

Used by test_fault_injection.py as a subprocess: `python dying_run.py STEP N ICS DB`. STEP is
`ingest` (reference files, every extract, then linking) or `build`; N = 0 runs to the end and
prints how many statements ran, so the test can spread its deaths over every statement boundary,
inside transactions as well as between them. Death is `os._exit`, which runs no handler, no
`finally` and no DuckDB shutdown: what a SIGKILL leaves behind.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


class DiesAt:
    """A DuckDB connection that counts the statements run through it and dies before the N-th."""

    def __init__(self, con, n: int) -> None:
        self._con, self._n, self.count = con, n, 0

    def _tick(self) -> None:
        self.count += 1
        if self.count == self._n:
            os._exit(9)

    def execute(self, *args, **kwargs):
        self._tick()
        return self._con.execute(*args, **kwargs)

    def executemany(self, *args, **kwargs):
        self._tick()
        return self._con.executemany(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._con, name)


def main(step: str, n: int, ics: Path, db: Path) -> None:
    from openphm.identity.linkage import link_records
    from openphm.ingest.loader import extract_files, ingest_file, load_reference, open_store
    from openphm.record.build import build_record

    store, raw = open_store(db)
    con = DiesAt(raw, n)
    if step == "ingest":
        load_reference(con, ics / "reference")
        for path in extract_files(ics):
            result = ingest_file(con, path)
            if result.status not in ("loaded", "unchanged"):
                raise SystemExit(f"{path.name}: {result.status} {result.problem}")
        link_records(con, store, 0.9)
    elif step == "build":
        build_record(con)
    else:
        raise SystemExit(f"unknown step {step}")
    print(con.count)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
