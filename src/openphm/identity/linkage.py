"""Record linkage: every active record gets a pseudonymous person_id.

1. Deterministic: a valid NHS number whose date of birth agrees with the registered population
   (the "spine": GP registrations with a valid number). Sources without a date of birth, such as
   GP events from the same GP system, link on the NHS number alone.
2. Wrong numbers in general practice: a registered person seen only in GP data and a person
   known by another valid number but registered nowhere are the same person when their
   identities agree (a GP record holding a valid but wrong number creates a false entry in the
   spine). Splink compares the two groups without the NHS number; mutual best pairs at or above
   `merge_threshold` are merged under the number used outside general practice.
3. The remaining records are grouped into units: records sharing a source's own person id
   (a council's), records sharing the same invalid NHS number (a mistyped number on a GP record
   travels with that record's events and appointments; not when the records disagree on date of
   birth) and records with identical identities that include a date of birth and a postcode,
   NHS number or both names.
4. Probabilistic (Splink): each unit's identities are compared with everything the deterministic
   links know about each person (all their names, dates of birth, sexes, postcodes and numbers);
   a unit goes to the person of its best match at or above `threshold`, or follows the records
   of its council person id that were linked by NHS number.
5. Units that reach no one are compared with each other (Splink dedupe) and clustered with
   Splink's connected components at `dedupe_threshold`; each cluster is one person.

Ties are broken by a stated rule: the highest match probability, then the smallest person key;
clusters are named after their earliest record (records ordered by source, the SHA-256 of their
file and their row). The model is trained on a sample chosen by hashing (MD5) those record keys, and
Splink runs single-threaded on sorted inputs, so the same active files give the same partition
of records into people whatever the number of threads. Splink runs in a separate in-memory
DuckDB so that no identifier is written to the analytic database.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from openphm.engine.connection import Connection, transaction
from openphm.engine.duckdb_store import Store
from openphm.identity import linkage_model as lm
from openphm.identity import store as identity_store
from openphm.identity.pseudonym import person_ids

log = logging.getLogger("openphm.identity")

# A record's key orders records by source, file (SHA-256, then id) and row: the file's rank among the
# active files times 2^32 plus its row number, so that no sort of every record is needed; the source,
# file and row of a record are read back from its key and `lk_files` (a small table), not by a join
# with every record.
FILE_RANK = 4294967296


def file_of(key: str) -> str:
    """SQL: the join to `lk_files` (as f) of the file that record key `key` belongs to."""
    return f"JOIN lk_files f ON f.file_rank = {key} // {FILE_RANK}"


def row_of(key: str) -> str:
    """SQL: the row number inside its file of record key `key`."""
    return f"({key} % {FILE_RANK})"


FILES = """
CREATE OR REPLACE TEMP TABLE lk_files AS
SELECT file_id, source, row_number() OVER (ORDER BY source, sha256, file_id) AS file_rank
FROM ingest.manifest WHERE status = 'active'
"""
ACTIVE = f"""
CREATE OR REPLACE TEMP TABLE active_records AS
SELECT f.file_rank * {FILE_RANK} + r.row_number AS rec_key,
       r.source, r.file_id, r.row_number, r.nhs_number, coalesce(r.nhs_number_valid, false) AS nhs_number_valid,
       nullif(upper(trim(r.given_name)), '') AS given_name, nullif(upper(trim(r.family_name)), '') AS family_name,
       r.date_of_birth, CASE WHEN r.sex IN ('M', 'F') THEN r.sex END AS sex, r.postcode, r.native_person_key
FROM {identity_store.RECORDS} r JOIN lk_files f USING (file_id)
"""
# The spine's date of birth: the commonest among a number's registrations, then the earliest record's.
SPINE = """
CREATE OR REPLACE TEMP TABLE spine AS
SELECT nhs_number, max(CASE WHEN choice = 1 THEN date_of_birth END) AS date_of_birth
FROM (SELECT nhs_number, date_of_birth,
             row_number() OVER (PARTITION BY nhs_number ORDER BY date_of_birth IS NULL, n DESC, k) AS choice
      FROM (SELECT nhs_number, date_of_birth, count(*) AS n, min(rec_key) AS k FROM active_records
            WHERE source = 'gp_registrations' AND nhs_number_valid GROUP BY nhs_number, date_of_birth))
