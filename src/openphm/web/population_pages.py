"""Population health pages: segments and transitions, the risk model's card, linkage quality and data
quality. Every count goes through `openphm.governance.disclosure` (these pages are for analysts and
boards as much as for clinicians); rates are recomputed from the protected counts.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from openphm.governance.disclosure import protect_count, protect_frame
from openphm.measures.definitions import load_measures
from openphm.reports.charts import lines_svg, pyramid_svg
from openphm.web import data
from openphm.web.app import render_aggregate
from openphm.web.security import check_csrf, require
from openphm.web.variation_pages import published

router = APIRouter(dependencies=[Depends(check_csrf)])
ACTIVITY = {"emergency_admissions_per_1000": "Emergency admissions",
            "emergency_bed_days_per_1000": "Emergency bed days",
            "ae_attendances_per_1000": "A&E attendances",
            "outpatient_attendances_per_1000": "Outpatient attendances",
            "gp_appointments_per_1000": "GP appointments"}
TRENDS = ("emergency_admissions_dsr", "ae_attendances", "elective_admissions", "first_outpatient_attendances",
          "delayed_discharge_bed_days")
SUMMARY = ("auroc", "auroc_ci", "auprc", "calibration_slope", "observed_to_expected")  # not counts
TOP_BANDS = (("0_5pct", "0.5%", 0.005), ("1pct", "1%", 0.01), ("5pct", "5%", 0.05))


def _db(request: Request) -> data.Database:
    return request.app.state.db


def segment_labels(db: data.Database) -> dict[str, str]:
    """Each segment's label, in the definition's order."""
    got = db.frame("SELECT segment, label FROM segments.definition ORDER BY position")
    return dict(got.iter_rows()) if got.height else {}


@router.get("/overview", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    """The population pyramid, segments over time, prevalence, activity trends and data freshness."""
    require(request)
    return render_aggregate(request, "overview.html", lambda: overview_context(_db(request)))


def overview_context(db: data.Database) -> dict:
    """What the overview shows, computed once."""
    return db.memo(("overview",), lambda: _overview(db))


def _overview(db: data.Database) -> dict:
    on = data.population_date(db)
    pyramid = data.population_pyramid(db, on) if on else pl.DataFrame()
    context: dict = {"on": on, "build": data.latest_build(db), "pyramid": "", "pyramid_rows": [],
                     "segments": "", "prevalence": [], "trends": [], "freshness": []}
    if pyramid.height:
        pyramid = protect_frame(pyramid, ["people"])
        bands = sorted(set(pyramid["age_band"].to_list()), key=lambda b: int(b.split("-")[0].rstrip("+")))
        cells = {(r["age_band"], r["sex"]): r["people"] for r in pyramid.rows(named=True)}
        context["pyramid"] = pyramid_svg(bands, [cells.get((b, "F"), 0) for b in bands],
                                         [cells.get((b, "M"), 0) for b in bands], f"Registered people on {on}")
        context["pyramid_rows"] = sorted(pyramid.rows(named=True), key=lambda r: (bands.index(r["age_band"]),
                                                                                  r["sex"]))
    labels = segment_labels(db)
    sizes = segment_shares(db)
    if sizes.height:
        context["segments"] = _segment_chart(sizes, labels)
    measures = load_measures()
    for mid, m in measures.items():
        if mid.startswith("prevalence_"):
            rows = published(db, m, ("ics",))
            if rows.height:
                context["prevalence"].append({"m": m, "row": rows.sort("period_start").row(-1, named=True)})
    for mid in TRENDS:
        rows = published(db, measures[mid], ("ics",)) if mid in measures else pl.DataFrame()
        if rows.height >= 2:
            years = rows.sort("period_start").tail(2).rows(named=True)
            context["trends"].append({"m": measures[mid], "before": years[0], "after": years[1]})
    fresh = db.frame("SELECT source, max(period) AS period, max(loaded_at) AS loaded_at FROM ingest.manifest "
                     "WHERE status = 'active' GROUP BY 1 ORDER BY 1")
    context["freshness"] = fresh.rows(named=True) if fresh.height else []
    return context


def segment_shares(db: data.Database) -> pl.DataFrame:
    """People in each segment each month (protected) and their share of the month's shown total."""
    sizes = db.frame("SELECT month, segment, people FROM segments.size ORDER BY month, segment")
    if sizes.height == 0:
        return sizes
    sizes = protect_frame(sizes, ["people"], within=["month"])
    totals = sizes.group_by("month").agg(pl.col("people").sum().alias("total"))
    return sizes.join(totals, on="month").with_columns((pl.col("people") / pl.col("total")).alias("share")
                                                       ).sort("month", "segment")


