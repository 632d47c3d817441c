"""The truth folder (never read by the platform) and the reference files a real ICS would hold."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from openphm.calendar_dates import fy_label
from openphm.synth.extracts import ExtractWriter
from openphm.synth.geography import COMMUNITY_TRUST, ICB_CODE, MENTAL_HEALTH_TRUST
from openphm.synth.people import OPEN
from openphm.synth.writers import NO_DATE, days_to_date, write_table


def write_reference(w: ExtractWriter) -> None:
    """Organisations, postcode-to-LSOA lookup, IMD deciles and care homes (ODS/ONS-style files)."""
    geo = w.geo
    ref = w.out / "reference"
    orgs = pl.DataFrame({
        "practice_code": geo.practice_code,
        "practice_name": [f"{geo.place_name[p]} Medical Practice {i + 1}"
                          for i, p in enumerate(geo.practice_place)],
        "pcn_code": geo.pcn_code[geo.practice_pcn],
        "pcn_name": [f"{geo.place_name[geo.pcn_place[c]]} PCN {c + 1}" for c in geo.practice_pcn],
        "place_code": geo.place_code[geo.practice_place],
        "place_name": geo.place_name[geo.practice_place],
        "icb_code": ICB_CODE,
    })
    w.files.append(write_table(orgs, ref / "organisations", "csv"))
    lsoa = pl.DataFrame({"lsoa_code": geo.lsoa_code, "imd_decile": geo.lsoa_decile,
                         "place_code": geo.place_code[geo.lsoa_place]})
    w.files.append(write_table(lsoa, ref / "lsoa_imd2019", "csv"))
    pcs = pl.DataFrame({"postcode": geo.postcode, "lsoa_code": geo.lsoa_code[geo.postcode_lsoa]})
    w.files.append(write_table(pcs, ref / "postcode_lsoa", "csv"))
    homes = pl.DataFrame({
        "care_home_code": geo.care_home_code, "care_home_type": geo.care_home_type,
        "beds": geo.care_home_beds, "postcode": geo.postcode[geo.care_home_postcode],
        "aligned_practice_code": geo.practice_code[geo.care_home_practice],
    })
    w.files.append(write_table(homes, ref / "care_homes", "csv"))
    w.files.append(write_table(providers(geo), ref / "providers", "csv"))


def providers(geo) -> pl.DataFrame:
    """The trusts and councils that send extracts (ODS-style codes), which ingest checks codes against:
    the acute trusts serving the places, the community and mental health trusts, and the councils."""
    acute = list(dict.fromkeys(geo.place_acute_trust.tolist()))
    first_place = {code: geo.place_name[list(geo.place_acute_trust).index(code)] for code in acute}
    councils = list(dict.fromkeys(geo.place_la_code.tolist()))
    council_place = {code: geo.place_name[list(geo.place_la_code).index(code)] for code in councils}
    rows = ([(c, f"{first_place[c]} Hospitals NHS Foundation Trust", "acute trust") for c in acute]
            + [(COMMUNITY_TRUST, "Community Health Services NHS Trust", "community trust"),
               (MENTAL_HEALTH_TRUST, "Mental Health NHS Foundation Trust", "mental health trust")]
            + [(c, f"{council_place[c]} Council", "local authority") for c in councils])
    return pl.DataFrame(rows, schema=["org_code", "org_name", "org_type"], orient="row")


def write_truth(w: ExtractWriter) -> None:
    """People, their yearly latent risk, place targets and the care model as injected."""
    sim, people, names = w.sim, w.sim.people, w.sim.names
    n = people.n
    truth = w.out / "truth"
    v = people.view
    frame = pl.DataFrame({
        "person_id": np.arange(n), "nhs_number": v("nhs"),
        "given_name": np.array(names.given_names, dtype=object)[v("given")],
        "family_name": np.array(names.family_names, dtype=object)[v("family")],
        "previous_family_name": np.array(names.family_names, dtype=object)[v("prev_family")],
        "surname_change_date": np.where(v("surname_change") == OPEN, NO_DATE, v("surname_change")),
        "date_of_birth": v("dob"), "sex": np.where(v("female") == 1, "F", "M"),
        "ethnic_category": np.array(names.ethnicity_codes)[v("ethnicity")],
        "entry_date": v("entry"), "exit_date": np.where(v("exit") == OPEN, NO_DATE, v("exit")),
        "exit_reason": np.array(["", "died", "left"])[v("exit_reason")],
        "mother_person_id": v("mother"),
        "care_home_since": np.where(v("first_care_start") < 0, NO_DATE, v("first_care_start")),
        "latent_health": v("z"), "person_risk_multiplier": v("frailty_re"),
    })
    write_table(days_to_date(frame, ["surname_change_date", "date_of_birth", "entry_date",
                                     "exit_date", "care_home_since"]), truth / "people", w.fmt)
    risk = pl.concat(sim.risk)
    years = [int(str(np.datetime64(s, "D"))[:4]) for s in sim.year_starts[:-1]]
    risk = risk.with_columns(pl.Series("financial_year", np.array([fy_label(y) for y in years])[
        risk["year_index"].to_numpy()])).rename({"pid": "person_id"}).drop("year_index")
    write_table(risk.select("person_id", "financial_year", pl.exclude("person_id", "financial_year")),
                truth / "person_year_risk", w.fmt)
    geo = w.geo
    places = pl.DataFrame({
        "place_code": geo.place_code, "place_name": geo.place_name,
        "delayed_bed_day_share_target": sim.delayed_share,
        "smi_care_coordinator_coverage": sim.coordinator_cover,
        "smi_care_plan_coverage": sim.plan_cover,
        "activity_effect_log": sim.effects.place,
    })
    write_table(places, truth / "places", "csv")
    cm = sim.care_model
    model = {"enabled": cm is not None}
    # by practice, month, outcome and group: the events without the model and those it prevented
    cells = pl.concat(sim.prevented)
    cells = (cells.group_by("practice", "month", "group", "outcome")
             .agg(pl.col("events").sum(), pl.col("prevented").sum()))
    cells = (cells.with_columns(pl.Series("practice_code", np.asarray(geo.practice_code)[cells["practice"].to_numpy()]))
             .select("practice_code", "month", "outcome", "group", "events", "prevented")
             .sort("practice_code", "month", "outcome", "group"))
    write_table(cells, truth / "care_model_effects", "csv")
    if cm is not None:
        model.update({
            "practices": [str(c) for c in geo.practice_code[cm.practices]],
            "start_date": cm.start.isoformat(),
            "practice_starts": {str(c): d.isoformat() for c, d in zip(geo.practice_code[cm.practices], cm.start_of(),
                                                                        strict=True)},
            "effect": cm.effect,
            "outcomes": ["emergency admissions", "A&E attendances"],
            "eligible": f"people aged {cm.eligible_min_age}+ or living in a care home, registered "
                        "with a participating practice on the day of the event",
            "selection": "larger and more deprived practices were likelier to join",
            "events_prevented": cells.group_by("outcome").agg(pl.col("prevented").sum().alias("events_prevented"))
            .sort("outcome").to_dicts(),
            "effects_by_practice_and_month": "care_model_effects.csv",
        })
    (truth / "care_model.json").write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