GROUP BY nhs_number
"""
# Records linked by their NHS number: valid, and the date of birth (where both have one) the spine's.
# The number, not the key 'nhs:<number>', is kept per record (a string made for every record is slow);
# the key is made once per number where it is needed.
LINKED_BY_NUMBER = """FROM active_records r LEFT JOIN spine s USING (nhs_number)
WHERE r.nhs_number_valid
  AND (r.date_of_birth IS NULL OR s.date_of_birth IS NULL OR r.date_of_birth = s.date_of_birth)"""
DETERMINISTIC = f"""
CREATE OR REPLACE TEMP TABLE det AS
SELECT r.rec_key, r.nhs_number {LINKED_BY_NUMBER}
"""
CANDIDATES = """
CREATE OR REPLACE TEMP TABLE candidates AS
SELECT r.rec_key, r.source, r.native_person_key,
       CASE WHEN NOT r.nhs_number_valid THEN r.nhs_number END AS bad_number,
       dense_rank() OVER (ORDER BY r.given_name, r.family_name, r.date_of_birth, r.sex, r.postcode,
                          CASE WHEN r.nhs_number_valid THEN r.nhs_number END) AS uid,
       r.given_name, r.family_name, r.date_of_birth, r.sex, r.postcode,
       CASE WHEN r.nhs_number_valid THEN r.nhs_number END AS nhs_number
FROM active_records r ANTI JOIN det USING (rec_key)
"""
# Rule-based groups of remaining records, as edges to the group's first record.
UNIT_EDGES = """
WITH g AS (
    SELECT rec_key, 'k:' || source || ':' || native_person_key AS g FROM candidates WHERE native_person_key IS NOT NULL
    UNION ALL
    SELECT rec_key, 'x:' || bad_number FROM candidates
    WHERE bad_number IN (SELECT bad_number FROM candidates WHERE bad_number IS NOT NULL
                         GROUP BY 1 HAVING count(DISTINCT date_of_birth) <= 1)
    UNION ALL
    SELECT rec_key, 'u:' || uid FROM candidates
    WHERE date_of_birth IS NOT NULL
      AND (postcode IS NOT NULL OR nhs_number IS NOT NULL OR (given_name IS NOT NULL AND family_name IS NOT NULL)))
SELECT uid_l, uid_r, 1.0 AS match_probability
FROM (SELECT rec_key AS uid_l, min(rec_key) OVER (PARTITION BY g) AS uid_r FROM g)
WHERE uid_l <> uid_r ORDER BY 1, 2
"""
# The distinct identities of each person the deterministic links found (far fewer rows than records:
# a person's appointments repeat one identity), read by every comparison with known people.
DET_IDENTITIES = f"""
CREATE OR REPLACE TEMP TABLE det_identities AS
SELECT 'nhs:' || nhs_number AS person_key, given_name, family_name, date_of_birth, sex, postcode, nhs_number
FROM (SELECT DISTINCT r.nhs_number, r.given_name, r.family_name, r.date_of_birth, r.sex, r.postcode
      {LINKED_BY_NUMBER})
"""
# The same after wrong numbers in general practice are merged (`lk_key_map`).
KNOWN_IDENTITIES = """
SELECT coalesce(m.to_key, i.person_key) AS person_key, i.given_name, i.family_name, i.date_of_birth, i.sex,
       i.postcode, i.nhs_number
FROM det_identities i LEFT JOIN lk_key_map m ON m.from_key = i.person_key
"""
# Everything the deterministic links know about each person, as rows to compare with.
PERSON_ROWS = """
WITH r AS ({identities}),
names AS (SELECT DISTINCT person_key, given_name, family_name FROM r
          WHERE given_name IS NOT NULL OR family_name IS NOT NULL),
