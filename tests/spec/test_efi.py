"""Electronic Frailty Index on hand-made records with hand-counted deficits."""

import datetime as dt

import duckdb
import polars as pl

from openphm.derive.efi import efi_codes, efi_scores


def test_deficits_are_counted_once_and_categorised():
    codes = efi_codes()
    assert codes["deficit"].n_unique() == 36
    by_deficit = codes.group_by("deficit").agg(pl.col("code").first()).sort("deficit")["code"].to_list()
    events = []
    # a: 4 deficits (0.111, fit); b: 9 (0.25, moderate); c: 14 (0.389, severe); d: 5 deficits coded twice (mild)
    for person, n in (("a", 4), ("b", 9), ("c", 14)):
        events += [(person, dt.date(2023, 1, 1), code) for code in by_deficit[:n]]
    events += [("d", dt.date(2023, 1, 1), code) for code in by_deficit[:5] * 2]
    # asthma and COPD are one deficit (respiratory disease); a code after the date does not count
    events += [("e", dt.date(2020, 1, 1), "195967001"), ("e", dt.date(2021, 1, 1), "13645005"),
               ("e", dt.date(2025, 1, 1), "161898004")]
    con = duckdb.connect()
    con.register("ev", pl.DataFrame(events, schema=["person_id", "event_date", "snomed_code"], orient="row").to_arrow())
    con.execute("CREATE TABLE gp_event AS SELECT * FROM ev")
    out = {r["person_id"]: (r["deficits"], r["efi_category"]) for r in
           efi_scores(con, dt.date(2024, 1, 1), events="gp_event").iter_rows(named=True)}
    assert out == {"a": (4, "fit"), "b": (9, "moderate"), "c": (14, "severe"), "d": (5, "mild"), "e": (1, "fit")}
