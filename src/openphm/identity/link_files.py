"""`openphm link-files LEFT RIGHT`: link any two files of people with the same engine.

For example a voluntary-sector spreadsheet against a practice's patient list, or a public
benchmark such as FEBRL. Columns are compared by their meaning, guessed from their names (see
`file_columns.FIELDS`) or named with `columns`: given and family names (Jaro-Winkler levels with
term-frequency adjustment; a full name is split), date of birth in any common format (exact, one
character, within a month, a year, ten years), postcode (UK: unit, sector, district; otherwise
exact or one character), street number, address lines and town (Jaro-Winkler), state and sex
(exact), NHS number (exact) and other identifiers such as a social security number (one or two
characters). m and u are estimated by expectation maximisation and random sampling. Each file's
own id column (rec_id, id, record_id, pandas' index, or the one named) is carried into the output.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import polars as pl

from openphm.engine.connection import memory_connection, splink_api
from openphm.engine.files import open_private
from openphm.identity.file_columns import (
    Field,
    LinkFilesError,
    add_split_names,
    choose_fields,
    find_id_column,
    looks_uk_postcode,
    read_table,
    standardise,
)

__all__ = ["LinkFilesError", "link_files"]

LOG = logging.getLogger("openphm.identity")
INDEX_NAMES = ("column0", "Unnamed: 0", "__index_level_0__")
# Expectation maximisation is blocked on these kinds first (each session trains the other columns).
EM_ORDER = ("date", "name", "postcode", "identifier", "nhs")


def comparison(field: Field, uk_postcodes: bool, crossed: bool = False) -> Any:
    """The Splink comparison for one field, by its kind. `crossed`: given and family name are
    both compared, so a name found in the other column (given and family swapped) is a level."""
    import splink.comparison_library as cl

    key, kind = field.key, field.kind
    if kind == "name":
        return _name_comparison(key, crossed=crossed)
    if kind == "date":
        return cl.DateOfBirthComparison(key, input_is_string=True, datetime_format="%Y-%m-%d",
                                        invalid_dates_as_null=False)
    if kind == "postcode":
        return cl.PostcodeComparison(key) if uk_postcodes else cl.DamerauLevenshteinAtThresholds(key, [1])
    if kind == "code":
        return cl.DamerauLevenshteinAtThresholds(key, [1])
    if kind == "identifier":
        return cl.DamerauLevenshteinAtThresholds(key, [1, 2])
    if kind in ("text", "place"):
        jw = cl.JaroWinklerAtThresholds(key, [0.9, 0.7])
        return jw.configure(term_frequency_adjustments=True) if kind == "place" else jw
    return cl.ExactMatch(key)  # sex, state, NHS number


def _name_comparison(key: str, crossed: bool) -> Any:
    """Splink's NameComparison (exact with term frequencies, Jaro-Winkler 0.92, 0.88, 0.7), with a
    level for a given name written as the family name or the other way round."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    levels = [cll.NullLevel(key), cll.ExactMatchLevel(key).configure(tf_adjustment_column=key)]
    if crossed:
        levels.append(cll.CustomLevel('("given_name_l" = "family_name_r" OR "family_name_l" = "given_name_r")',
                                      label_for_charts="given and family name crossed"))
    levels += [cll.JaroWinklerLevel(key, t) for t in (0.92, 0.88, 0.7)]
    return cl.CustomComparison([*levels, cll.ElseLevel()], output_column_name=key)