dobs AS (SELECT DISTINCT person_key, date_of_birth FROM r WHERE date_of_birth IS NOT NULL),
sexes AS (SELECT DISTINCT person_key, sex FROM r WHERE sex IS NOT NULL),
pcs AS (SELECT DISTINCT person_key, postcode FROM r WHERE postcode IS NOT NULL),
numbers AS (SELECT DISTINCT person_key, nhs_number FROM r WHERE nhs_number IS NOT NULL),
people AS (SELECT DISTINCT person_key FROM r)
SELECT row_number() OVER (ORDER BY person_key, given_name, family_name, date_of_birth, sex, postcode, nhs_number)
       AS uid, * FROM (
    SELECT p.person_key, n.given_name, n.family_name, d.date_of_birth, s.sex, c.postcode, x.nhs_number
    FROM people p LEFT JOIN names n USING (person_key) LEFT JOIN dobs d USING (person_key)
    LEFT JOIN sexes s USING (person_key) LEFT JOIN pcs c USING (person_key) LEFT JOIN numbers x USING (person_key)
    {where})
"""
# Registered people as the registrations describe them: for training the model.
SPINE_ROWS = """
WITH reg AS (SELECT * FROM active_records WHERE source = 'gp_registrations' AND nhs_number_valid),
person AS (SELECT nhs_number, arg_max(given_name, rec_key) AS given_name, arg_max(family_name, rec_key) AS family_name,
                  arg_max(sex, rec_key) AS sex FROM reg GROUP BY 1),
pcs AS (SELECT DISTINCT nhs_number, postcode FROM reg)
SELECT row_number() OVER (ORDER BY p.nhs_number, c.postcode) AS uid, p.given_name, p.family_name, s.date_of_birth,
       p.sex, c.postcode, p.nhs_number, p.nhs_number AS label
FROM person p JOIN spine s USING (nhs_number) JOIN pcs c USING (nhs_number)
"""
# Records whose NHS number settles who they are, with their own errors: a sample chosen by hash.
LABELLED = """
SELECT row_number() OVER (ORDER BY k, rec_key) AS uid, given_name, family_name, date_of_birth, sex, postcode,
       CAST(NULL AS VARCHAR) AS nhs_number, nhs_number AS label
FROM (SELECT r.*, md5(CAST(r.rec_key AS VARCHAR) || ':7') AS k FROM active_records r SEMI JOIN spine USING (nhs_number)
      WHERE r.nhs_number_valid AND r.date_of_birth IS NOT NULL AND r.source <> 'gp_registrations'
      ORDER BY k, rec_key LIMIT {n})
