"""Confidence intervals and standardised rates as used in English public health profiles.

Methods follow Public Health England, "Technical Guide: Confidence Intervals" (2018) and
"Technical Guide: Common Public Health Statistics and their Confidence Intervals" (2008, APHO):
Wilson score intervals for proportions; exact Poisson limits for counts under 10 and Byar's
approximation from 10; Dobson's method for directly standardised rates; the same count limits
for indirectly standardised ratios (or exact Poisson limits for any count,
`poisson_exact_arrays`); Student's t for means.
"""

from openphm.stats.intervals import (
                                    byar_limits,
                                    count_interval_arrays,
                                    count_limits,
                                    count_limits_arrays,
                                    mean_ci,
                                    poisson_exact_arrays,
                                    poisson_exact_limits,
                                    rate,
                                    wilson,
                                    wilson_arrays,
)
from openphm.stats.standardised import ESP2013, dsr, isr

__all__ = ["ESP2013", "byar_limits", "count_interval_arrays", "count_limits", "count_limits_arrays", "dsr", "isr",
           "mean_ci", "poisson_exact_arrays", "poisson_exact_limits", "rate", "wilson", "wilson_arrays"]
