"""Derived measures of the person: multimorbidity and frailty scores, segments, risk."""