"""


@dataclass
class LinkSummary:
    """How records were linked."""

    by_method: dict[str, int]
    by_source: dict[str, dict[str, int]]
    threshold: float
    model_path: Path | None
    dedupe_threshold: float | None = None
    numbers_merged: int = 0


def _best(pairs: pl.DataFrame, by: str) -> pl.DataFrame:
    """One row per `by`: the highest match_probability, ties to the smallest person_key (then the
    other columns, so that the order is total)."""
    others = [c for c in pairs.columns if c not in (by, "match_probability", "person_key")]
    order = [by, "match_probability", "person_key", *others]
    return (pairs.sort(order, descending=[False, True, False, *[False] * len(others)], maintain_order=True)
            .unique(subset=[by], keep="first", maintain_order=True))


def _merge_wrong_numbers(con: Connection, model: dict, threshold: float) -> pl.DataFrame:
    """(from_key, to_key): registered people seen only in GP data who are people known by another
    valid number and registered nowhere (mutual best matches without the NHS number)."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE key_sources AS
        SELECT 'nhs:' || nhs_number AS person_key, registered, gp_only
        FROM (SELECT d.nhs_number, bool_or(f.source = 'gp_registrations') AS registered,
                     bool_and(f.source LIKE 'gp%') AS gp_only
              FROM det d {file_of("d.rec_key")} GROUP BY 1)""")
    empty = pl.DataFrame(schema={"from_key": pl.Utf8, "to_key": pl.Utf8})
    if con.execute("SELECT count(*) FROM key_sources WHERE NOT registered").fetchone()[0] == 0:
        return empty
    def people(which: str) -> pl.DataFrame:
        return con.execute(PERSON_ROWS.format(
            identities="SELECT * FROM det_identities",
            where=f"WHERE p.person_key IN (SELECT person_key FROM key_sources WHERE {which})")).pl()

    gp_only, unregistered = people("registered AND gp_only"), people("NOT registered")
    pairs = lm.link_pairs(model, gp_only, unregistered, threshold, without_nhs_number=True, engine=con)
    if pairs.height == 0:
        return empty
    left = gp_only.select(pl.col("uid").alias("uid_l"), pl.col("person_key").alias("from_key"))
    right = unregistered.select(pl.col("uid").alias("uid_r"), pl.col("person_key").alias("to_key"))
    pairs = (pairs.join(left, on="uid_l").join(right, on="uid_r")
             .group_by("from_key", "to_key").agg(pl.col("match_probability").max()))
    forward = _best(pairs.rename({"to_key": "person_key"}), "from_key").rename({"person_key": "to_key"})
    backward = _best(pairs.rename({"from_key": "person_key"}), "to_key").rename({"person_key": "from_key"})
    mutual = forward.join(backward.select("from_key", "to_key"), on=["from_key", "to_key"])
    return mutual.select("from_key", "to_key").sort("from_key")


def _units(con: Connection) -> pl.DataFrame:
    """(rec_key, unit) for the records left after the deterministic links."""
    nodes = con.execute("SELECT rec_key FROM candidates ORDER BY 1").pl()["rec_key"]
    edges = con.execute(UNIT_EDGES).pl()
    cc = lm.connected_components(nodes, edges, engine=con)
    return cc.rename({"node": "rec_key", "cluster": "unit"})


def _identities(con: Connection, which: str = "TRUE") -> pl.DataFrame:
    """Distinct identities (uid and IDENTITY columns) of candidate records `which` (a condition on c)."""
    return con.execute(f"""
        SELECT uid, any_value(given_name) AS given_name, any_value(family_name) AS family_name,
               any_value(date_of_birth) AS date_of_birth, any_value(sex) AS sex, any_value(postcode) AS postcode,
               any_value(nhs_number) AS nhs_number
        FROM candidates c
        WHERE ({which}) AND (coalesce(given_name, family_name, postcode, nhs_number) IS NOT NULL
                             OR date_of_birth IS NOT NULL)
        GROUP BY uid ORDER BY uid""").pl()


def _units_to_people(con: Connection, model: dict, threshold: float) -> pl.DataFrame:
    """(unit, person_key, match_probability, method): each unit's best known person at or above the
    threshold, or the person its council person id's other records were linked to by NHS number."""
    people = con.execute(PERSON_ROWS.format(identities=KNOWN_IDENTITIES, where="")).pl()
    pairs = lm.link_pairs(model, _identities(con), people, threshold, engine=con)
    pairs = pairs.join(people.select(pl.col("uid").alias("uid_r"), "person_key"), on="uid_r")
    con.register("lk_id_pairs", pairs.to_arrow())
    unit_pairs = con.execute("""
        SELECT u.unit, p.person_key, max(p.match_probability) AS match_probability, 'probabilistic' AS method
        FROM lk_units u JOIN candidates c USING (rec_key) JOIN lk_id_pairs p ON p.uid_l = c.uid GROUP BY 1, 2
        UNION ALL
        SELECT DISTINCT u.unit, k.person_key, 1.0, 'native_key'
        FROM lk_units u JOIN candidates c USING (rec_key)
        JOIN active_records a ON a.source = c.source AND a.native_person_key = c.native_person_key
        JOIN det d ON d.rec_key = a.rec_key JOIN number_keys k ON k.nhs_number = d.nhs_number""").pl()
    con.unregister("lk_id_pairs")
    return _best(unit_pairs, "unit")


