"""GP extracts: registrations, coded events (SNOMED CT) and appointments, as CSV/Parquet or as
FHIR R4 NDJSON (Patient, EpisodeOfCare, Condition, Appointment)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from openphm.synth.errors import record_nhs_numbers_with_errors
from openphm.synth.extracts import ExtractWriter
from openphm.synth.identifiers import nhs_number_strings
from openphm.synth.parameters import load_items, load_parameters
from openphm.synth.people import DAYS_PER_YEAR, EXIT_DIED, EXIT_LEFT, OPEN, episode_at
from openphm.synth.writers import NO_DATE, days_to_date, write_table

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SNOMED_SYSTEM = "http://snomed.info/sct"


def gp_nhs_numbers(w: ExtractWriter, pid: np.ndarray, practice: np.ndarray) -> tuple[pl.Series, np.ndarray]:
    """NHS numbers as each practice's system holds them, and the truth's error codes (0 none,
    2 mistyped, 3 valid but wrong). The error belongs to the patient record at a practice, so a
    person's registration, coded events and appointments there all carry the same number."""
    rates = load_parameters().get("identifier_errors", {})
    key = np.asarray(pid, dtype=np.int64) * (1 << 20) + np.asarray(practice, dtype=np.int64)
    numbers, error = record_nhs_numbers_with_errors(
        w.seed * 7_919 + 991, key, w.sim.people.nhs[np.asarray(pid)],
        float(rates.get("gp_nhs_number_mistyped", 0.0)), float(rates.get("gp_nhs_number_wrong_valid", 0.0)))
    return nhs_number_strings(numbers), error


def registrations(w: ExtractWriter) -> pl.DataFrame:
    """One row per registration at a practice: consecutive episodes at one practice merged."""
    people = w.sim.people
    eps = people.all_episodes()
    pid, practice = eps["pid"], eps["practice"]
    new_reg = np.r_[True, (pid[1:] != pid[:-1]) | (practice[1:] != practice[:-1])]
    first = np.flatnonzero(new_reg)
    last = np.r_[first[1:] - 1, len(pid) - 1]
    r_pid = pid[first]
    end = eps["end"][last]
    is_last = np.r_[r_pid[1:] != r_pid[:-1], True]
    reason = np.where(end == OPEN, "", np.where(
        ~is_last, "transferred", np.where(people.exit_reason[r_pid] == EXIT_DIED, "death",
                                          np.where(people.exit_reason[r_pid] == EXIT_LEFT,
                                                   "left area", ""))))
    return pl.DataFrame({
        "pid": r_pid, "practice": practice[first], "registration_start": eps["start"][first],
        "registration_end": np.where(end == OPEN, NO_DATE, end), "postcode": eps["postcode"][last],
        "deregistration_reason": reason,
    })


def events(w: ExtractWriter) -> pl.DataFrame:
    """Coded events: the onset of each condition and frailty deficit, at the practice of the day."""
    people, items = w.sim.people, load_items()
    end = w.sim.year_starts[-1]
    onset = people.view("onset")
    finite = np.isfinite(onset)
    days = people.view("dob")[:, None] + np.where(finite, onset, 0) * DAYS_PER_YEAR
    exit_date = people.view("exit")[:, None]
    pid, item = np.nonzero(finite & (days < end) & (days < exit_date))
    date = np.floor(days[pid, item]).astype(np.int64)
    eps = people.all_episodes()
    at = episode_at(eps, pid, np.maximum(date, people.entry[pid]))
    snomed = np.array(items.snomed, dtype=object)[item]
    return pl.DataFrame({"pid": pid, "practice": eps["practice"][at], "event_date": date,
                         "snomed_code": snomed})