def _segment_chart(sizes: pl.DataFrame, labels: dict[str, str]) -> str:
    months = sorted(set(sizes["month"].to_list()))
    shares = {(r["month"], r["segment"]): r["share"] for r in sizes.rows(named=True)}
    series = {labels.get(s, s): [None if shares.get((m, s)) is None else 100 * float(shares[(m, s)]) for m in months]
              for s in labels}
    return lines_svg([m.strftime("%b %Y") for m in months], series, "Share of registered people in each segment (%)",
                     "%")


@router.get("/population/segments", response_class=HTMLResponse)
def segments(request: Request) -> HTMLResponse:
    """The population by segment over time, the latest year's transitions and activity by segment."""
    require(request)
    return render_aggregate(request, "segments.html", lambda: segments_context(_db(request)))


def segments_context(db: data.Database) -> dict:
    """What the segments page shows, computed once."""
    return db.memo(("segments",), lambda: _segments(db))


def _segments(db: data.Database) -> dict:
    labels = segment_labels(db)
    sizes = segment_shares(db)
    context: dict = {"labels": labels, "latest": [], "chart": "", "transitions": None, "activity": []}
    if sizes.height:
        months = sorted(set(sizes["month"].to_list()))
        context["chart"] = _segment_chart(sizes, labels)
        context["month"] = months[-1]
        latest = sizes.filter(pl.col("month") == months[-1])
        context["latest"] = [{**r, "segment": labels.get(r["segment"], r["segment"])}
                             for r in latest.rows(named=True)]
    transitions = db.frame("SELECT from_year, to_year, from_segment, to_segment, people FROM segments.transition "
                           "WHERE from_year = (SELECT max(from_year) FROM segments.transition)")
    if transitions.height:
        transitions = protect_frame(transitions, ["people"], within=["from_segment"])
        targets = [*labels, *sorted(set(transitions["to_segment"]) - set(labels))]
        cells = {(r["from_segment"], r["to_segment"]): r["people"] for r in transitions.rows(named=True)}
        context["transitions"] = {"from_year": transitions["from_year"][0], "to_year": transitions["to_year"][0],
                                  "targets": targets, "cells": cells,
                                  "sources": [s for s in labels if any(k[0] == s for k in cells)]}
    context["activity"] = _activity(db, labels)
    return context


def _activity(db: data.Database, labels: dict[str, str]) -> list[dict]:
    """The latest year's activity per 1,000 people by segment, from protected event and people counts."""
    got = db.frame("SELECT * FROM segments.activity WHERE year_start = (SELECT max(year_start) "
                   "FROM segments.activity)")
    if got.height == 0:
        return []
    rates = [c for c in ACTIVITY if c in got.columns]
    events = got.with_columns((pl.col(c) * pl.col("people") / 1000).round(0).alias(c) for c in rates)
    shown = protect_frame(events, ["people", *rates], {c: (c, "people", 1000.0) for c in rates})
    return [{"segment": labels.get(r["segment"], r["segment"]), "people": r["people"],
             "rates": [(ACTIVITY[c], r[c]) for c in rates]} for r in shown.rows(named=True)]


def _reports(request: Request) -> Path:
    return request.app.state.reports


def _protected_ratio(hits: float, of: float) -> float | None:
    """hits / of from the protected counts (hits and of are counts of people)."""
    h, n = protect_count(round(hits)), protect_count(round(of))
    return None if h is None or not n else h / n


