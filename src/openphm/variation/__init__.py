"""Variation tools for analysts' own data: SPC (XmR) charts, funnel plots, inequality and opportunity."""

from openphm.variation.funnel import funnel
from openphm.variation.inequality import opportunity, slope_index_of_inequality
from openphm.variation.spc import assurance_icon, variation_icon, xmr

__all__ = ["assurance_icon", "funnel", "opportunity", "slope_index_of_inequality", "variation_icon", "xmr"]
