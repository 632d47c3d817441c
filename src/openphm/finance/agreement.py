"""Risk-share agreements between the partners of an ICS, and how a year's spend is settled under one.

An agreement (YAML, checked against `agreement.schema.json`) names the partners (an acute trust, a
community provider, the council, the PCNs, ...), the settings of care whose spend each bears
(`openphm.finance.spend.SETTINGS`; no setting borne twice), each partner's budget, and the terms.
Pooled budgets under section 75 of the NHS Act 2006, with over- and underspends shared by an agreed
risk share, are how the Better Care Fund works (SCIE, "Pooling budgets and agreeing risk share",
https://www.scie.org.uk/integrated-care/better-care/guides/bring-budgets-together/pooling); the
corridor / shared excess / cap rule below is OpenPHM's own, written so that every pound is placed.

The rule, for one year (all amounts in pounds; positive = a loss to the partner):

1. variance_p = spend_p - budget_p (positive: an overspend).
2. own_p = variance_p clipped to +/- corridor x budget_p: the part inside the corridor, the partner's alone.
3. excess_p = variance_p - own_p: the part beyond the corridor.
4. An overspend excess of p is shared by `loss_share` (q bears loss_share[q] x excess_p, p itself included);
   an underspend excess of p by `gain_share` (q receives gain_share[q] x |excess_p|).
5. Cap: what q pays towards other partners' overspend excess (p != q) is at most cap_q; what it receives of
   their underspend excess is at most cap_q (the two capped apart); a capped total is cut pro rata over its
   lines. What the caps leave over is borne (or received) by the `residual` partner, who has no cap.
6. net_p = own_p + its lines (shares of its own and others' excess, after caps) + the residual if it is p.
   The nets sum to the total variance: nothing is lost or made.

Worked example (the test `test_hand_worked_settlement` checks it): corridor 2%; loss shares acute 0.5,
community 0.3, council 0.2; gain shares 0.4, 0.4, 0.2; council cap £0.5m; residual acute.
- acute: budget 100m, spend 106m: variance +6m, own +2m (2% of 100m), excess +4m.
- community: budget 50m, spend 47m: variance -3m, own -1m, excess -2m.
- council: budget 30m, spend 31.2m: variance +1.2m, own +0.6m, excess +0.6m.
- council owes 0.2 x 4m = 0.8m of acute's excess, capped to 0.5m; the 0.3m left over goes to acute.
- acute: 2 + 0.5x4 + 0.5x0.6 - 0.4x2 + 0.3 = +3.8m; community: -1 + 0.3x4 + 0.3x0.6 - 0.4x2 = -0.42m;
  council: 0.6 + 0.2x0.6 + 0.5 - 0.2x2 = +0.82m (its 0.4m of community's gain is within its cap).
  Sum 4.2m = 6 - 3 + 1.2.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import jsonschema
import numpy as np

from openphm.finance.spend import SETTINGS, year_start
from openphm.yaml_files import read_yaml

DEFAULT_GROWTH = 0.03
SHARE_TOLERANCE = 1e-9


class AgreementError(ValueError):
    """An agreement that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Partner:
    """One partner: `budget` is pounds, or None while it is the base year's spend x (1 + growth)."""

    id: str
    name: str
    bears: tuple[str, ...]
    budget: float | None
    growth: float = DEFAULT_GROWTH
    cap: float | None = None


@dataclass(frozen=True)
class Agreement:
    """A checked agreement: shares are partner id -> fraction (absent partners hold 0)."""

    name: str
    year: str
    partners: tuple[Partner, ...]
    corridor: float
    loss_share: dict[str, float]
    gain_share: dict[str, float]
    residual: str | None
    description: str = ""

    @property
    def ids(self) -> list[str]:
        """The partner ids, in the agreement's order."""
        return [p.id for p in self.partners]

    def partner(self, partner_id: str) -> Partner:
        """The partner with this id."""
        return next(p for p in self.partners if p.id == partner_id)

    @property
    def needs_baseline(self) -> bool:
        """Whether some budget is still 'baseline' (see `with_baseline_budgets`)."""
        return any(p.budget is None for p in self.partners)


@dataclass(frozen=True)
class ShareLine:
    """What a partner bears of one partner's excess: positive pays towards an overspend, negative receives
    a share of an underspend. `before_cap` is the amount before the partner's cap cut it."""

    of_partner: str
    kind: str  # "overspend" or "underspend"
    share: float
    before_cap: float
    amount: float


