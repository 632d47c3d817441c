"""The model report: report.json and a self-contained report.html with the metrics, the ceiling,
calibration plots, a fairness section and a model card."""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

import numpy as np
import polars as pl

from openphm.domain import broad_age_band_values
from openphm.reports.html import page, table
from openphm.risk.metrics import auprc_with_ci, auroc_with_ci, calibration
from openphm.stats import count_limits

MATERIAL_OE = 1.2  # a group's observed/expected outside 1/1.2 to 1.2 is flagged
MATERIAL_AUROC = 0.05  # a group's AUROC this far below the whole population's is flagged
MIN_EVENTS = 20


def age_band(age: np.ndarray) -> np.ndarray:
    """Broad age bands for the fairness section (openphm.domain.BROAD_AGE_BANDS)."""
    return broad_age_band_values(age)


def fairness(frame: pl.DataFrame, p: np.ndarray, overall_auroc: float) -> list[dict]:
    """AUROC, AUPRC, calibration, and PPV and sensitivity at the whole population's top-5% threshold, by
    sex, age band, ethnicity and IMD quintile, flagging material departures."""
    groups = {"sex": frame["sex"].fill_null("U").to_numpy(), "age band": age_band(frame["age"].to_numpy()),
              "ethnicity": frame["ethnic_group"].to_numpy(),
              "IMD quintile": frame["imd_quintile"].cast(pl.Int64).cast(pl.Utf8).to_numpy()}
    y = frame["outcome"].to_numpy()
    flagged_top = p >= np.quantile(p, 0.95)  # the top 5% of the whole population
    rows = []
    for by, values in groups.items():
        for group in sorted(set(values)):
            mask = values == group
            events = int(y[mask].sum())
            row = {"by": by, "group": str(group), "people": int(mask.sum()), "events": events,
                   "auroc": math.nan, "auprc": math.nan, "observed_to_expected": math.nan,
                   "calibration_intercept": math.nan, "calibration_slope": math.nan,
                   "share_in_top_5pct": float(flagged_top[mask].mean()),
                   "ppv_top_5pct": float(y[mask & flagged_top].mean()) if (mask & flagged_top).any() else math.nan,
                   "sensitivity_top_5pct": float(y[mask & flagged_top].sum() / events) if events else math.nan}
            reasons = []
            if events >= MIN_EVENTS and events < mask.sum():
                auc, _, auc_upper = auroc_with_ci(y[mask], p[mask])
                cal = calibration(y[mask], p[mask])
                oe = cal["observed_to_expected"]
                expected = float(p[mask].sum())
                oe_lower, oe_upper = (limit / expected for limit in count_limits(events))
                row.update(auroc=auc, auprc=auprc_with_ci(y[mask], p[mask])[0], observed_to_expected=oe,
                           calibration_intercept=cal["calibration_intercept"],
                           calibration_slope=cal["calibration_slope"])
                # material: beyond the threshold, and the group's interval excludes the whole population's value
                if not 1 / MATERIAL_OE <= oe <= MATERIAL_OE and not oe_lower <= 1 <= oe_upper:
                    reasons.append(f"observed/expected {oe:.2f} ({oe_lower:.2f} to {oe_upper:.2f})")
                if auc < overall_auroc - MATERIAL_AUROC and auc_upper < overall_auroc:
                    reasons.append(f"AUROC {auc:.3f} (upper limit {auc_upper:.3f}) against {overall_auroc:.3f} "
                                   "overall")
            row["flag"] = "; ".join(reasons)
            rows.append(row)
    return rows


def _calibration_svg(cal: list[dict], title: str) -> str:
    size, pad = 320, 40
    top = max(max(c["predicted"] for c in cal), max(c["observed"] for c in cal)) * 1.05 or 1

    def xy(v: float) -> float:
        return pad + v / top * (size - 2 * pad)

    points = "".join(f"<circle cx='{xy(c['predicted']):.1f}' cy='{size - xy(c['observed']):.1f}' r='4' "
                     f"fill='#005eb8'><title>predicted {c['predicted']:.3f}, observed {c['observed']:.3f}</title>"
                     "</circle>" for c in cal)
    return (f"<figure><figcaption><strong>{escape(title)}</strong></figcaption>"
            f"<svg role='img' viewBox='0 0 {size} {size}' width='320' xmlns='http://www.w3.org/2000/svg'>"
            f"<line x1='{pad}' y1='{size - pad}' x2='{size - pad}' y2='{pad}' stroke='#768692' stroke-dasharray='4 3'/>"
            f"<line x1='{pad}' y1='{size - pad}' x2='{size - pad}' y2='{size - pad}' stroke='#212b32'/>"
            f"<line x1='{pad}' y1='{size - pad}' x2='{pad}' y2='{pad}' stroke='#212b32'/>{points}"
            f"<text x='{size / 2}' y='{size - 8}' font-size='11' text-anchor='middle'>predicted risk (tenths)</text>"
            f"<text x='12' y='{size / 2}' font-size='11' transform='rotate(-90 12 {size / 2})' "
            f"text-anchor='middle'>observed</text></svg></figure>")


