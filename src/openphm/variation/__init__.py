"""Variation tools for analysts' own data: SPC (XmR) charts and funnel plots."""

from openphm.variation.funnel import funnel
from openphm.variation.spc import xmr

__all__ = ["funnel", "xmr"]
