"""Record linkage: every active record gets a pseudonymous person_id.

1. Deterministic: a valid NHS number whose date of birth agrees with the registered
   population (sources without a date of birth, such as GP events from the same GP system,
   link on the NHS number alone).
2. Probabilistic, with Splink on DuckDB, for the rest (no usable NHS number, or a date of
   birth that disagrees): each distinct identity (names, date of birth, sex, postcode) is
   compared with the registered population on the same fields, with term-frequency
   adjustment for names. The model's m probabilities are estimated from the deterministic
   links (records whose NHS number settles who they are: labels), u probabilities from
   random pairs; the model is saved beside the database.
3. A council's own person id carries a link to all of that person's records.
Records that reach no one become people of their own. Splink runs in a separate in-memory
DuckDB so that no identifier is written to the analytic database.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from openphm.engine.duckdb_store import Store, duckdb_config
from openphm.identity.pseudonym import person_ids

log = logging.getLogger("openphm.identity")

ACTIVE = """
CREATE OR REPLACE TEMP TABLE active_records AS
SELECT r.* FROM idn.identity.records r JOIN ingest.manifest m ON r.file_id = m.file_id AND m.status = 'active'
"""
SPINE = """
CREATE OR REPLACE TEMP TABLE spine AS
SELECT nhs_number, any_value(date_of_birth) AS date_of_birth, any_value(sex) AS sex,
       arg_max(given_name, file_id * 10000000000 + row_number) AS given_name,
       arg_max(family_name, file_id * 10000000000 + row_number) AS family_name,
       list(DISTINCT postcode) FILTER (WHERE postcode IS NOT NULL) AS postcodes
FROM active_records WHERE source = 'gp_registrations' AND nhs_number_valid GROUP BY nhs_number
"""
DETERMINISTIC = """
CREATE OR REPLACE TEMP TABLE links AS
SELECT r.source, r.file_id, r.row_number, 'nhs:' || r.nhs_number AS person_key, 'nhs_number' AS method,
       1.0 AS match_probability
FROM active_records r LEFT JOIN spine s USING (nhs_number)
WHERE r.nhs_number_valid AND (r.date_of_birth IS NULL OR s.date_of_birth IS NULL OR r.date_of_birth = s.date_of_birth)
"""
CANDIDATES = """
CREATE OR REPLACE TEMP TABLE candidates AS
SELECT r.source, r.file_id, r.row_number, r.native_person_key,
       dense_rank() OVER (ORDER BY r.given_name, r.family_name, r.date_of_birth, r.sex, r.postcode,
                          CASE WHEN r.nhs_number_valid THEN r.nhs_number END) AS uid,
       upper(r.given_name) AS given_name, upper(r.family_name) AS family_name, r.date_of_birth, r.sex,
       r.postcode, CASE WHEN r.nhs_number_valid THEN r.nhs_number END AS nhs_number
