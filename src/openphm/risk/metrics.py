"""How good a risk model is: discrimination, calibration, and performance at the top of the list.

- AUROC with the Hanley & McNeil (Radiology 1982;143:29-36) standard error and a normal 95% CI.
- AUPRC: average precision (scikit-learn), with the logit interval of Boyd K, Eng KH, Page CD,
  "Area under the precision-recall curve: point estimates and confidence intervals", ECML PKDD
  2013: logit(AP) +/- z / sqrt(n_positive x AP x (1 - AP)), back-transformed.
- Calibration (Van Calster B et al., "Calibration: the Achilles heel of predictive analytics",
  BMC Med 2019;17:230): the calibration intercept is a in logit(P(y)) = a + logit(p) (calibration
  in the large, slope fixed at 1); the calibration slope is b in logit(P(y)) = a' + b logit(p).
  Ideal values 0 and 1. Both fitted by Newton-Raphson maximum likelihood.
- Positive predictive value and sensitivity among the top 0.5%, 1% and 5% by predicted risk.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

TOP_SHARES = (0.005, 0.01, 0.05)


def auroc_with_ci(y: np.ndarray, p: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """AUROC and its Hanley-McNeil confidence interval."""
    y = np.asarray(y, dtype=int)
    n1, n0 = int(y.sum()), int(len(y) - y.sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("AUROC needs both outcomes among the people scored")
    a = float(roc_auc_score(y, p))
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    return a, max(0.0, a - z * se), min(1.0, a + z * se)


def auprc_with_ci(y: np.ndarray, p: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Average precision and its logit confidence interval (Boyd et al. 2013)."""
    ap = float(average_precision_score(y, p))
    positives = int(np.sum(y))
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    if positives == 0 or not 0 < ap < 1:
        return ap, ap, ap
    centre, half = math.log(ap / (1 - ap)), z / math.sqrt(positives * ap * (1 - ap))
    return ap, 1 / (1 + math.exp(-(centre - half))), 1 / (1 + math.exp(-(centre + half)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def _newton(x: np.ndarray, y: np.ndarray, offset: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Maximum-likelihood logistic coefficients for design x with an offset."""
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        mu = 1 / (1 + np.exp(-(x @ beta + offset)))
        gradient = x.T @ (y - mu)
        hessian = (x * (mu * (1 - mu))[:, None]).T @ x
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return beta


def calibration(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Calibration intercept (slope fixed at 1), slope, and observed/expected ratio."""
    y = np.asarray(y, dtype=float)
    lp = _logit(p)
    ones = np.ones((len(y), 1))
    intercept = float(_newton(ones, y, lp)[0])
    slope = float(_newton(np.column_stack([np.ones(len(y)), lp]), y, np.zeros(len(y)))[1])
    return {"calibration_intercept": intercept, "calibration_slope": slope,
            "observed_to_expected": float(y.sum() / np.asarray(p, dtype=float).sum())}


def top_of_list(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """PPV and sensitivity among the highest-risk 0.5%, 1% and 5%."""
    y = np.asarray(y, dtype=int)
    order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
    out = {}
    for share in TOP_SHARES:
        k = max(1, round(share * len(y)))
        hits = int(y[order[:k]].sum())
        label = f"{share * 100:g}pct".replace(".", "_")
        out[f"ppv_top_{label}"] = hits / k
        out[f"sensitivity_top_{label}"] = hits / max(1, int(y.sum()))
    return out


def calibration_table(y: np.ndarray, p: np.ndarray, groups: int = 10) -> list[dict[str, float]]:
    """Mean predicted and observed risk by tenth of predicted risk (for the calibration plot)."""
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    order = np.argsort(p, kind="stable")
    return [{"predicted": float(p[idx].mean()), "observed": float(y[idx].mean()), "people": len(idx)}
            for idx in np.array_split(order, groups) if len(idx)]


def evaluate(y: np.ndarray, p: np.ndarray) -> dict[str, float | list]:
    """Every measure of one model's predictions."""
    auroc, lo, hi = auroc_with_ci(y, p)
    auprc, plo, phi = auprc_with_ci(y, p)
    return {"auroc": auroc, "auroc_ci": [lo, hi], "auprc": auprc, "auprc_ci": [plo, phi],
            **calibration(y, p), **top_of_list(y, p), "people": len(y), "events": int(np.sum(y)),
            "calibration_by_tenth": calibration_table(y, p)}