def write_gp_tables(w: ExtractWriter) -> None:
    """GP registrations (one snapshot file), coded events and appointments (by financial year)."""
    people, geo, names = w.sim.people, w.geo, w.sim.names
    reg = registrations(w)
    pid = reg["pid"].to_numpy()
    reg_nhs, reg_error = gp_nhs_numbers(w, pid, reg["practice"].to_numpy())
    frame = pl.DataFrame({
        "pid": pid, "nhs_number": reg_nhs, "nhs_number_error": reg_error,
        "given_name": np.array(names.given_names, dtype=object)[people.given[pid]],
        "family_name": np.array(names.family_names, dtype=object)[people.family[pid]],
        "date_of_birth": people.dob[pid], "sex": np.where(people.female[pid] == 1, "F", "M"),
        "ethnic_category": np.array(names.ethnicity_codes)[people.ethnicity[pid]],
        "postcode": geo.postcode[reg["postcode"].to_numpy()],
        "practice_code": geo.practice_code[reg["practice"].to_numpy()],
        "registration_start": reg["registration_start"], "registration_end": reg["registration_end"],
        "deregistration_reason": reg["deregistration_reason"],
    })
    order = np.lexsort((reg["registration_start"].to_numpy(), pid))
    frame = frame[order]
    record_id = pl.Series("record_id", [f"REG{i:09d}" for i in range(1, frame.height + 1)])
    end_label = str(np.datetime64(w.sim.year_starts[-1] - 1, "D"))
    out = days_to_date(frame.drop("pid", "nhs_number_error").insert_column(0, record_id),
                       ["date_of_birth", "registration_start", "registration_end"])
    w.files.append(write_table(out, w.out / "extracts" / "gp_registrations" / f"gp_registrations_{end_label}", w.fmt))
    truth = pl.DataFrame({"record_id": record_id, "person_id": frame["pid"],
                          "nhs_number_error": frame["nhs_number_error"].cast(pl.Int64)})
    write_table(truth, w.out / "truth" / "records" / "gp_registrations" / f"gp_registrations_{end_label}", w.fmt)
    w.rows["gp_registrations"] = frame.height

    ev = events(w)
    ev_nhs, ev_error = gp_nhs_numbers(w, ev["pid"].to_numpy(), ev["practice"].to_numpy())
    frame = pl.DataFrame({"pid": ev["pid"], "nhs_number": ev_nhs,
                          "practice_code": geo.practice_code[ev["practice"].to_numpy()],
                          "event_date": ev["event_date"], "snomed_code": ev["snomed_code"]})
    w.write_by_year("gp_events", frame, "event_date",
                    pl.DataFrame({"nhs_number_error": ev_error.astype(np.int8)}), ["event_date"], "EVT")



def appointments_hook(w: ExtractWriter) -> Callable[[int, pl.DataFrame], None]:
    """Writes each year's GP appointments as a table."""

    def write(year: int, ap: pl.DataFrame) -> None:
        nhs, error = gp_nhs_numbers(w, ap["pid"].to_numpy(), ap["practice"].to_numpy())
        frame = pl.DataFrame({"pid": ap["pid"], "nhs_number": nhs,
                              "practice_code": w.practice_code(ap["practice"].to_numpy()),
                              "appointment_date": ap["appointment_date"], "hcp_type": ap["hcp_type"],
                              "appointment_mode": ap["appointment_mode"],
                              "appointment_status": ap["appointment_status"]})
        w.write_part("gp_appointments", w.label(year), frame, "appointment_date",
                     pl.DataFrame({"nhs_number_error": error.astype(np.int8)}),
                     ["appointment_date"], "APT")
    return write