def blocking(fields: list[Field], uk_postcodes: bool) -> list[tuple[str, tuple[str, ...]]]:
    """Blocking rules as (kind, columns): identifiers, dates, family and given name, postcode, house."""
    by_kind: dict[str, list[str]] = {}
    for f in fields:
        by_kind.setdefault(f.kind, []).append(f.key)
    rules: list[tuple[str, tuple[str, ...]]] = []
    for kind in ("nhs", "identifier", "date"):
        rules += [(kind, (key,)) for key in by_kind.get(kind, [])]
    names = {k for k in by_kind.get("name", []) if k in ("given_name", "family_name")}
    if names == {"given_name", "family_name"}:
        rules.append(("name", ("family_name", "given_name")))
    for key in by_kind.get("postcode", []):
        # Outside the UK a postcode is a large area: a first initial keeps the block small.
        extra = () if uk_postcodes or "given_name" not in names else ("substr(given_name, 1, 1)",)
        rules.append(("postcode", (key, *extra)))
    # A house: its number with the postcode, the street, or the family name.
    for number in by_kind.get("code", []):
        for other in (*by_kind.get("postcode", []), *[k for k in by_kind.get("text", []) if k == "address_1"],
                      *[k for k in names if k == "family_name"]):
            rules.append(("address", (number, other)))
    return rules or [(fields[0].kind, (fields[0].key,))]


def _deterministic(fields: list[Field]) -> list[tuple[str, ...]]:
    """Rules under which almost every pair is a match, for the prior probability of a match."""
    keys = {f.key: f.kind for f in fields}
    rules = [(k,) for k, kind in keys.items() if kind in ("nhs", "identifier")]
    if {"given_name", "family_name"} <= set(keys):
        rules += [("given_name", "family_name", k) for k, kind in keys.items() if kind in ("date", "postcode")]
    return rules


def _train(linker: Any, fields: list[Field], rules: list[tuple[str, tuple[str, ...]]]) -> None:
    """λ from near-certain rules, u by random sampling, m by expectation maximisation in sessions
    blocked on different columns until every column has been trained at least once."""
    from splink import block_on

    deterministic = _deterministic(fields) or [rules[0][1]]
    settings = linker._settings_obj
    prior = settings._probability_two_random_records_match
    try:
        linker.training.estimate_probability_two_random_records_match(
            [block_on(*cols) for cols in deterministic], recall=0.8)
    except Exception as exc:
        LOG.warning("prior probability of a match not estimated (%s)", str(exc).splitlines()[0][:120])
    if not 0 < settings._probability_two_random_records_match < 1:  # no pair (or every pair) agreed
        settings._probability_two_random_records_match = prior  # one match a record of the larger file
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    keys = {f.key for f in fields}
    trained: set[str] = set()
    sessions = 0
    ordered = sorted(rules, key=lambda r: EM_ORDER.index(r[0]) if r[0] in EM_ORDER else len(EM_ORDER))
    for _kind, cols in ordered:
        free = {k for k in keys if not any(re.search(rf"\b{k}\b", c) for c in cols)}
        if not free - trained and sessions:
            continue
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(*cols))
        except Exception as exc:  # too few pairs in a small file: the other sessions or defaults serve
            LOG.warning("training blocked on %s did not run (%s)", ", ".join(cols), str(exc).splitlines()[0][:120])
            continue
        trained |= free
        sessions += 1
        if trained >= keys and sessions >= 2:
            break


def _id_name(column: str) -> str:
    return "index" if column in INDEX_NAMES else column