def risk_card(report: dict) -> dict:
    """The risk model card as shown: discrimination and calibration as reported; every figure that is a
    count, or a share of a small group, from protected counts."""
    best = report["best_model"]
    model = report["models"][best]
    people, events = model["people"], model["events"]
    bands = []
    for key, label, fraction in TOP_BANDS:
        flagged = round(fraction * people)
        hits = model[f"ppv_top_{key}"] * flagged
        bands.append({"label": label, "flagged": protect_count(flagged), "ppv": _protected_ratio(hits, flagged),
                      "sensitivity": _protected_ratio(hits, events)})
    tenths = [{"predicted": t["predicted"], "people": protect_count(t["people"]),
               "observed": _protected_ratio(t["observed"] * t["people"], t["people"])}
              for t in model.get("calibration_by_tenth", [])]
    fairness = []
    for g in model.get("fairness", []):
        shown = protect_count(g["events"]) is not None and protect_count(g["people"]) is not None
        fairness.append({"by": g["by"], "group": g["group"], "people": protect_count(g["people"]),
                         "events": protect_count(g["events"]),
                         "auroc": g.get("auroc") if shown else None,
                         "observed_to_expected": g.get("observed_to_expected") if shown else None})
    return {"best": best, "train_date": report["train_date"], "validation_date": report["validation_date"],
            "people": protect_count(people), "events": protect_count(events),
            "ceiling": report.get("ceiling_auroc"), "features": len(report["features"]), "bands": bands,
            "tenths": tenths, "fairness": fairness,
            "models": {k: {x: v[x] for x in SUMMARY if x in v} for k, v in report["models"].items()
                       if isinstance(v, dict) and "auroc" in v}}


@router.get("/population/risk", response_class=HTMLResponse)
def risk(request: Request) -> HTMLResponse:
    """The emergency admission risk model's card and validation performance."""
    require(request)

    def context() -> dict:
        report = data.read_report(_reports(request) / "risk" / "report.json")
        card = risk_card(report) if report and "best_model" in report else None
        return {"card": card, "isnan": lambda v: v is None or (isinstance(v, float) and math.isnan(v))}

    return render_aggregate(request, "risk.html", context)


@router.get("/population/linkage", response_class=HTMLResponse)
def linkage(request: Request) -> HTMLResponse:
    """How each source's records were linked to people: by NHS number, probabilistically, unlinked."""
    require(request)
    return render_aggregate(request, "linkage.html", lambda: linkage_context(_db(request)))


def linkage_context(db: data.Database) -> dict:
    """What the linkage page shows, computed once."""
    return db.memo(("linkage",), lambda: _linkage(db))


def _linkage(db: data.Database) -> dict:
    got = db.frame("SELECT source, method, count(*) AS records FROM link.record_person GROUP BY ALL")
    rows = []
    if got.height:
        wide = got.pivot(on="method", index="source", values="records").fill_null(0).sort("source")
        methods = [c for c in ("nhs_number", "native_key", "probabilistic", "clustered", "unlinked")
                   if c in wide.columns]
        wide = wide.with_columns(pl.sum_horizontal(methods).alias("records"))
        shown = protect_frame(wide, ["records", *methods])
        for r in shown.rows(named=True):
            linked = None if r["records"] in (None, 0) or r.get("unlinked", 0) is None else \
                100 * (r["records"] - (r.get("unlinked") or 0)) / r["records"]
            rows.append({**r, "linked_pct": linked})
        return {"rows": rows, "methods": methods}
    return {"rows": [], "methods": []}


@router.get("/population/data-quality", response_class=HTMLResponse)
def data_quality(request: Request) -> HTMLResponse:
    """Every file received: rows read, loaded and quarantined, and the reasons for quarantine."""
    require(request)
    return render_aggregate(request, "data_quality.html", lambda: data_quality_context(_db(request)))


def data_quality_context(db: data.Database) -> dict:
    """What the data-quality page shows, computed once."""
    return db.memo(("data_quality",), lambda: _data_quality(db))


def _data_quality(db: data.Database) -> dict:
    files = db.frame("SELECT source, period, file_name, status, loaded_at, rows_read, rows_loaded, rows_quarantined "
                     "FROM ingest.manifest ORDER BY source, period, loaded_at")
    reasons = db.frame("SELECT m.source, q.reason, q.reason_column, count(*) AS rows FROM ingest.quarantine AS q "
                       "JOIN ingest.manifest AS m USING (file_id) GROUP BY ALL ORDER BY 1, 4 DESC")
    if files.height:
        files = protect_frame(files, ["rows_read", "rows_loaded", "rows_quarantined"])
    if reasons.height:
        reasons = protect_frame(reasons, ["rows"], within=["source"])
    return {"files": files.rows(named=True) if files.height else [],
            "reasons": reasons.rows(named=True) if reasons.height else [], "build": data.latest_build(db)}
