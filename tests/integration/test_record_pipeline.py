"""Ingest, link and build on a generated ICS: nothing lost, nothing identifiable where it should not be."""

import json
import logging
import shutil
from pathlib import Path

import polars as pl
import pytest

from openphm.identity.linkage import link_records
from openphm.identity.report import accuracy
from openphm.ingest.loader import extract_files, ingest_file, load_reference, open_store
from openphm.record.build import DEFAULT_SQL_DIR, BuildFailed, build_record
from openphm.sources import source_for_path
from openphm.synth.generate import GenerateOptions, generate_ics
from openphm.synth.truth_readers import true_people, true_records

NHS_SOURCES = ["apc", "op", "ecds", "csds", "mhsds", "deaths", "gp_registrations", "gp_events", "gp_appointments"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A 12,000-person ICS (CSV), ingested, linked and built, with every log line captured."""
    root = tmp_path_factory.mktemp("pipeline")
    ics = root / "ics"
    generate_ics(GenerateOptions(people=12_000, years=3, seed=31, out=ics, care_model=True))
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.DEBUG)
    logger = logging.getLogger()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        store, con = open_store(root / "db" / "openphm.duckdb")
        load_reference(con, ics / "reference")
        results = [ingest_file(con, f) for f in extract_files(ics)]
        link_records(con, store, 0.9)
        build_record(con)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return {"ics": ics, "store": store, "con": con, "results": results, "logs": records, "root": root}


def test_every_row_is_accounted_for(pipeline):
    generated = json.loads((pipeline["ics"] / "generation.json").read_text())["rows"]
    read: dict[str, int] = {}
    con = pipeline["con"]
    for r in pipeline["results"]:
        assert r.status == "loaded"
        # the loader's own counts against the file read independently and the rows where they went
        # (rows_read == rows_loaded + rows_quarantined alone cannot fail: the loader refuses otherwise)
        in_file = (pl.read_parquet(r.path) if r.path.suffix == ".parquet"
                   else pl.read_csv(r.path, infer_schema_length=0)).height
        file_id = con.execute("SELECT file_id FROM ingest.manifest WHERE path = ? AND status = 'active'",
                              [str(r.path)]).fetchone()[0]
        table = source_for_path(r.path).table
        loaded = con.execute(f"SELECT count(*) FROM raw.{table} WHERE file_id = ?", [file_id]).fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM ingest.quarantine WHERE file_id = ?", [file_id]).fetchone()[0]
        assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (in_file, loaded, quarantined), r.path.name
        assert loaded + quarantined == in_file, r.path.name
        read[r.source] = read.get(r.source, 0) + r.rows_read
    assert read == {k: v for k, v in generated.items() if k in read}
    assert set(read) == {k for k in generated if not k.startswith("gp_fhir")}
    for source, n in read.items():
        assert con.execute("SELECT count(*) FROM link.record_person WHERE source = ?", [source]).fetchone()[0] == n


def test_linkage_quality_meets_the_targets(pipeline, capsys):
    truth = pipeline["ics"] / "truth"
    scores = accuracy(pipeline["con"], true_records(truth), true_people(truth))
    by_source = {r["source"]: r for r in scores["source"].iter_rows(named=True)}
    with capsys.disabled():
        print("\n", scores["source"])
    for source in NHS_SOURCES:
        assert by_source[source]["f1"] >= 0.99, (source, by_source[source])
    for source in ("asc", "vcse"):
        assert by_source[source]["f1"] >= 0.95, (source, by_source[source])
    assert (pipeline["store"].model_dir / "linkage_model.json").stat().st_mode & 0o777 == 0o600


def _identifier_values(ics: Path) -> tuple[set[str], set[str]]:
    people = pl.read_parquet(ics / "truth" / "people.parquet") if (ics / "truth" / "people.parquet").exists() \
        else pl.read_csv(ics / "truth" / "people.csv", infer_schema_length=0)
    numbers = {f"{int(n):010d}" for n in people["nhs_number"].to_list()}
    names = set(people["given_name"].to_list()) | set(people["family_name"].to_list())
    return numbers, names


def test_no_identifier_in_analytic_tables_or_logs(pipeline):
    numbers, names = _identifier_values(pipeline["ics"])
    con = pipeline["con"]
    columns = con.execute("""SELECT database_name, schema_name, table_name, column_name FROM duckdb_columns()
                             WHERE database_name <> 'idn' AND NOT internal AND data_type = 'VARCHAR'
                             AND schema_name NOT LIKE 'pg_%' AND schema_name <> 'information_schema'""").fetchall()
    assert len(columns) > 50
    con.register("needles", pl.DataFrame({"v": sorted(numbers | names)}).to_arrow())
    for d, s, t, c in columns:
        sql = f'SELECT count(*) FROM "{d}"."{s}"."{t}" WHERE "{c}" IN (SELECT v FROM needles)'
        hits = con.execute(sql).fetchone()[0]
        assert hits == 0, f"identifier values in {s}.{t}.{c}"
    con.unregister("needles")
    # the identity store does hold them (it is where they belong)
    assert con.execute("SELECT count(*) FROM idn.identity.records WHERE nhs_number IS NOT NULL").fetchone()[0] > 0
    text = "\n".join(r.getMessage() for r in pipeline["logs"])
    assert "loaded" in text
    assert not any(n in text for n in numbers)
    assert not any(f" {name} " in f" {text} " for name in names if len(name) > 3)
    key = pipeline["store"].key()
    assert key.hex() not in text and len(key) == 32


def test_person_record_tables(pipeline):
    con = pipeline["con"]
    n_people, n_distinct = con.execute("SELECT count(*), count(DISTINCT person_id) FROM record.person").fetchone()
    assert n_people == n_distinct > 12_000
    for table in ("ae_attendance", "inpatient_spell", "outpatient_appointment", "gp_appointment", "community_contact",
                  "mental_health_contact", "social_care_service", "vcse_referral"):
        cols = [r[0] for r in con.execute(f"DESCRIBE record.{table}").fetchall()]
        assert "person_id" in cols and "cost" in cols
        # the shipped tariff prices every kind of activity the generator makes: every row costed, none free
        # but those whose tariff line is free (appointments not attended, a well baby) or, in social care,
        # a service with no days in its extract's year
        assert con.execute(f"SELECT count(*) FROM record.{table} WHERE cost IS NULL").fetchone()[0] == 0
        free = f"SELECT category FROM record.tariff WHERE unit_cost = 0 AND activity = '{table}'"
        zero_weeks = " AND weeks_in_year > 0" if table == "social_care_service" else ""
        assert con.execute(f"SELECT count(*) FROM record.{table} WHERE cost = 0{zero_weeks} "
                           f"AND cost_category NOT IN ({free})").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM record.activity_cost WHERE cost IS NULL").fetchone()[0] == 0
    conditions = dict(con.execute("SELECT condition, count(*) FROM record.condition GROUP BY 1").fetchall())
    assert conditions["hypertension"] > conditions["heart_failure"] > 0
    assert con.execute("SELECT count(*) FROM record.person WHERE care_home_resident").fetchone()[0] > 0


def test_opt_out_removes_people_from_planning_outputs_only(pipeline):
    con = pipeline["con"]
    chosen = [r[0] for r in con.execute("SELECT nhs_number FROM idn.identity.person_key WHERE nhs_number IS NOT NULL "
                                        "ORDER BY person_id LIMIT 40").fetchall()]
    con.execute("CREATE TABLE IF NOT EXISTS idn.identity.optout (nhs_number VARCHAR PRIMARY KEY)")
    con.executemany("INSERT OR IGNORE INTO idn.identity.optout VALUES (?)", [[n] for n in chosen])
    try:
        build_record(con)
        ids = {r[0] for r in con.execute("SELECT person_id FROM idn.identity.person_key k "
                                         "JOIN idn.identity.optout USING (nhs_number)").fetchall()}
        assert len(ids) == 40
        sql = "SELECT person_id FROM record.person WHERE national_data_opt_out"
        in_record = {r[0] for r in con.execute(sql).fetchall()}
        assert in_record == ids  # kept for direct care
        planning = {r[0] for r in con.execute("SELECT person_id FROM planning.person").fetchall()}
        assert not planning & ids
        for table in ("inpatient_spell", "gp_appointment", "condition"):
            left = con.execute(f"SELECT count(*) FROM planning.{table} WHERE person_id IN "
                               f"(SELECT person_id FROM link.opted_out)").fetchone()[0]
            assert left == 0
        assert con.execute("SELECT count(*) FROM record.gp_appointment WHERE person_id IN "
                           "(SELECT person_id FROM link.opted_out)").fetchone()[0] > 0
    finally:
        con.execute("DELETE FROM idn.identity.optout")


def test_failed_build_leaves_the_last_good_one_in_service(pipeline, tmp_path):
    con = pipeline["con"]
    before = con.execute("SELECT count(*), sum(hash(person_id)) FROM record.person").fetchone()
    version_before = con.execute("SELECT max(version) FROM ingest.builds WHERE status = 'succeeded'").fetchone()[0]
    broken = tmp_path / "sql"
    shutil.copytree(DEFAULT_SQL_DIR, broken)
    broken_step = "-- table: broken\n-- depends: person\nSELECT no_such_column FROM record.person\n"
    (broken / "zz_broken.sql").write_text(broken_step)
    with pytest.raises(BuildFailed):
        build_record(con, broken)
    assert con.execute("SELECT count(*), sum(hash(person_id)) FROM record.person").fetchone() == before
    assert con.execute("SELECT status FROM ingest.builds ORDER BY version DESC LIMIT 1").fetchone()[0] == "failed"
    failed_version = con.execute("SELECT max(version) FROM ingest.builds").fetchone()[0]
    schemas = {r[0] for r in con.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()}
    assert f"record_v{failed_version}" not in schemas and f"record_v{version_before}" in schemas
    assert build_record(con)["version"] == failed_version + 1


def test_charlson_scores_rise_with_age_on_the_record(pipeline):
    import datetime as dt

    from openphm.derive.charlson import charlson_scores

    con = pipeline["con"]
    scores = charlson_scores(con, dt.date(2024, 3, 31))
    assert scores.height > 100
    ages = pl.from_arrow(con.execute("SELECT person_id, 2024 - birth_year AS age FROM record.person").arrow())
    joined = ages.join(scores, on="person_id", how="left").with_columns(pl.col("charlson_score").fill_null(0))
    old = joined.filter(pl.col("age") >= 75)["charlson_score"].mean()
    young = joined.filter(pl.col("age") < 40)["charlson_score"].mean()
    assert old > 5 * young > 0


def test_frailty_rises_with_age_and_is_mostly_fit_at_65_plus(pipeline):
    import datetime as dt

    from openphm.derive.efi import efi_scores

    con = pipeline["con"]
    efi = efi_scores(con, dt.date(2024, 3, 31))
    ages = pl.from_arrow(con.execute("SELECT person_id, 2024 - birth_year AS age FROM record.person "
                                     "WHERE registered").arrow())
    joined = ages.join(efi, on="person_id", how="left").with_columns(
        pl.col("efi").fill_null(0.0), pl.col("efi_category").fill_null("fit"))
    older = joined.filter(pl.col("age") >= 65)
    shares = older.group_by("efi_category").len().with_columns(pl.col("len") / older.height)
    share = dict(zip(shares["efi_category"], shares["len"], strict=True))
    # Clegg et al. 2016, people 65+: about 50% fit, 35% mild, 12% moderate, 3% severe (loose bounds)
    assert 0.35 < share["fit"] < 0.75 and 0.15 < share["mild"] < 0.45
    assert 0.03 < share.get("moderate", 0) < 0.25 and share.get("severe", 0) < 0.12
    assert joined.filter(pl.col("age") >= 80)["efi"].mean() > 3 * joined.filter(pl.col("age") < 50)["efi"].mean()