def link_files(left: Path, right: Path, out: Path, columns: list[str] | None = None, threshold: float = 0.9,
               id_columns: tuple[str | None, str | None] = (None, None)) -> dict[str, Any]:
    """Link two files of people; writes pairs to `out` (CSV): row numbers, each file's own id (as
    `left_<id column>` and `right_<id column>`), match probability and cluster id.

    `columns` names the columns to compare (`name` or `left_name=right_name`; default every
    recognised one both files have); `id_columns` names each file's id column (default: found by
    name). Every problem with the files raises `LinkFilesError`, one line naming file and column."""
    raw_a, raw_b = add_split_names(read_table(left)), add_split_names(read_table(right))
    ids = (find_id_column(raw_a, left, id_columns[0]), find_id_column(raw_b, right, id_columns[1]))
    fields = choose_fields(raw_a, left, raw_b, right, columns, ids)
    if not columns and len(fields) < 2:
        found = ", ".join(f.key for f in fields) or "none"
        raise LinkFilesError(f"{left.name} and {right.name} share fewer than two identifying columns "
                             f"(found {found}); name them e.g. given_name, family_name, date_of_birth, "
                             "postcode, sex, nhs_number, or choose them with --columns")
    if not fields:
        raise LinkFilesError("no columns to compare (--columns names only the id columns)")
    uk = all(looks_uk_postcode(raw_a[f.left], raw_b[f.right]) for f in fields if f.kind == "postcode")
    a = standardise(raw_a, left, fields, "left", uk)
    b = standardise(raw_b, right, fields, "right", uk)
    empty = [f"{f.left} in {left.name}" for f in fields if a[f.key].null_count() == a.height] + \
            [f"{f.right} in {right.name}" for f in fields if b[f.key].null_count() == b.height]
    if empty:
        raise LinkFilesError(f"no values to compare in column {empty[0]}")
    try:
        result = _link(a, b, fields, uk, threshold)
    except LinkFilesError:
        raise
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise LinkFilesError(f"linking {left.name} with {right.name} failed: {detail}") from None
    names = []
    for side, raw, column in (("left", raw_a, ids[0]), ("right", raw_b, ids[1])):
        if column is not None:
            name = f"{side}_{_id_name(column)}"
            if name in ("left_row", "right_row", *names):
                name = f"{side}_id"
            ids_by_row = pl.DataFrame({f"{side}_row": range(1, raw.height + 1), name: raw[column]})
            result = result.join(ids_by_row, on=f"{side}_row", how="left")
            names.append(name)
    result = result.select("left_row", "right_row", *names, "match_probability", "cluster_id")
    try:  # the pairs carry each file's own ids: the owner's only, whatever the umask
        with open_private(out, "wb") as fh:
            result.write_csv(fh)
    except OSError as exc:
        raise LinkFilesError(f"cannot write {out}: {exc.strerror or exc}") from None
    return {"pairs": result.height, "left_rows": a.height, "right_rows": b.height,
            "columns": [f.key for f in fields], "id_columns": names}


def _link(a: pl.DataFrame, b: pl.DataFrame, fields: list[Field], uk: bool, threshold: float) -> pl.DataFrame:
    """Splink on DuckDB: pairs above `threshold` as left_row, right_row, match_probability, cluster_id."""
    from splink import Linker, SettingsCreator, block_on

    rules = blocking(fields, uk)
    crossed = {"given_name", "family_name"} <= {f.key for f in fields}
    settings = SettingsCreator(link_type="link_only", unique_id_column_name="row_id",
                               probability_two_random_records_match=1 / max(a.height, b.height, 2),
                               comparisons=[comparison(f, uk, crossed) for f in fields],
                               blocking_rules_to_generate_predictions=[block_on(*cols) for _, cols in rules])
    mem = memory_connection(share=0.25)
    try:
        db_api = splink_api(mem)
        linker = Linker([db_api.register(a, table_name="left_file"), db_api.register(b, table_name="right_file")],
                        settings, log_level=logging.WARNING)
        _train(linker, fields, rules)
        predictions = linker.inference.predict(threshold_match_probability=threshold)
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold)
        pairs = mem.execute(f"SELECT source_dataset_l, row_id_l, row_id_r, match_probability FROM "
                            f"{predictions.physical_name}").pl()
        cluster_of = mem.execute(f"SELECT source_dataset, row_id, cluster_id FROM {clusters.physical_name}").pl()
    finally:
        mem.close()
    left_is_l = pairs["source_dataset_l"] == "left_file"
    result = pairs.select(
        pl.when(left_is_l).then(pl.col("row_id_l")).otherwise(pl.col("row_id_r")).alias("left_row"),
        pl.when(left_is_l).then(pl.col("row_id_r")).otherwise(pl.col("row_id_l")).alias("right_row"),
        pl.col("match_probability").round(6))
    left_clusters = cluster_of.filter(pl.col("source_dataset") == "left_file").select(
        pl.col("row_id").alias("left_row"), "cluster_id")
    return result.join(left_clusters, on="left_row", how="left").sort("left_row", "right_row")
