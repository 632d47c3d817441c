"""What the design's own copies cost to write, on a finished store: `python bench/design_writes.py DB`.

Prints, for each group of tables that ingest, link and build write (see `stages.DESIGN_COPIES`), its
rows and the seconds DuckDB takes to copy it into a new database file with nothing else done. The scale
benchmark's note in docs/benchmarks.md compares their sum with the read floor.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from stages import design_writes

if __name__ == "__main__":
    db = Path(sys.argv[1])
    total = 0.0
    for label, (rows, seconds) in design_writes(db, Path(tempfile.mkdtemp())).items():
        total += seconds
        print(f"{label}: {rows:,} rows, {seconds:.1f} s")
    print(f"all: {total:.1f} s")