FROM active_records r ANTI JOIN links l USING (source, file_id, row_number)
"""


@dataclass
class LinkSummary:
    """How records were linked."""

    by_method: dict[str, int]
    by_source: dict[str, dict[str, int]]
    threshold: float
    model_path: Path | None


def _settings(prior: float) -> dict:
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="uid",
        probability_two_random_records_match=prior,
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=False),
            cl.ExactMatch("sex"),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("nhs_number"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("date_of_birth"),
            block_on("postcode", "sex"),
            block_on("family_name", "given_name"),
            block_on("nhs_number"),
        ],
        retain_intermediate_calculation_columns=False,
    ).get_settings("duckdb").as_dict()


def fill_untrained(model: dict, n_labelled: int) -> dict:
    """Give levels never seen in training a value instead of Splink's defaults.

    A level never seen among n labelled true matches has m below 1/n; one never seen among
    millions of random pairs has u below one in a million. The NHS number is absent from the
    training records (they are the ones it already settled), so its levels are set: an exact
    match of two valid numbers almost always means the same person (m 0.99) and almost never
    happens by chance (u 1e-8)."""
    floor_m = 1.0 / max(n_labelled, 1000)
    for comparison in model["comparisons"]:
        nhs = comparison["output_column_name"] == "nhs_number"
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            exact = "=" in level["sql_condition"] and "levenshtein" not in level["sql_condition"]
            if nhs:
                level["m_probability"] = 0.99 if exact else 0.01
                level["u_probability"] = 1e-8 if exact else 1 - 1e-8
                continue
            if level.get("m_probability") is None:
                level["m_probability"] = floor_m
            if level.get("u_probability") is None:
                level["u_probability"] = 1e-6
    return model


def _spine_rows(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.execute("""
        SELECT row_number() OVER () AS uid, nhs_number, upper(given_name) AS given_name,
               upper(family_name) AS family_name, date_of_birth, sex, postcode, nhs_number AS label
        FROM (SELECT s.*, unnest(CASE WHEN len(postcodes) = 0 THEN [NULL] ELSE postcodes END) AS postcode
              FROM spine s)""").pl()


def train_and_predict(con: duckdb.DuckDBPyConnection, threshold: float, model_path: Path,
                      training_sample: int = 20_000) -> pl.DataFrame:
    """Best spine match (NHS number, probability) for each candidate identity above the threshold."""
    from splink import DuckDBAPI, Linker

    left = con.execute("""
        SELECT uid, any_value(given_name) AS given_name, any_value(family_name) AS family_name,
               any_value(date_of_birth) AS date_of_birth, any_value(sex) AS sex, any_value(postcode) AS postcode,
               any_value(nhs_number) AS nhs_number
        FROM candidates GROUP BY uid""").pl()
    if left.height == 0:
        return pl.DataFrame({"uid": [], "nhs_number": [], "match_probability": []},
                            schema={"uid": pl.Int64, "nhs_number": pl.Utf8, "match_probability": pl.Float64})
    right = _spine_rows(con)
    n_people = con.execute("SELECT count(*) FROM spine").fetchone()[0]
    # Labelled training pairs: records whose NHS number settled who they are, with their own errors.
    labelled = con.execute(f"""
        SELECT row_number() OVER () AS uid, upper(r.given_name) AS given_name, upper(r.family_name) AS family_name,
               r.date_of_birth, r.sex, r.postcode, CAST(NULL AS VARCHAR) AS nhs_number, r.nhs_number AS label
        FROM (SELECT * FROM active_records WHERE nhs_number_valid AND date_of_birth IS NOT NULL
              AND source <> 'gp_registrations' USING SAMPLE reservoir({int(training_sample)} ROWS) REPEATABLE (7)) r
        SEMI JOIN spine USING (nhs_number)""").pl()
    mem = duckdb.connect(config=duckdb_config(0.25, in_memory=True))
    db_api = DuckDBAPI(mem)
    settings = _settings(1.0 / max(n_people, 1))
    if labelled.height > 100:
        trainer = Linker([db_api.register(labelled, table_name="train_left"),
                          db_api.register(right, table_name="train_right")], settings, log_level=logging.WARNING)
        trainer.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=7)
        trainer.training.estimate_m_from_label_column("label")
        model = trainer.misc.save_model_to_json()
    else:
        model = settings
    model = fill_untrained(model, labelled.height)
    model["probability_two_random_records_match"] = 1.0 / max(n_people, 1)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_text(json.dumps(model, indent=1, default=str), encoding="utf-8")
    mem.close()
    mem2 = duckdb.connect(config=duckdb_config(0.25, in_memory=True))
    db_api2 = DuckDBAPI(mem2)
    linker = Linker([db_api2.register(left.with_columns(pl.lit(None, pl.Utf8).alias("label")), table_name="cand"),
                     db_api2.register(right, table_name="spine_rows")], model, log_level=logging.WARNING)
    predicted = linker.inference.predict(threshold_match_probability=threshold)
    pairs = mem2.execute("SELECT source_dataset_l, uid_l, uid_r, match_probability "
                         f"FROM {predicted.physical_name}").pl()
    if pairs.height == 0:
        return pl.DataFrame({"uid": [], "nhs_number": [], "match_probability": []},
                            schema={"uid": pl.Int64, "nhs_number": pl.Utf8, "match_probability": pl.Float64})
    p = pairs
    # orient: candidate uid, spine uid
    p = p.with_columns(pl.when(pl.col("source_dataset_l") == "cand").then(pl.col("uid_l")).otherwise(pl.col("uid_r"))
                       .alias("cand_uid"),
                       pl.when(pl.col("source_dataset_l") == "cand").then(pl.col("uid_r")).otherwise(pl.col("uid_l"))
                       .alias("spine_uid"))
    p = p.join(right.select(pl.col("uid").alias("spine_uid"), "nhs_number"), on="spine_uid")
    best = (p.sort(["cand_uid", "match_probability"], descending=[False, True])
            .group_by("cand_uid", maintain_order=True).first())
    return best.select(pl.col("cand_uid").alias("uid"), "nhs_number", "match_probability")


def link_records(con: duckdb.DuckDBPyConnection, store: Store, threshold: float = 0.9) -> LinkSummary:
    """Assign a person_id to every active record; writes link.record_person (analytic) and
    identity.person_key (identity store)."""
    for sql in (ACTIVE, SPINE, DETERMINISTIC, CANDIDATES):
        con.execute(sql)
    model_path = store.model_dir / "linkage_model.json"
    matches = train_and_predict(con, threshold, model_path)
    con.register("matches", matches.to_arrow())
    con.execute("""
        INSERT INTO links
        SELECT c.source, c.file_id, c.row_number, 'nhs:' || m.nhs_number, 'probabilistic', m.match_probability
        FROM candidates c JOIN matches m USING (uid)""")
    # A council's own person id: records of the same person follow the best link any of them has.
    con.execute("""
        INSERT INTO links
        SELECT c.source, c.file_id, c.row_number,
               coalesce(k.person_key, 'src:' || c.source || ':' || c.native_person_key), 'native_key',
               coalesce(k.match_probability, 1.0)
        FROM candidates c
        LEFT JOIN (SELECT r.source, r.native_person_key, arg_max(l.person_key, l.match_probability) AS person_key,
                          max(l.match_probability) AS match_probability
                   FROM links l JOIN active_records r USING (source, file_id, row_number)
                   WHERE r.native_person_key IS NOT NULL GROUP BY 1, 2) k USING (source, native_person_key)
        ANTI JOIN links l USING (source, file_id, row_number)
        WHERE c.native_person_key IS NOT NULL""")
    con.execute("""
        INSERT INTO links
        SELECT c.source, c.file_id, c.row_number, 'rec:' || c.source || ':' || c.file_id || ':' || c.row_number,
               'unlinked', NULL
        FROM candidates c ANTI JOIN links l USING (source, file_id, row_number)""")
    con.unregister("matches")
    keys = [r[0] for r in con.execute("SELECT DISTINCT person_key FROM links ORDER BY 1").fetchall()]
    ids = person_ids(store.key(), keys)
    mapping = pl.DataFrame({"person_key": keys, "person_id": ids})
    con.register("person_map", mapping.to_arrow())
    con.execute("CREATE SCHEMA IF NOT EXISTS link")
    con.execute("BEGIN")
    # person_id as a UUID (16 bytes) rather than 32 characters of text: the same 128 bits of HMAC
    con.execute("""CREATE OR REPLACE TEMP TABLE person_uuid AS
                   SELECT person_key, CAST(substr(person_id, 1, 8) || '-' || substr(person_id, 9, 4) || '-' ||
                          substr(person_id, 13, 4) || '-' || substr(person_id, 17, 4) || '-' ||
                          substr(person_id, 21, 12) AS UUID) AS person_id FROM person_map""")
    con.execute("""CREATE OR REPLACE TABLE link.record_person AS
                   SELECT l.source, l.file_id, l.row_number, p.person_id, l.method,
                          CAST(l.match_probability AS FLOAT) AS match_probability
                   FROM links l JOIN person_uuid p USING (person_key)""")
    con.execute("COMMIT")
    con.execute("BEGIN")
    con.execute("""CREATE OR REPLACE TABLE idn.identity.person_key AS
                   SELECT p.person_id, p.person_key,
                          CASE WHEN p.person_key LIKE 'nhs:%' THEN substr(p.person_key, 5) END AS nhs_number
                   FROM person_uuid p""")
    con.execute("COMMIT")
    con.unregister("person_map")
    by_method = dict(con.execute("SELECT method, count(*) FROM link.record_person GROUP BY 1 ORDER BY 1").fetchall())
    by_source: dict[str, dict[str, int]] = {}
    for source, method, n in con.execute(
            "SELECT source, method, count(*) FROM link.record_person GROUP BY 1, 2 ORDER BY 1, 2").fetchall():
        by_source.setdefault(source, {})[method] = n
    for temp in ("active_records", "spine", "links", "candidates", "person_uuid"):
        con.execute(f"DROP TABLE IF EXISTS {temp}")  # they hold identifiers: none outlives the link
    log.info("linked records: %s", by_method)
    return LinkSummary(by_method, by_source, threshold, model_path)