def _ndjson(path: Path, resources: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for res in resources:
            fh.write(json.dumps(res, separators=(",", ":"), sort_keys=True) + "\n")
    return path


def write_gp_fhir(w: ExtractWriter) -> None:
    """The GP data as FHIR R4 NDJSON bundles, one resource type per file."""
    people, geo, names = w.sim.people, w.geo, w.sim.names
    folder = w.out / "extracts" / "gp_fhir"
    reg = registrations(w)
    pid_all = np.unique(reg["pid"].to_numpy())
    given = np.array(names.given_names, dtype=object)
    family = np.array(names.family_names, dtype=object)
    eth = np.array(names.ethnicity_codes)
    date = lambda d: str(np.datetime64(int(d), "D"))  # noqa: E731
    patients = []
    for p in pid_all:
        nhs = f"{people.nhs[p]:010d}"
        res = {"resourceType": "Patient", "id": f"pat-{nhs}",
               "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs}],
               "name": [{"family": family[people.family[p]], "given": [given[people.given[p]]]}],
               "gender": "female" if people.female[p] == 1 else "male",
               "birthDate": date(people.dob[p]),
               "address": [{"postalCode": geo.postcode[people.postcode[p]]}],
               "extension": [{"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
                              "valueCodeableConcept": {"coding": [{
                                  "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategory",
                                  "code": str(eth[people.ethnicity[p]])}]}}]}
        if people.exit_reason[p] == EXIT_DIED:
            res["deceasedDateTime"] = date(people.exit[p])
        patients.append(res)
    w.files.append(_ndjson(folder / "Patient.ndjson", patients))

    def patient_ref(p: int) -> dict:
        return {"reference": f"Patient/pat-{people.nhs[p]:010d}"}

    rows = []
    for i, r in enumerate(reg.iter_rows(named=True), start=1):
        period = {"start": date(r["registration_start"])}
        if r["registration_end"] != NO_DATE:
            period["end"] = date(r["registration_end"])
        rows.append({
            "resourceType": "EpisodeOfCare", "id": f"reg-{i}",
            "status": "finished" if "end" in period else "active",
            "type": [{"text": "GP registration"}], "patient": patient_ref(r["pid"]),
            "managingOrganization": {"identifier": {"system": ODS_SYSTEM,
                                                    "value": str(geo.practice_code[r["practice"]])}},
            "period": period})
    w.files.append(_ndjson(folder / "EpisodeOfCare.ndjson", rows))

    ev = events(w)
    rows = []
    for i, r in enumerate(ev.sort(["event_date", "pid"]).iter_rows(named=True), start=1):
        rows.append({
            "resourceType": "Condition", "id": f"evt-{i}", "subject": patient_ref(r["pid"]),
            "code": {"coding": [{"system": SNOMED_SYSTEM, "code": r["snomed_code"]}]},
            "onsetDateTime": date(r["event_date"]), "recordedDate": date(r["event_date"])})
    w.files.append(_ndjson(folder / "Condition.ndjson", rows))

    w.rows["gp_fhir_patients"] = len(patients)


def fhir_appointments_hook(w: ExtractWriter) -> Callable[[int, pl.DataFrame], None]:
    """Appends each year's GP appointments to Appointment.ndjson as FHIR R4 resources."""
    path = w.out / "extracts" / "gp_fhir" / "Appointment.ndjson"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    w.files.append(path)
    status = {"Attended": "fulfilled", "DNA": "noshow", "Unknown": "booked"}
    people, geo = w.sim.people, w.geo
    counter = [0]

    def write(year: int, ap: pl.DataFrame) -> None:
        ap = ap.sort(["appointment_date", "pid"])
        with path.open("a", encoding="utf-8", newline="\n") as fh:
            for r in ap.iter_rows(named=True):
                counter[0] += 1
                day = str(np.datetime64(int(r["appointment_date"]), "D"))
                res = {
                    "resourceType": "Appointment", "id": f"apt-{counter[0]}",
                    "status": status[r["appointment_status"]],
                    "start": f"{day}T09:00:00+00:00", "end": f"{day}T09:10:00+00:00",
                    "serviceType": [{"text": r["hcp_type"]}], "appointmentType": {"text": r["appointment_mode"]},
                    "participant": [
                        {"actor": {"reference": f"Patient/pat-{people.nhs[r['pid']]:010d}"}, "status": "accepted"},
                        {"actor": {"identifier": {"system": ODS_SYSTEM,
                                                  "value": str(geo.practice_code[r["practice"]])}},
                         "status": "accepted"}]}
                fh.write(json.dumps(res, separators=(",", ":"), sort_keys=True) + "\n")
        w.rows["gp_fhir_appointments"] = counter[0]
    return write
