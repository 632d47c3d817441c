"""Run every benchmark in bench/ and write docs/benchmarks.md.

Each `bench_*.py` module has `run() -> str` returning a Markdown section. Machines here are
noisy: every benchmark reports a baseline measured in the same run beside its own figure.
Scale with OPENPHM_BENCH_PEOPLE (default 1,000,000).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "benchmarks.md"


def main() -> None:
    sections = []
    for path in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        sections.append(module.run())
    header = (
        "# Benchmarks\n\n"
        f"Run on {dt.date.today().isoformat()} with `make bench` on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. "
        "Each figure stands beside a baseline measured in the same run, because these machines are noisy.\n"
    )
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(header + "\n" + "\n".join(sections), encoding="utf-8")
    print(f"wrote {DOCS}", file=sys.stderr)


if __name__ == "__main__":
    main()
