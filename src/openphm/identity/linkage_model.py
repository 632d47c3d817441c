"""The probabilistic part of record linkage: a Splink model (DuckDB backend) trained from the
deterministic links, then used three ways: to link records' identities to known people, to
compare known people with each other, and to find records of the same person among those that
reach no one; and Splink's connected components to cluster.

Everything runs in a separate in-memory DuckDB with one thread, on inputs sorted by stable keys,
so that the same records give the same model and the same predictions whatever the number of
threads of the analytic database (Splink samples pairs for u by hashing unique ids, not at
random). No identifier is written to the analytic database.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from openphm.engine import dialect
from openphm.engine.connection import Connection, memory_connection, splink_api
from openphm.engine.files import write_private

IDENTITY = ["given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number"]
PAIRS_SCHEMA = {"uid_l": pl.Int64, "uid_r": pl.Int64, "match_probability": pl.Float64}


def splink_connection() -> Connection:
    """An in-memory DuckDB for Splink, single-threaded so that its sums and samples are reproducible."""
    return memory_connection(threads=1, share=0.25)


def _input(frame: pl.DataFrame | Any, splink_con: Connection) -> Any:
    """A frame as Splink's backend takes it: as it is for DuckDB, a Spark DataFrame for Spark."""
    return splink_con.dataframe(frame) if dialect(splink_con) == "spark" else frame


@contextlib.contextmanager
def _splink_backend(engine: Connection | None) -> Iterator[tuple[Any, Connection]]:
    """(Splink's database API, a connection that reads its tables) for predicting and clustering: the
    engine's own (Splink's Spark backend on a Spark connection), else a private in-memory DuckDB.
    Training always uses the in-memory DuckDB (`train`), so one model comes out whatever the engine."""
    if engine is not None and dialect(engine) == "spark":
        # one Spark session serves every call: what Splink registers (its inputs by name, its working
        # tables) is dropped afterwards, so that the next call can register its own under the same names
        before = {t.name for t in engine.spark.catalog.listTables() if t.isTemporary}
        try:
            yield splink_api(engine), engine
        finally:
            for t in engine.spark.catalog.listTables():
                if t.isTemporary and t.name not in before:
                    engine.spark.catalog.dropTempView(t.name)
        return
    # every thread and more memory: a pair's probability is computed from that pair alone, and the
    # pairs, clusters and their order come out the same whatever the number of threads (training,
    # whose random sampling depends on it, keeps to one: `splink_connection`)
    mem = memory_connection(share=0.4)
    try:
        yield splink_api(mem), mem
    finally:
        mem.close()


