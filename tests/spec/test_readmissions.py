"""Emergency readmissions within 30 days (NHS Digital I02040) as the record's inpatient_spell step
computes them, on hand-written spells: which spells are index spells, and which were readmitted.

| person | spell | method | admitted   | discharged | notes                                              |
|--------|-------|--------|------------|------------|----------------------------------------------------|
| p      | p1    | 21     | 2023-05-01 | 2023-05-10 |                                                    |
| p      | p2    | 21     | 2023-05-12 | 2023-05-14 | readmits p1 (day 2)                                |
| p      | p3    | 21     | 2023-05-20 | 2023-05-22 | readmits p2 (day 6), not p1: the last discharge    |
| q      | q1    | 11     | 2023-06-01 | 2023-06-01 | elective day case: an index spell                  |
| q      | q2    | 22     | 2023-06-30 | 2023-07-02 | day 29: readmits q1                                |
| q      | q3    | 21     | 2023-08-01 | 2023-08-01 | day 30 after q2: not a readmission                 |
| r      | r1    | 21     | 2023-01-01 | 2023-01-05 |                                                    |
| r      | r2    | 12     | 2023-01-10 | 2023-01-11 | elective: not a readmission                        |
| r      | r3    | 21     | 2023-01-20 | 2023-01-25 | readmits r2 (its last discharge), so r1 is not     |
| s      | s1    | 21     | 2023-03-01 | 2023-03-03 | cancer primary diagnosis: not an index spell       |
| s      | s2    | 21     | 2023-03-05 | 2023-03-06 |                                                    |
| s      | s3    | 21     | 2023-03-10 | 2023-03-12 | readmits s2                                        |
| t      | t1    | 21     | 2023-04-01 | 2023-04-03 | died in hospital: not an index spell               |
| u      | u1    | 21     | 2023-09-01 | 2023-09-01 | same-day discharge                                 |
| u      | u2    | 21     | 2023-09-01 | 2023-09-04 | admitted again that day: readmits u1 (day 0)       |
| v      | v1    | 21     | 2023-10-01 | 2023-10-20 |                                                    |
| v      | v2    | 21     | 2023-10-05 | 2023-10-06 | starts before v1's discharge: not its readmission  |
| w      | w1    | 31     | 2023-02-01 | 2023-02-03 | maternity: excluded                                |
| w      | w2    | 21     | 2023-02-10 | 2023-02-12 | O-code primary diagnosis: excluded                 |
"""

import datetime as dt

import duckdb
import polars as pl
import pytest

from openphm.record.build import DEFAULT_SQL_DIR, compile_step, read_steps

D = dt.date
ROWS = [
    ("p1", "p", "21", D(2023, 5, 1), D(2023, 5, 10), "1", "J189"),
    ("p2", "p", "21", D(2023, 5, 12), D(2023, 5, 14), "1", "J189"),
    ("p3", "p", "21", D(2023, 5, 20), D(2023, 5, 22), "1", "J189"),
    ("q1", "q", "11", D(2023, 6, 1), D(2023, 6, 1), "1", "H259"),
    ("q2", "q", "22", D(2023, 6, 30), D(2023, 7, 2), "1", "N390"),
    ("q3", "q", "21", D(2023, 8, 1), D(2023, 8, 1), "1", "N390"),
    ("r1", "r", "21", D(2023, 1, 1), D(2023, 1, 5), "1", "J189"),
    ("r2", "r", "12", D(2023, 1, 10), D(2023, 1, 11), "1", "K409"),
    ("r3", "r", "21", D(2023, 1, 20), D(2023, 1, 25), "1", "J189"),
    ("s1", "s", "21", D(2023, 3, 1), D(2023, 3, 3), "1", "C349"),
    ("s2", "s", "21", D(2023, 3, 5), D(2023, 3, 6), "1", "R074"),
    ("s3", "s", "21", D(2023, 3, 10), D(2023, 3, 12), "1", "R074"),
    ("t1", "t", "21", D(2023, 4, 1), D(2023, 4, 3), "4", "I214"),
    ("u1", "u", "21", D(2023, 9, 1), D(2023, 9, 1), "1", "R074"),
    ("u2", "u", "21", D(2023, 9, 1), D(2023, 9, 4), "1", "R074"),
    ("v1", "v", "21", D(2023, 10, 1), D(2023, 10, 20), "1", "J189"),
    ("v2", "v", "21", D(2023, 10, 5), D(2023, 10, 6), "1", "J189"),
    ("w1", "w", "31", D(2023, 2, 1), D(2023, 2, 3), "1", "O800"),
    ("w2", "w", "21", D(2023, 2, 10), D(2023, 2, 12), "1", "O200"),
]
INDEX = {"p1", "p2", "p3", "q1", "q2", "q3", "r1", "r2", "r3", "s2", "s3", "u1", "u2", "v1", "v2"}
READMITTED = {"p1", "p2", "q1", "r2", "s2", "u1"}


@pytest.fixture(scope="module")
def spells() -> dict[str, tuple[bool, bool]]:
    apc = pl.DataFrame(ROWS, schema=["record_id", "person_id", "admission_method", "admission_date", "discharge_date",
                                     "discharge_method", "diag_01"], orient="row")
    empty = {c: pl.lit(None, pl.Utf8) for c in ("provider_code", "gp_practice_code", "patient_classification",
                                                "admission_source", "discharge_destination", "treatment_specialty",
                                                "lsoa_code", "spell_hrg", "critical_care_days")}
    apc = apc.with_columns(**empty, discharge_ready_date=pl.col("discharge_date"), birth_year=pl.lit(1950),
                           birth_month=pl.lit(6))
    con = duckdb.connect()
    con.register("linked_apc", apc.to_arrow())
    con.execute("CREATE TEMP TABLE tariff (activity VARCHAR, category VARCHAR, unit_cost DOUBLE, "
                "trim_point_days INTEGER, units_per_week DOUBLE)")  # no prices: readmissions only
    con.execute("CREATE TEMP TABLE hrg_weight (category VARCHAR, hrg VARCHAR, weight DOUBLE)")
    con.execute("CREATE SCHEMA built")
    step = next(s for s in read_steps(DEFAULT_SQL_DIR) if s.table == "inpatient_spell")
    con.execute(compile_step(step, "built"))
    rows = con.execute("SELECT spell_id, readmission_index, readmitted_within_30_days FROM built.inpatient_spell")
    return {sid: (idx, readm) for sid, idx, readm in rows.fetchall()}


def test_every_spell_is_kept_once(spells):
    assert sorted(spells) == sorted(r[0] for r in ROWS)


def test_index_spells(spells):
    assert {sid for sid, (idx, _) in spells.items() if idx} == INDEX


def test_readmitted_index_spells(spells):
    assert {sid for sid, (_, readm) in spells.items() if readm} == READMITTED
    # each readmission belongs to one index spell: as many readmitted spells as readmissions
    assert len(READMITTED) == 6  # p2, p3, q2, r3, s3, u2