def _cluster_leftovers(con: Connection, model: dict, threshold: float) -> pl.DataFrame:
    """(unit, cluster) for the units that reach no one (`lk_leftover`): Splink dedupe of their
    identities (an identity shared by several units is left out), connected components over units."""
    single = "SELECT uid FROM candidates JOIN lk_units USING (rec_key) GROUP BY 1 HAVING count(DISTINCT unit) = 1"
    rows = _identities(con, f"c.rec_key IN (SELECT rec_key FROM lk_units SEMI JOIN lk_leftover USING (unit)) "
                            f"AND c.uid IN ({single})")
    con.register("lk_dd_pairs", lm.dedupe_pairs(model, rows, threshold, engine=con).to_arrow())
    unit_edges = con.execute("""
        WITH uid_unit AS (SELECT DISTINCT c.uid, u.unit FROM candidates c JOIN lk_units u USING (rec_key))
        SELECT least(a.unit, b.unit) AS uid_l, greatest(a.unit, b.unit) AS uid_r,
               max(p.match_probability) AS match_probability
        FROM lk_dd_pairs p JOIN uid_unit a ON a.uid = p.uid_l JOIN uid_unit b ON b.uid = p.uid_r
        WHERE a.unit <> b.unit GROUP BY 1, 2 ORDER BY 1, 2""").pl()
    con.unregister("lk_dd_pairs")
    nodes = con.execute("SELECT unit FROM lk_leftover ORDER BY 1").pl()["unit"]
    return lm.connected_components(nodes, unit_edges, threshold, engine=con).rename({"node": "unit"})


