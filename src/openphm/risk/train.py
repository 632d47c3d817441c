"""`openphm risk train`: both models trained, validated on the next year, reported, saved (as data, never
pickles: openphm.risk.model_files)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from openphm.calendar_dates import fy_label
from openphm.derive.features import feature_names
from openphm.engine.connection import Connection
from openphm.identity.report import true_person_map
from openphm.risk.metrics import auroc_with_ci, evaluate
from openphm.risk.model import examples, predict, train_models
from openphm.risk.model_files import check_folder, installation_key, load_models, save_models
from openphm.risk.report import fairness, write_report


def default_dates(con: Connection) -> tuple[dt.date, dt.date]:
    """Validation at the start of the last financial year with 12 months of outcomes in the record,
    training a year earlier."""
    last = con.execute("SELECT max(admission_date) FROM planning.inpatient_spell").fetchone()[0]
    if last is None:
        raise ValueError("the record has no hospital spells: run `openphm build` first")
    year = last.year if last.month >= 4 else last.year - 1
    if dt.date(year + 1, 3, 31) > last + dt.timedelta(days=31):
        year -= 1  # the last year is not complete
    return dt.date(year - 1, 4, 1), dt.date(year, 4, 1)


def ceiling_auroc(con: Connection, valid: pl.DataFrame, start: dt.date, true_records: pl.DataFrame,
                  true_risk: pl.DataFrame) -> float:
    """AUROC of the true risk for the validation outcome: the best any model could do. `true_risk` is
    each true person's risk of an emergency admission per financial year (`true_person`,
    `financial_year`, `risk_of_emergency_admission`); `true_records` the true person of each source
    record (`source`, `record_id`, `true_person`), which ties the true people to the record's."""
    risk = (true_risk.filter(pl.col("financial_year") == fy_label(start.year))
            .select(pl.col("true_person").cast(pl.Int64), pl.col("risk_of_emergency_admission")))
    joined = (valid.select("person_id", "outcome").join(true_person_map(con, true_records), on="person_id", how="left")
              .join(risk, on="true_person", how="left").drop_nulls("risk_of_emergency_admission"))
    return auroc_with_ci(joined["outcome"].to_numpy(), joined["risk_of_emergency_admission"].to_numpy())[0]


def train_and_report(con: Connection, out: Path, *, train_date: dt.date | None = None,
                     validation_date: dt.date | None = None, true_records: pl.DataFrame | None = None,
                     true_risk: pl.DataFrame | None = None) -> dict:
    """Train at one date, validate at a later one, write report.json/html and the models; returns the report.
    Given the truth (`true_records` and `true_risk`, as for `ceiling_auroc`), the report states the ceiling
    and each model's share of it."""
    if (true_records is None) != (true_risk is None):
        raise ValueError("the ceiling needs both the true records and the true yearly risk")
    default_train, default_valid = default_dates(con)
    train_date, validation_date = train_date or default_train, validation_date or default_valid
    if validation_date <= train_date:
        raise ValueError("the validation date must come after the training date (temporal validation)")
    check_folder(out)  # before the work, not after it
    key = installation_key(con)
    train, valid = examples(con, train_date), examples(con, validation_date)
    models = train_models(train)
    predictions = predict(models, valid)
    y = valid["outcome"].to_numpy()
    ceiling = (ceiling_auroc(con, valid, validation_date, true_records, true_risk)
               if true_records is not None and true_risk is not None else None)
    report = {"train_date": str(train_date), "validation_date": str(validation_date), "train_people": len(train),
              "train_events": int(train["outcome"].sum()), "validation_people": len(valid),
              "validation_events": int(y.sum()), "features": feature_names(), "ceiling_auroc": ceiling,
              "models": {}}
    for name, p in predictions.items():
        metrics = evaluate(y, p)
        metrics["ceiling_auroc"] = ceiling
        metrics["ceiling_ratio"] = metrics["auroc"] / ceiling if ceiling else None
        metrics["fairness"] = fairness(valid, p, metrics["auroc"])
        report["models"][name] = metrics
    best = max(report["models"], key=lambda k: report["models"][k]["auroc"])
    report["best_model"] = best
    save_models(models, out, best, str(train_date),
                list(train.select(feature_names()).mean().fill_null(0.0).row(0)), key)
    write_report(report, out)
    return report


__all__ = ["ceiling_auroc", "default_dates", "load_models", "train_and_report"]