@dataclass(frozen=True)
class Settlement:
    """One partner's position for a year, line by line; `net` = own_share + sum of lines + residual."""

    partner: str
    budget: float
    spend: float
    variance: float
    own_share: float
    excess: float
    lines: tuple[ShareLine, ...]
    cap: float | None
    cut_by_cap: float
    residual: float
    net: float


def _schema() -> dict:
    return json.loads(Path(__file__).with_name("agreement.schema.json").read_text(encoding="utf-8"))


def _where(path: object) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(error: jsonschema.ValidationError) -> str:
    path = list(error.path)
    if error.validator == "enum" and len(path) >= 2 and path[-2] == "bears":
        return f"{error.instance!r} is not a setting (settings: {', '.join(SETTINGS)})"
    if error.validator == "oneOf" and path and path[-1] == "budget":
        return f"{error.instance!r} is not a budget: give pounds (a number above 0) or 'baseline'"
    return error.message


def load_agreement(path: Path) -> Agreement:
    """Read and check an agreement; AgreementError naming the file and the field for anything wrong."""
    data = read_yaml(path, AgreementError)
    return parse_agreement(data, str(path))


def parse_agreement(data: object, where: str = "agreement") -> Agreement:
    """Check an agreement already read into Python objects."""
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        raise AgreementError(f"{where}: {_where(errors[0].path)}: {_message(errors[0])}")
    assert isinstance(data, dict)
    try:
        year_start(data["year"])
    except ValueError as exc:
        raise AgreementError(f"{where}: year: {exc}") from None
    partners, borne_by, ids = [], {}, []
    for i, p in enumerate(data["partners"]):
        if p["id"] in ids:
            raise AgreementError(f"{where}: partners[{i}].id: {p['id']!r} is also partners[{ids.index(p['id'])}]")
        for setting in p["bears"]:
            if setting in borne_by:
                raise AgreementError(f"{where}: partners[{i}].bears: {setting!r} is already borne by "
                                     f"{borne_by[setting][0]} (partners[{borne_by[setting][1]}])")
            borne_by[setting] = (p["id"], i)
        ids.append(p["id"])
        budget = None if p["budget"] == "baseline" else float(p["budget"])
        partners.append(Partner(p["id"], p["name"], tuple(p["bears"]), budget,
                                float(p.get("growth", DEFAULT_GROWTH)), p.get("cap")))
    terms = data["terms"]
    for kind in ("loss_share", "gain_share"):
        for pid in terms[kind]:
            if pid not in ids:
                raise AgreementError(f"{where}: terms.{kind}.{pid}: not a partner (partners: {', '.join(ids)})")
        total = sum(terms[kind].values())
        if abs(total - 1) > SHARE_TOLERANCE:
            raise AgreementError(f"{where}: terms.{kind}: the shares sum to {total:g}, not 1")
    residual = terms.get("residual")
    if residual is not None and residual not in ids:
        raise AgreementError(f"{where}: terms.residual: {residual!r} is not a partner (partners: {', '.join(ids)})")
    capped = [p for p in partners if p.cap is not None]
    if capped and residual is None:
        raise AgreementError(f"{where}: terms.residual: {capped[0].id} has a cap, so the agreement must name the "
                             "partner who bears what the caps leave over")
    if residual is not None and any(p.id == residual for p in capped):
        raise AgreementError(f"{where}: partners[{ids.index(residual)}].cap: {residual} is the residual partner, "
                             "who bears what the caps leave over, so it cannot have a cap")
    return Agreement(name=data["name"], year=data["year"], partners=tuple(partners),
                     corridor=float(terms["corridor"]),
                     loss_share={pid: float(terms["loss_share"].get(pid, 0.0)) for pid in ids},
                     gain_share={pid: float(terms["gain_share"].get(pid, 0.0)) for pid in ids},
                     residual=residual, description=data.get("description", ""))


def with_baseline_budgets(agreement: Agreement, base_spend_by_setting: dict[str, float]) -> Agreement:
    """The agreement with every 'baseline' budget made pounds: the base year's spend on the partner's
    settings x (1 + growth)."""
    partners = []
    for p in agreement.partners:
        if p.budget is None:
            base = sum(float(base_spend_by_setting.get(s, 0.0)) for s in p.bears)
            if base <= 0:
                raise AgreementError(f"{agreement.name}: {p.id}: budget 'baseline' but the base year has no spend "
                                     f"on {', '.join(p.bears)}")
            p = replace(p, budget=base * (1 + p.growth))
        partners.append(p)
    return replace(agreement, partners=tuple(partners))


