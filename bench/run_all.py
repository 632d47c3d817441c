"""Run the benchmarks in bench/ and write docs/benchmarks.md.

Each `bench_*.py` module has `run() -> str` returning a Markdown section. Machines here are
noisy: every benchmark reports a baseline measured in the same run beside its own figure.
`python bench/run_all.py generate` runs only bench_generate.py and keeps the other sections.
Scale with OPENPHM_BENCH_PEOPLE (default 1,000,000).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import platform
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "benchmarks.md"


def _sections(text: str) -> dict[str, str]:
    return dict(re.findall(r"<!-- bench:(\w+) -->\n(.*?)<!-- /bench -->", text, re.S))


def run_one(name: str, text: str | None = None) -> str:
    """Run bench_<name>.py (or use `text`) and return docs/benchmarks.md with that section replaced."""
    if text is None:
        path = HERE / f"bench_{name}.py"
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        text = module.run()
    stamp = f"_Measured {dt.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores._\n\n"
    sections = _sections(DOCS.read_text()) if DOCS.exists() else {}
    sections[name] = stamp + text
    header = ("# Benchmarks\n\nWritten by `make bench` (`bench/run_all.py`). Each figure stands beside a baseline "
              "measured in the same run, because these machines are noisy.\n")
    body = "".join(f"\n<!-- bench:{k} -->\n{v}<!-- /bench -->\n" for k, v in sorted(sections.items()))
    return header + body


def main() -> None:
    names = sys.argv[1:] or sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    for name in names:
        content = run_one(name)
        DOCS.parent.mkdir(parents=True, exist_ok=True)
        DOCS.write_text(content, encoding="utf-8")
    print(f"wrote {DOCS}", file=sys.stderr)


if __name__ == "__main__":
    main()
