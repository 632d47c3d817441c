"""`openphm link-files LEFT RIGHT`: link any two files of people with the same engine.

For example a voluntary-sector spreadsheet against a practice's patient list. Columns are
compared by their meaning, guessed from their names: given and family names (Jaro-Winkler
levels with term-frequency adjustment), a full name (split into given and family), date of
birth (exact, one character, transposed day and month), postcode (unit, sector, district), sex
and NHS number (exact). m and u are estimated by expectation maximisation and random sampling.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import polars as pl

from openphm.engine.duckdb_store import duckdb_config, lit

NAME_ALIASES = {
    "given_name": ("given_name", "first_name", "forename", "firstname"),
    "family_name": ("family_name", "surname", "last_name", "lastname"),
    "full_name": ("full_name", "name", "client_name", "patient_name"),
    "date_of_birth": ("date_of_birth", "dob", "birth_date"),
    "postcode": ("postcode", "post_code", "postal_code"),
    "sex": ("sex", "gender"),
    "nhs_number": ("nhs_number", "nhs_no", "nhsnumber"),
}


class LinkFilesError(Exception):
    """A problem with the files given, said in one line."""


def _read(path: Path, columns: list[str] | None) -> pl.DataFrame:
    if not path.is_file():
        raise LinkFilesError(f"{path} is not a file")
    con = duckdb.connect(config=duckdb_config(0.25, in_memory=True))
    fn = "read_parquet" if path.suffix.lower() == ".parquet" else "read_csv"
    opts = "" if fn == "read_parquet" else ", all_varchar = true, header = true"
    try:
        frame = con.execute(f"SELECT * FROM {fn}({lit(str(path))}{opts})").pl()
    except duckdb.Error as exc:
        raise LinkFilesError(f"{path}: cannot be read ({str(exc).splitlines()[0][:150]})") from None
    lower = {c.lower(): c for c in frame.columns}
    out = {"row_id": pl.Series(range(1, frame.height + 1))}
    for std, aliases in NAME_ALIASES.items():
        if columns and std not in columns and not any(a in columns for a in aliases):
            continue
        found = next((lower[a] for a in aliases if a in lower), None)
        if found is not None:
            out[std] = frame[found].cast(pl.Utf8)
    result = pl.DataFrame(out)
    if "full_name" in result.columns and "given_name" not in result.columns:
        parts = result["full_name"].str.strip_chars().str.split(" ")
        result = result.with_columns(parts.list.first().alias("given_name"), parts.list.last().alias("family_name"))
    return result.drop("full_name", strict=False)


def _standardise(frame: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    for c in frame.columns:
        if c in ("given_name", "family_name"):
            exprs.append(pl.col(c).str.strip_chars().str.to_uppercase())
        elif c == "postcode":
            squeezed = pl.col(c).str.replace_all(r"\s", "").str.to_uppercase()
            exprs.append(pl.when(squeezed.str.len_chars() >= 5)
                         .then(squeezed.str.slice(0, squeezed.str.len_chars() - 3) + " " + squeezed.str.slice(-3))
                         .alias(c))
        elif c == "date_of_birth":
            exprs.append(pl.coalesce(pl.col(c).str.to_date("%Y-%m-%d", strict=False),
                                     pl.col(c).str.to_date("%d/%m/%Y", strict=False)).alias(c))
        elif c == "sex":
            s = pl.col(c).str.to_uppercase().str.slice(0, 1)
            exprs.append(pl.when(s.is_in(["1", "M"])).then(pl.lit("M")).when(s.is_in(["2", "F"]))
                         .then(pl.lit("F")).otherwise(None).alias(c))
        elif c == "nhs_number":
            exprs.append(pl.col(c).str.replace_all(r"\s", ""))
        else:
            exprs.append(pl.col(c))
    return frame.select(exprs)


def link_files(left: Path, right: Path, out: Path, columns: list[str] | None = None,
               threshold: float = 0.9) -> dict:
    """Link two files of people; writes pairs (row ids, match probability, cluster id) to `out`."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    a, b = _standardise(_read(left, columns)), _standardise(_read(right, columns))
    shared = [c for c in a.columns if c in b.columns and c != "row_id"]
    if len(shared) < 2:
        raise LinkFilesError(f"{left.name} and {right.name} share fewer than two identifying columns "
                             f"(found {', '.join(shared) or 'none'}); name them e.g. given_name, family_name, "
                             "date_of_birth, postcode, sex, nhs_number")
    a, b = a.select("row_id", *shared), b.select("row_id", *shared)
    comparisons, blocks = [], []
    for c in shared:
        if c in ("given_name", "family_name"):
            comparisons.append(cl.NameComparison(c).configure(term_frequency_adjustments=True))
        elif c == "date_of_birth":
            comparisons.append(cl.DateOfBirthComparison(c, input_is_string=False))
            blocks.append(block_on(c))
        elif c == "postcode":
            comparisons.append(cl.PostcodeComparison(c))
            blocks.append(block_on(c))
        else:
            comparisons.append(cl.ExactMatch(c))
    if {"given_name", "family_name"} <= set(shared):
        blocks.append(block_on("family_name", "given_name"))
    if "nhs_number" in shared:
        blocks.append(block_on("nhs_number"))
    settings = SettingsCreator(link_type="link_only", unique_id_column_name="row_id", comparisons=comparisons,
                               blocking_rules_to_generate_predictions=blocks or [block_on(shared[0])])
    mem = duckdb.connect(config=duckdb_config(0.25, in_memory=True))
    db_api = DuckDBAPI(mem)
    linker = Linker([db_api.register(a, table_name="left_file"), db_api.register(b, table_name="right_file")],
                    settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        blocks[:1] or [block_on(shared[0])], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    for rule in blocks[:2]:
        # EM can fail on small files (a level never seen); the other session or defaults then serve.
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except ValueError:
            logging.getLogger("openphm.identity").warning("one training session did not converge")
    predictions = linker.inference.predict(threshold_match_probability=threshold)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold)
    pairs = mem.execute(f"SELECT source_dataset_l, row_id_l, row_id_r, match_probability FROM "
                        f"{predictions.physical_name}").pl()
    cluster_of = mem.execute(f"SELECT source_dataset, row_id, cluster_id FROM {clusters.physical_name}").pl()
    left_is_l = pairs["source_dataset_l"] == "left_file"
    result = pairs.select(
        pl.when(left_is_l).then(pl.col("row_id_l")).otherwise(pl.col("row_id_r")).alias("left_row"),
        pl.when(left_is_l).then(pl.col("row_id_r")).otherwise(pl.col("row_id_l")).alias("right_row"),
        pl.col("match_probability").round(6))
    left_clusters = cluster_of.filter(pl.col("source_dataset") == "left_file").select(
        pl.col("row_id").alias("left_row"), "cluster_id")
    result = result.join(left_clusters, on="left_row", how="left").sort("left_row", "right_row")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.write_csv(out)

    return {"pairs": result.height, "left_rows": a.height, "right_rows": b.height, "columns": shared}
