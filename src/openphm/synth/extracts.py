"""The extracts each source sends: SUS-like admitted patient care and outpatients, ECDS A&E,
CSDS community, MHSDS mental health, adult social care, voluntary-sector referrals and deaths.

One file per source per financial year, rows in date order, each with a record id; the
true person behind every record goes to truth/records/<source>.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from openphm.calendar_dates import fy_label
from openphm.synth.categories import enum
from openphm.synth.diagnoses import death_cause
from openphm.synth.geography import COMMUNITY_TRUST, MENTAL_HEALTH_TRUST
from openphm.synth.hospital import PSYCHIATRY
from openphm.synth.identifiers import identity_columns, name_columns, nhs_number_strings
from openphm.synth.parameters import load_items
from openphm.synth.people import DAYS_PER_YEAR, EXIT_DIED
from openphm.synth.simulate import Simulation
from openphm.synth.writers import days_to_date, write_table

DIAG_COLUMNS = [f"diag_{j:02d}" for j in range(1, 13)]


class ExtractWriter:
    """Writes extracts and truth for one simulation into `out`, a year at a time."""

    def __init__(self, sim: Simulation, out: Path, fmt: str, seed: int) -> None:
        self.sim, self.out, self.fmt, self.seed = sim, out, fmt, seed
        self.rows: dict[str, int] = {}
        self.files: list[Path] = []
        self.geo = sim.geo
        self.postcodes = sim.geo.postcode
        self.next_id: dict[str, int] = {}
        self.died_in_hospital: list[np.ndarray] = []
        self.year_hooks: dict[str, Callable[[int, pl.DataFrame], None]] = {}

    def rng(self, key: int, year: int = 0) -> np.random.Generator:
        """A random stream for one source and year, independent of the others."""
        return np.random.default_rng([self.seed, 900 + key, year])

    def fy_index(self, dates: np.ndarray) -> np.ndarray:
        """Which financial year of the simulation each date falls in (earlier dates: the first)."""
        idx = np.searchsorted(np.array(self.sim.year_starts), dates, side="right") - 1
        return np.clip(idx, 0, self.sim.years - 1)

    def label(self, year: int) -> str:
        """Financial-year label of simulation year `year`."""
        return fy_label(int(str(np.datetime64(self.sim.year_starts[year], "D"))[:4]))

    def provider(self, practice: np.ndarray) -> pl.Series:
        """The acute trust serving each practice's place."""
        trusts = list(self.geo.place_acute_trust)
        return enum(trusts, self.geo.practice_place[practice])

    def practice_code(self, practice: np.ndarray) -> pl.Series:
        """ODS codes of practices by index."""
        return enum(list(self.geo.practice_code), practice)

    def __call__(self, source: str, year: int, frame: pl.DataFrame) -> None:
        """The simulation's sink: write one year of one source."""
        if source == "apc":
            self.died_in_hospital.append(frame.filter(pl.col("died"))["pid"].to_numpy())
        if source in self.year_hooks:
            self.year_hooks[source](year, frame)
            return
        builders = {"apc": self.apc, "op": self.op, "ecds": self.ecds, "csds": self.csds,
                    "mhsds": self.mhsds, "asc": self.social_care, "vcse": self.vcse}
        builders[source](year, frame)

    def write_part(self, source: str, label: str, frame: pl.DataFrame, date_col: str,
                   truth: pl.DataFrame, date_columns: list[str], prefix: str) -> None:
        """Sort by date, number the records on from the last part, and write one file with its truth."""
        order = np.lexsort((frame["pid"].to_numpy(), frame[date_col].to_numpy()))
        frame, truth = frame[order], truth[order]
        first = self.next_id.get(source, 1)
        self.next_id[source] = first + frame.height
        record_id = pl.select((pl.lit(prefix) + pl.int_range(first, first + frame.height, dtype=pl.Int64)
                               .cast(pl.Utf8).str.zfill(9)).alias("record_id")).to_series()
        out = days_to_date(frame.drop("pid").insert_column(0, record_id), date_columns)
        truth = truth.insert_column(0, record_id).insert_column(1, frame["pid"].cast(pl.Int64).alias("person_id"))
        self.files.append(write_table(out, self.out / "extracts" / source / f"{source}_{label}", self.fmt))
        write_table(truth, self.out / "truth" / "records" / source / f"{source}_{label}", self.fmt)
        self.rows[source] = self.rows.get(source, 0) + out.height

    def write_by_year(self, source: str, frame: pl.DataFrame, date_col: str, truth: pl.DataFrame,
                      date_columns: list[str], prefix: str) -> None:
        """Split a whole-period table by financial year and write each part."""
        fy = self.fy_index(frame[date_col].to_numpy())
        for y in range(self.sim.years):
            mask = pl.Series(fy == y)
            self.write_part(source, self.label(y), frame.filter(mask), date_col, truth.filter(mask),
                            date_columns, prefix)

    def _identity(self, source: str, key: int, year: int, frame: pl.DataFrame) -> tuple[dict, pl.DataFrame]:
        pid = frame["pid"].to_numpy()
        cols, flags = identity_columns(self.rng(key, year), self.sim.people, pid,
                                       self.postcodes[frame["postcode"].to_numpy()], source)
        cols["nhs_number"] = nhs_number_strings(cols["nhs_number"])
        return cols, pl.DataFrame(flags)

    def activity(self, source: str, key: int, year: int, frame: pl.DataFrame, date_col: str,
                 own: dict, date_columns: list[str], prefix: str) -> None:
        """An NHS activity source: identity columns, then the source's own columns."""
        ident, truth = self._identity(source, key, year, frame)
        cols = {"nhs_number": ident["nhs_number"], "date_of_birth": ident["date_of_birth"],
                "sex": ident["sex"], "postcode": ident["postcode"], **own}
        self.write_part(source, self.label(year), pl.DataFrame({"pid": frame["pid"], **cols}), date_col,
                        truth, ["date_of_birth", *date_columns], prefix)

    def apc(self, year: int, f: pl.DataFrame) -> None:
        """SUS-like admitted patient care spells: the acute trust's, and the mental health trust's
        (its psychiatric wards: treatment functions 710, 711 and 715)."""
        practice = f["practice"].to_numpy()
        died = f["died"].to_numpy()
        acute = self.provider(practice)
        psychiatric = f["treatment_specialty"].cast(pl.Utf8).is_in(PSYCHIATRY).to_numpy()
        trusts = [*acute.dtype.categories.to_list(), MENTAL_HEALTH_TRUST]
        provider = np.where(psychiatric, len(trusts) - 1, acute.to_physical().to_numpy())
        cols = {
            "provider_code": enum(trusts, provider),
            "gp_practice_code": self.practice_code(practice),
            "admission_date": f["admission_date"], "discharge_ready_date": f["discharge_ready_date"],
            "discharge_date": f["discharge_date"], "admission_method": f["admission_method"],
            "patient_classification": f["patient_classification"],
            "discharge_method": np.where(died, "4", "1"),
            "admission_source": np.where(f["care_home"].to_numpy() >= 0, "85", "19"),
            "discharge_destination": np.where(died, "79", np.where(f["care_home"].to_numpy() >= 0, "85", "19")),
            "treatment_specialty": f["treatment_specialty"],
            "spell_hrg": f["hrg"] if "hrg" in f.columns else pl.Series([None] * f.height, dtype=pl.Utf8),
        }
        # Critical care days within the stay as written (a death can cut a stay short); blank if none.
        if "critical_care_days" in f.columns:
            stay = (f["discharge_date"] - f["admission_date"]).to_numpy().astype(np.int64)
            days = np.minimum(f["critical_care_days"].to_numpy(), np.maximum(stay, 0))
            d = pl.Series(days)
            cols["critical_care_days"] = pl.select(pl.when(d > 0).then(d.cast(pl.Utf8))).to_series()
        for c in DIAG_COLUMNS:
            col = f[c] if c in f.columns else pl.Series(c, [""] * f.height)
            cols[c] = pl.select(pl.when(col != "").then(col)).to_series()
        self.activity("apc", 1, year, f, "admission_date", cols,
                      ["admission_date", "discharge_ready_date", "discharge_date"], "APC")

    def op(self, year: int, f: pl.DataFrame) -> None:
        """SUS-like outpatient appointments."""
        practice = f["practice"].to_numpy()
        own = {"provider_code": self.provider(practice),
                    "gp_practice_code": self.practice_code(practice),
                    "appointment_date": f["appointment_date"],
                    "first_attendance": f["first_attendance"],
                    "attendance_status": f["attendance_status"],
                    "treatment_specialty": f["treatment_specialty"]}
        self.activity("op", 2, year, f, "appointment_date", own, ["appointment_date"], "OPA")

    def ecds(self, year: int, f: pl.DataFrame) -> None:
        """ECDS-like A&E attendances."""
        practice = f["practice"].to_numpy()
        own = {"provider_code": self.provider(practice),
                    "gp_practice_code": self.practice_code(practice),
                    "arrival_date": f["arrival_date"], "department_type": f["department_type"],
                    "arrival_mode": f["arrival_mode"], "disposal": f["disposal"]}
        self.activity("ecds", 3, year, f, "arrival_date", own, ["arrival_date"], "AE")

    def csds(self, year: int, f: pl.DataFrame) -> None:
        """CSDS-like community contacts."""
        own = {"provider_code": np.full(f.height, COMMUNITY_TRUST),
                    "gp_practice_code": self.practice_code(f["practice"].to_numpy()),
                    "contact_date": f["contact_date"], "team_type": f["team_type"],
                    "contact_location": f["contact_location"]}
        self.activity("csds", 4, year, f, "contact_date", own, ["contact_date"], "CSD")

    def mhsds(self, year: int, f: pl.DataFrame) -> None:
        """MHSDS-like mental health contacts."""
        own = {"provider_code": np.full(f.height, MENTAL_HEALTH_TRUST),
                    "gp_practice_code": self.practice_code(f["practice"].to_numpy()),
                    "contact_date": f["contact_date"], "team_type": f["team_type"],
                    "care_coordinator": f["care_coordinator"],
                    "care_plan_agreed_date": f["care_plan_agreed_date"]}
        self.activity("mhsds", 5, year, f, "contact_date", own, ["contact_date", "care_plan_agreed_date"],
                      "MHS")

    def social_care(self, year: int, f: pl.DataFrame) -> None:
        """Council adult social care services: often no NHS number; names, DOB and postcode."""
        people = self.sim.people
        pid = f["pid"].to_numpy()
        rng = self.rng(6, year)
        start = f["start_date"].to_numpy()
        ep_postcode = people.postcode[pid]
        ident, flags = identity_columns(rng, people, pid, self.postcodes[ep_postcode], "asc")
        # A council either holds a person's NHS number or does not: decide per person.
        person_has = np.random.default_rng([self.seed, 990]).random(people.n) < 0.65
        nhs = np.where(person_has[pid], ident["nhs_number"], -1)
        nhs_err = np.where(person_has[pid], flags["nhs_number_error"], 1)
        spaced = rng.random(len(pid)) < 0.3
        names, name_err = name_columns(rng, people, self.sim.names, pid, start, 0.03)
        la = self.geo.place_la_code[self.geo.practice_place[people.practice[pid]]]
        la_id = np.char.add("LA", np.char.zfill(((pid * 7_919 + 104_729) % 9_999_991).astype(str), 7))
        frame = pl.DataFrame({
            "pid": pid, "la_code": la, "la_person_id": la_id,
            "nhs_number": nhs_number_strings(nhs, spaced), **names,
            "date_of_birth": ident["date_of_birth"], "sex": np.where(people.female[pid] == 1, "F", "M"),
            "postcode": ident["postcode"], "service_type": f["service_type"],
            "start_date": start, "end_date": f["end_date"],
        })
        truth = pl.DataFrame({"nhs_number_error": nhs_err, "dob_error": flags["dob_error"],
                              "postcode_error": flags["postcode_error"], "name_error": name_err})
        self.write_part("asc", self.label(year), frame, "start_date", truth,
                        ["date_of_birth", "start_date", "end_date"], "ASC")

    def vcse(self, year: int, f: pl.DataFrame) -> None:
        """Social prescribing referrals: full name, date of birth as typed, postcode: nothing else."""
        people = self.sim.people
        pid = f["pid"].to_numpy()
        rng = self.rng(7, year)
        date = f["referral_date"].to_numpy()
        ident, flags = identity_columns(rng, people, pid, self.postcodes[f["postcode"].to_numpy()], "vcse")
        names, name_err = name_columns(rng, people, self.sim.names, pid, date, 0.05, p_nickname=0.12)
        dob = pl.Series(ident["date_of_birth"]).cast(pl.Int32).cast(pl.Date).dt.strftime("%d/%m/%Y")
        pc = pl.Series(ident["postcode"].astype(str))
        messy = rng.random(len(pid))
        pc = pl.select(pl.when(pl.Series(messy < 0.15)).then(pc.str.to_lowercase())
                       .when(pl.Series(messy < 0.3)).then(pc.str.replace(" ", "")).otherwise(pc)).to_series()
        frame = pl.DataFrame({
            "pid": pid, "organisation": "Community Connectors CIC",
            "client_name": (pl.Series(names["given_name"].astype(str)) + " "
                            + pl.Series(names["family_name"].astype(str))),
            "date_of_birth": dob, "postcode": pc, "referral_date": date,
            "referred_by": self.practice_code(f["practice"].to_numpy()),
            "referral_reason": f["referral_reason"],
        })
        truth = pl.DataFrame({"nhs_number_error": np.ones(len(pid), dtype=np.int64),
                              "dob_error": flags["dob_error"], "postcode_error": flags["postcode_error"],
                              "name_error": name_err})
        self.write_part("vcse", self.label(year), frame, "referral_date", truth, ["referral_date"], "VCS")

    def deaths(self) -> None:
        """Death registrations: who died, when, where and of what."""
        people = self.sim.people
        pid = np.flatnonzero(people.view("exit_reason") == EXIT_DIED)
        date = people.exit[pid]
        rng = self.rng(8)
        died_in_hospital = np.isin(pid, np.concatenate([np.empty(0, dtype=np.int64), *self.died_in_hospital]))
        in_home = people.care_home[pid] >= 0
        place = np.where(died_in_hospital, "hospital",
                         np.where(in_home, np.where(rng.random(len(pid)) < 0.93, "care home", "hospice"),
                                  rng.choice(np.array(["home", "home", "home", "hospice", "other"]),
                                             len(pid), p=[0.3, 0.3, 0.2, 0.15, 0.05])))
        age = (date - people.dob[pid]) / DAYS_PER_YEAR
        has = people.onset[pid] <= age[:, None].astype(np.float32)
        ident, flags = identity_columns(rng, people, pid, self.postcodes[people.postcode[pid]], "deaths")
        names, name_err = name_columns(rng, people, self.sim.names, pid, date, 0.005)
        frame = pl.DataFrame({
            "pid": pid, "nhs_number": nhs_number_strings(ident["nhs_number"]), **names,
            "date_of_birth": ident["date_of_birth"], "sex": ident["sex"], "postcode": ident["postcode"],
            "date_of_death": date, "place_of_death": place,
            "underlying_cause": death_cause(rng, age, has),
        })
        truth = pl.DataFrame({**flags, "name_error": name_err})
        self.write_by_year("deaths", frame, "date_of_death", truth, ["date_of_birth", "date_of_death"], "DTH")

    def condition_truth(self) -> None:
        """Each person's true onset date of every condition and deficit, up to the end of the data."""
        people, items = self.sim.people, load_items()
        end = self.sim.year_starts[-1]
        onset = people.view("onset")
        days = people.view("dob")[:, None] + np.where(np.isfinite(onset), onset, 1e5) * DAYS_PER_YEAR
        pid, item = np.nonzero(np.isfinite(onset) & (days < end))
        frame = pl.DataFrame({"person_id": pid, "item": np.array(items.ids)[item],
                              "onset_date": np.floor(days[pid, item]).astype(np.int64)})
        write_table(days_to_date(frame, ["onset_date"]), self.out / "truth" / "conditions", self.fmt)
