"""`openphm generate`: build a synthetic ICS and write its extracts, reference files and truth."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from openphm.calendar_dates import add_months
from openphm.synth.extracts import ExtractWriter
from openphm.synth.gp_extracts import (
    appointments_hook,
    fhir_appointments_hook,
    write_gp_fhir,
    write_gp_tables,
)
from openphm.synth.optout import write_optout
from openphm.synth.simulate import run_years, setup
from openphm.synth.truth import write_reference, write_truth
from openphm.synth.writers import FORMATS

GP_FORMATS = ("table", "fhir")


@dataclass(frozen=True)
class GenerateOptions:
    """What to generate. Validated by `check`."""

    people: int = 50_000
    years: int = 5
    seed: int = 42
    out: Path = Path("synthetic-ics")
    format: str = "csv"
    gp_format: str = "table"
    start: dt.date = dt.date(2021, 4, 1)
    care_model: bool = False
    care_model_start: dt.date | None = None
    care_model_effect: float = -0.20
    care_model_waves: int = 1  # staggered adoption: the joiners start in this many waves, 6 months apart

    def check(self) -> None:
        """Raise ValueError with a one-line message for any option that cannot work."""
        if self.people < 1_000:
            raise ValueError(f"--people must be at least 1000 (got {self.people})")
        if not 1 <= self.years <= 20:
            raise ValueError(f"--years must be between 1 and 20 (got {self.years})")
        if self.format not in FORMATS:
            raise ValueError(f"--format must be one of {', '.join(FORMATS)} (got {self.format!r})")
        if self.gp_format not in GP_FORMATS:
            raise ValueError(f"--gp-format must be one of {', '.join(GP_FORMATS)} (got {self.gp_format!r})")
        if not -0.9 <= self.care_model_effect <= 1.0:
            raise ValueError("--care-model-effect must be between -0.9 and 1.0 (a relative change)")
        if not 1 <= self.care_model_waves <= 6:
            raise ValueError(f"--care-model-waves must be between 1 and 6 (got {self.care_model_waves})")
        if self.care_model_effect > 0:
            raise ValueError("--care-model-effect must be zero or negative (a reduction)")
        end = add_months(self.start, 12 * self.years)  # from 29 February: 28 February
        if self.care_model_start and not self.start <= self.care_model_start < end:
            raise ValueError(f"--care-model-start must fall within {self.start} to {end}")
        _check_writable(self.out)


def _check_writable(out: Path) -> None:
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"--out {out}: {probe} is a file, not a folder")
    import os
    if not os.access(probe, os.W_OK):
        raise ValueError(f"--out {out}: cannot write to {probe}")


STEPS = ["population", *[f"year {i}" for i in range(1, 21)], "GP extracts", "deaths", "truth"]


def generate_ics(opts: GenerateOptions, step: Callable[[str], None] = lambda _: None) -> dict:
    """Generate the ICS described by `opts`; returns a summary (rows per source, files)."""
    opts.check()
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    sim = setup(opts.people, opts.years, opts.seed, opts.start, opts.care_model,
                opts.care_model_start, opts.care_model_effect, opts.care_model_waves)
    step("population")
    w = ExtractWriter(sim, out, opts.format, opts.seed)
    fhir = opts.gp_format == "fhir"
    w.year_hooks["gp_appointments"] = fhir_appointments_hook(w) if fhir else appointments_hook(w)
    run_years(sim, w, step)
    if fhir:
        write_gp_fhir(w)
    else:
        write_gp_tables(w)
    step("GP extracts")
    w.deaths()
    step("deaths")
    write_reference(w)
    write_optout(w)
    write_truth(w)
    w.condition_truth()
    step("truth")
    # the output folder is left out, so the same options and seed give the same bytes wherever written
    summary = {
        "options": {k: (str(v) if isinstance(v, Path | dt.date) else v) for k, v in asdict(opts).items()
                    if k != "out"},
        "people_ever": sim.people.n,
        "rows": dict(sorted(w.rows.items())),
        "files": sorted(str(p.relative_to(out)) for p in w.files),
    }
    (out / "generation.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