def settle_runs(agreement: Agreement, spend: np.ndarray) -> dict[str, np.ndarray]:
    """The rule of the module docstring over many years at once. `spend` is (partners x runs), in the
    agreement's partner order. Returns arrays: budget (P), variance, own, excess, net (P x R); loss and
    gain (q x p x R: what q bears of p's overspend excess / receives of p's underspend excess, after caps;
    gains positive), loss_before_cap and gain_before_cap, and residual (P x R)."""
    if agreement.needs_baseline:
        raise AgreementError(f"{agreement.name}: a 'baseline' budget has not been set from a base year")
    spend = np.atleast_2d(np.asarray(spend, dtype=float))
    ids = agreement.ids
    budget = np.array([p.budget for p in agreement.partners], dtype=float)
    variance = spend - budget[:, None]
    limit = agreement.corridor * budget[:, None]
    own = np.clip(variance, -limit, limit)
    excess = variance - own
    over, under = np.maximum(excess, 0.0), np.maximum(-excess, 0.0)
    loss_w = np.array([agreement.loss_share[i] for i in ids])
    gain_w = np.array([agreement.gain_share[i] for i in ids])
    loss_before = loss_w[:, None, None] * over[None, :, :]
    gain_before = gain_w[:, None, None] * under[None, :, :]
    loss, gain = loss_before.copy(), gain_before.copy()
    others = ~np.eye(len(ids), dtype=bool)
    residual = np.zeros_like(variance)
    left_over = np.zeros(variance.shape[1])
    for q, partner in enumerate(agreement.partners):
        if partner.cap is None:
            continue
        for lines, sign in ((loss, 1.0), (gain, -1.0)):
            to_others = (lines[q] * others[q][:, None]).sum(axis=0)
            paid = np.minimum(to_others, partner.cap)
            scale = np.divide(paid, to_others, out=np.ones_like(paid), where=to_others > 0)
            lines[q][others[q]] *= scale
            left_over += sign * (to_others - paid)
    if agreement.residual is not None:
        residual[ids.index(agreement.residual)] = left_over
    net = own + loss.sum(axis=1) - gain.sum(axis=1) + residual
    return {"budget": budget, "spend": spend, "variance": variance, "own": own, "excess": excess, "loss": loss,
            "gain": gain, "loss_before_cap": loss_before, "gain_before_cap": gain_before, "residual": residual,
            "net": net}


def settle(agreement: Agreement, spend_by_partner: dict[str, float]) -> dict[str, Settlement]:
    """One year's settlement, partner by partner and line by line (see the module docstring)."""
    missing = [pid for pid in agreement.ids if pid not in spend_by_partner]
    if missing:
        raise AgreementError(f"{agreement.name}: no spend given for {', '.join(missing)}")
    s = settle_runs(agreement, np.array([[float(spend_by_partner[pid])] for pid in agreement.ids]))
    out = {}
    for q, pid in enumerate(agreement.ids):
        lines = []
        for p, source in enumerate(agreement.ids):
            if s["loss_before_cap"][q, p, 0] > 0:
                lines.append(ShareLine(source, "overspend", agreement.loss_share[pid],
                                       float(s["loss_before_cap"][q, p, 0]), float(s["loss"][q, p, 0])))
            if s["gain_before_cap"][q, p, 0] > 0:
                lines.append(ShareLine(source, "underspend", agreement.gain_share[pid],
                                       -float(s["gain_before_cap"][q, p, 0]), -float(s["gain"][q, p, 0])))
        cut = sum(abs(line.before_cap - line.amount) for line in lines)
        out[pid] = Settlement(partner=pid, budget=float(s["budget"][q]), spend=float(s["spend"][q, 0]),
                              variance=float(s["variance"][q, 0]), own_share=float(s["own"][q, 0]),
                              excess=float(s["excess"][q, 0]), lines=tuple(lines),
                              cap=agreement.partner(pid).cap, cut_by_cap=cut,
                              residual=float(s["residual"][q, 0]), net=float(s["net"][q, 0]))
    total = sum(v.variance for v in out.values())
    assert math.isclose(sum(v.net for v in out.values()), total, rel_tol=1e-9, abs_tol=1e-6), "pounds lost"
    return out