def settings(prior: float, link_type: str = "link_only", sql_dialect: str = "duckdb") -> dict:
    """Splink settings: names (term-frequency adjusted), date of birth, sex, postcode, NHS number."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type=link_type,
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
    ).get_settings(sql_dialect).as_dict()


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


def train(labelled: pl.DataFrame, reference: pl.DataFrame, n_people: int, model_path: Path) -> dict:
    """m probabilities from labelled pairs (records whose NHS number settled who they are, with their
    own errors, against the registered population, `label` = NHS number), u from random pairs;
    saved to `model_path`. Both frames need a unique integer `uid`, the IDENTITY columns and `label`."""
    from splink import Linker

    base = settings(1.0 / max(n_people, 1))
    if labelled.height > 100 and reference.height > 0:
        mem = splink_connection()
        db_api = splink_api(mem)
        trainer = Linker([db_api.register(labelled.sort("uid"), table_name="train_left"),
                          db_api.register(reference.sort("uid"), table_name="train_right")],
                         base, log_level=logging.WARNING)
        trainer.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=7)
        trainer.training.estimate_m_from_label_column("label")
        model = trainer.misc.save_model_to_json()
        mem.close()
    else:
        model = base
    model = fill_untrained(model, labelled.height)
    model["probability_two_random_records_match"] = 1.0 / max(n_people, 1)
    write_private(model_path, json.dumps(model, indent=1, default=str))
    return model


def _in_dialect(model: dict, sql_dialect: str) -> dict:
    """The trained model (whose SQL is DuckDB's) written for another of Splink's backends: the same
    comparisons made for that dialect, with the trained m and u of each level carried over."""
    if sql_dialect == model.get("sql_dialect", "duckdb"):
        return model
    out = settings(model["probability_two_random_records_match"], model["link_type"], sql_dialect)
    for trained, target in zip(model["comparisons"], out["comparisons"], strict=True):
        for level, other in zip(trained["comparison_levels"], target["comparison_levels"], strict=True):
            for key in ("m_probability", "u_probability", "tf_adjustment_column", "tf_adjustment_weight"):
                if key in level:
                    other[key] = level[key]
    return out


def _model_for(model: dict, link_type: str, without_nhs_number: bool = False, sql_dialect: str = "duckdb") -> dict:
    out = json.loads(json.dumps(_in_dialect(model, sql_dialect), default=str))
    out["link_type"] = link_type
    if without_nhs_number:
        out["comparisons"] = [c for c in out["comparisons"] if c["output_column_name"] != "nhs_number"]
        out["blocking_rules_to_generate_predictions"] = [
            r for r in out["blocking_rules_to_generate_predictions"] if "nhs_number" not in json.dumps(r)]
    return out


def link_pairs(model: dict, left: pl.DataFrame, right: pl.DataFrame, threshold: float,
               without_nhs_number: bool = False, engine: Connection | None = None) -> pl.DataFrame:
    """Pairs (uid_l from `left`, uid_r from `right`, match_probability) at or above `threshold`, predicted
    on `engine` when it is Spark (else in a private in-memory DuckDB)."""
    from splink import Linker

    if left.height == 0 or right.height == 0:
        return pl.DataFrame(schema=PAIRS_SCHEMA)
    cols = ["uid", *IDENTITY]
    with _splink_backend(engine) as (db_api, mem):
        linker = Linker([db_api.register(_input(left.select(cols).sort("uid"), mem), table_name="lhs"),
                         db_api.register(_input(right.select(cols).sort("uid"), mem), table_name="rhs")],
                        _model_for(model, "link_only", without_nhs_number, dialect(mem)), log_level=logging.WARNING)
        predicted = linker.inference.predict(threshold_match_probability=threshold)
        pairs = mem.execute(f"""
        SELECT CASE WHEN source_dataset_l = 'lhs' THEN uid_l ELSE uid_r END AS uid_l,
               CASE WHEN source_dataset_l = 'lhs' THEN uid_r ELSE uid_l END AS uid_r,
               match_probability
        FROM {predicted.physical_name} WHERE match_probability >= {float(threshold)!r}
        ORDER BY 1, 2""").pl()
    return pairs.cast(PAIRS_SCHEMA)


def dedupe_pairs(model: dict, rows: pl.DataFrame, threshold: float, engine: Connection | None = None) -> pl.DataFrame:
    """Pairs of rows of one table (uid_l < uid_r, match_probability) at or above `threshold`."""
    from splink import Linker

    if rows.height < 2:
        return pl.DataFrame(schema=PAIRS_SCHEMA)
    with _splink_backend(engine) as (db_api, mem):
        linker = Linker(db_api.register(_input(rows.select(["uid", *IDENTITY]).sort("uid"), mem), table_name="rows"),
                        _model_for(model, "dedupe_only", sql_dialect=dialect(mem)), log_level=logging.WARNING)
        predicted = linker.inference.predict(threshold_match_probability=threshold)
        pairs = mem.execute(f"""
            SELECT least(uid_l, uid_r) AS uid_l, greatest(uid_l, uid_r) AS uid_r, match_probability
            FROM {predicted.physical_name} WHERE match_probability >= {float(threshold)!r}
            ORDER BY 1, 2""").pl()
    return pairs.cast(PAIRS_SCHEMA)


def connected_components(nodes: pl.Series, edges: pl.DataFrame, threshold: float = 0.0,
                         engine: Connection | None = None) -> pl.DataFrame:
    """Splink's connected components: (node, cluster) with cluster = the smallest node of its
    component, over edges (uid_l, uid_r, match_probability) at or above `threshold`."""
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    nodes = nodes.unique().sort()
    if edges.height == 0 or nodes.len() == 0:
        return pl.DataFrame({"node": nodes, "cluster": nodes}, schema={"node": pl.Int64, "cluster": pl.Int64})
    edges = edges.select(pl.col("uid_l").alias("node_l"), pl.col("uid_r").alias("node_r"),
                         "match_probability").sort(["node_l", "node_r"])
    with _splink_backend(engine) as (db_api, mem):
        cc = cluster_pairwise_predictions_at_threshold(
            _input(pl.DataFrame({"node": nodes}).to_arrow(), mem), _input(edges.to_arrow(), mem), db_api, "node",
            threshold_match_probability=threshold)
        out = mem.execute(f"SELECT node, cluster_id AS cluster FROM {cc.physical_name} ORDER BY 1").pl()
    return out.cast({"node": pl.Int64, "cluster": pl.Int64})