def link_records(con: Connection, store: Store, threshold: float = 0.9,
                 dedupe_threshold: float | None = None, merge_threshold: float | None = None,
                 training_sample: int = 20_000) -> LinkSummary:
    """Assign a person_id to every active record; writes link.record_person (analytic) and
    identity.person_key (identity store). `dedupe_threshold` is the match probability at which
    records that reach no registered person are clustered together, `merge_threshold` the one at
    which a number seen only in GP data joins an unregistered person's (both default to `threshold`)."""
    dedupe_threshold = threshold if dedupe_threshold is None else dedupe_threshold
    merge_threshold = threshold if merge_threshold is None else merge_threshold
    for sql in (FILES, ACTIVE, SPINE, DETERMINISTIC, DET_IDENTITIES):
        con.execute(sql)
    model_path = store.model_dir / "linkage_model.json"
    n_people = con.execute("SELECT count(*) FROM spine").fetchone()[0]
    model = lm.train(con.execute(LABELLED.format(n=int(training_sample))).pl(), con.execute(SPINE_ROWS).pl(),
                     n_people, model_path)
    # 2. wrong valid numbers in general practice
    key_map = _merge_wrong_numbers(con, model, merge_threshold)
    con.register("lk_key_map", key_map.to_arrow())
    # each linked number's person (its own, or the number it was merged under)
    con.execute("""CREATE OR REPLACE TEMP TABLE number_keys AS
                   SELECT n.nhs_number, coalesce(m.to_key, n.person_key) AS person_key
                   FROM (SELECT DISTINCT nhs_number, person_key FROM det_identities) n
                   LEFT JOIN lk_key_map m ON m.from_key = n.person_key""")
    # 3. units of the remaining records; 4. units to known people; 5. the rest among themselves
    con.execute(CANDIDATES)
    con.register("lk_units", _units(con).to_arrow())
    best = _units_to_people(con, model, threshold)
    con.register("lk_best", best.to_arrow())
    con.execute("CREATE OR REPLACE TEMP TABLE lk_leftover AS SELECT DISTINCT unit FROM lk_units ANTI JOIN lk_best "
                "USING (unit)")
    con.register("lk_clusters", _cluster_leftovers(con, model, dedupe_threshold).to_arrow())
    # the links of the records not linked by their number (those are `det` with `number_keys`)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE links AS
        SELECT u.rec_key, b.person_key, b.method, b.match_probability
        FROM lk_units u JOIN lk_best b USING (unit)
        UNION ALL
        SELECT u.rec_key, 'rec:' || f.source || ':' || f.file_id || ':' || {row_of("cl.cluster")},
               CASE WHEN count(*) OVER (PARTITION BY cl.cluster) > 1 THEN 'clustered' ELSE 'unlinked' END, NULL
        FROM lk_units u JOIN lk_clusters cl USING (unit) {file_of("cl.cluster")}""")
    for name in ("lk_key_map", "lk_units", "lk_clusters", "lk_best"):
        con.unregister(name)
    by_method, by_source = _write(con, store)
    log.info("linked records: %s", by_method)
    return LinkSummary(by_method, by_source, threshold, model_path, dedupe_threshold, key_map.height)


def link_complete(con: Connection) -> bool:
    """Whether the last linking finished: the links and the identity store's person keys come from the
    same run (a linking interrupted between its two commits leaves them from different runs)."""
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'link' AND table_name = 'run' "
                       "AND database_name = current_database()").fetchone()[0]:
        return False
    linked = con.execute("SELECT run_id FROM link.run").fetchone()
    return linked is not None and linked[0] == identity_store.link_run_id(con)


def _write(con: Connection, store: Store) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Person ids from the keys; link.record_person and identity.person_key; temp tables dropped."""
    keys = [r[0] for r in con.execute("SELECT person_key FROM number_keys UNION SELECT person_key FROM links "
                                      "ORDER BY 1").fetchall()]
    ids = person_ids(store.key(), keys)
    mapping = pl.DataFrame({"person_key": keys, "person_id": ids})
    con.register("person_map", mapping.to_arrow())
    con.execute("CREATE SCHEMA IF NOT EXISTS link")
    # The links (analytic database) and the person keys (identity store) are committed separately:
    # DuckDB writes one attached database per transaction. Both carry the same run id, so a process
    # killed between the two commits leaves a mismatch that `link_complete` reports (and build refuses).
    run_id = uuid.uuid4().hex
    with transaction(con):
        con.execute("CREATE OR REPLACE TABLE link.run AS SELECT ? AS run_id, now() AS linked_at", [run_id])
        # person_id as a UUID (16 bytes) rather than 32 characters of text: the same 128 bits of HMAC
        con.execute("""CREATE OR REPLACE TEMP TABLE person_uuid AS
                       SELECT person_key, CAST(substr(person_id, 1, 8) || '-' || substr(person_id, 9, 4) || '-' ||
                              substr(person_id, 13, 4) || '-' || substr(person_id, 17, 4) || '-' ||
                              substr(person_id, 21, 12) AS UUID) AS person_id FROM person_map""")
        # records linked by number join their number's person id (a small table) rather than carry a key
        con.execute("""CREATE OR REPLACE TEMP TABLE number_ids AS
                       SELECT k.nhs_number, p.person_id FROM number_keys k JOIN person_uuid p USING (person_key)""")
        con.execute(f"""CREATE OR REPLACE TABLE link.record_person AS
                        SELECT f.source, f.file_id, {row_of("l.rec_key")} AS row_number, l.person_id, l.method,
                               CAST(l.match_probability AS FLOAT) AS match_probability
                        FROM (SELECT d.rec_key, n.person_id, 'nhs_number' AS method, 1.0 AS match_probability
                              FROM det d JOIN number_ids n USING (nhs_number)
                              UNION ALL
                              SELECT l.rec_key, p.person_id, l.method, l.match_probability
                              FROM links l JOIN person_uuid p USING (person_key)) l
                        {file_of("l.rec_key")}""")
    identity_store.replace_person_keys(con, "person_uuid", run_id)
    con.unregister("person_map")
    by_method = dict(con.execute("SELECT method, count(*) FROM link.record_person GROUP BY 1 ORDER BY 1").fetchall())
    by_source: dict[str, dict[str, int]] = {}
    for source, method, n in con.execute(
            "SELECT source, method, count(*) FROM link.record_person GROUP BY 1, 2 ORDER BY 1, 2").fetchall():
        by_source.setdefault(source, {})[method] = n
    for temp in ("active_records", "spine", "det", "det_identities", "number_keys", "number_ids", "key_sources",
                 "links", "candidates", "person_uuid", "lk_leftover", "lk_files"):
        con.execute(f"DROP TABLE IF EXISTS {temp}")  # they hold identifiers: none outlives the link
    return by_method, by_source