MODEL_CARD = """<h2>Model card</h2>
<p><strong>Intended use.</strong> To help practices, PCNs and integrated neighbourhood teams find people at high
risk of an emergency admission in the next 12 months, for a clinician to review and, where it helps, offer
proactive care. Not for decisions about an individual without that review, not for rationing care, and not
for people outside the registered population it was trained on.</p>
<p><strong>Data.</strong> The linked person record: registrations, GP events, hospital admissions and
diagnoses, A&amp;E, outpatients, community and mental health contacts, with only information from before the
index date. Trained at one index date and validated on the following year (temporal validation).</p>
<p><strong>Limitations.</strong> No prescribing or test results; coded conditions only. Calibration drifts as
services change: recalibrate each year. The synthetic ICS's ceiling is the best any model could do on it; on
real data the ceiling is unknown. Groups with few admissions have wide uncertainty.</p>"""


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    """Write report.json and report.html into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(report, indent=1, default=float), encoding="utf-8")
    summary_rows, sections = [], []
    for name, m in report["models"].items():
        ceiling = m.get("ceiling_auroc")
        summary_rows.append([name, f"{m['auroc']:.3f} ({m['auroc_ci'][0]:.3f} to {m['auroc_ci'][1]:.3f})",
                             f"{m['auprc']:.3f} ({m['auprc_ci'][0]:.3f} to {m['auprc_ci'][1]:.3f})",
                             f"{m['calibration_intercept']:.3f}", f"{m['calibration_slope']:.3f}",
                             f"{m['ppv_top_1pct']:.3f}", f"{m['sensitivity_top_5pct']:.3f}",
                             f"{m['ceiling_ratio']:.1%} of {ceiling:.3f}" if ceiling else "no truth given"])
        flagged = [r for r in m["fairness"] if r["flag"]]
        fair_rows = [[r["by"], r["group"], r["people"], r["events"], f"{r['auroc']:.3f}", f"{r['auprc']:.3f}",
                      f"{r['observed_to_expected']:.2f}", f"{r['calibration_slope']:.2f}",
                      f"{r['share_in_top_5pct']:.1%}", f"{r['ppv_top_5pct']:.2f}", f"{r['sensitivity_top_5pct']:.2f}",
                      r["flag"] or "-"] for r in m["fairness"]]
        top_rows = [[label, f"{m[f'ppv_top_{key}']:.3f}", f"{m[f'sensitivity_top_{key}']:.3f}"]
                    for label, key in (("0.5%", "0_5pct"), ("1%", "1pct"), ("5%", "5pct"))]
        sections.append(
            f"<h2>{escape(name)}</h2>" + _calibration_svg(m["calibration_by_tenth"], f"{name}: calibration")
            + table(["top of the list", "positive predictive value", "sensitivity"], top_rows)
            + f"<h3>Fairness</h3><p>{len(flagged)} group(s) depart materially: observed/expected outside "
              f"{1 / MATERIAL_OE:.2f} to {MATERIAL_OE:.2f}, or AUROC more than {MATERIAL_AUROC} below overall, "
              "with the group's 95% interval excluding the whole population's value. AUROC within an age band "
              "is lower by nature, since age itself no longer separates people.</p>"
            + table(["by", "group", "people", "admitted", "AUROC", "AUPRC", "observed/expected", "calibration slope",
                     "in the top 5%", "PPV there", "sensitivity there", "flag"], fair_rows))
    body = (f"<p>Trained on people registered on {report['train_date']} ({report['train_people']:,}; outcome: an "
            f"emergency admission in the next 12 months), validated on {report['validation_date']} "
            f"({report['validation_people']:,} people, {report['validation_events']:,} admitted).</p>"
            + table(["model", "AUROC (95% CI)", "AUPRC (95% CI)", "calibration intercept", "calibration slope",
                     "PPV top 1%", "sensitivity top 5%", "share of the ceiling"], summary_rows)
            + ("<p class='note'>The ceiling is the AUROC of each person's true risk in the synthetic ICS: the best "
               "any model could do.</p>" if report.get("ceiling_auroc") else "")
            + "".join(sections) + MODEL_CARD)
    html_path = out / "report.html"
    html_path.write_text(page("Risk of emergency admission: model report", body), encoding="utf-8")
    return json_path, html_path
