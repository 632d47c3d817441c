"""Evaluating a new care model against a counterfactual, on the person record (`openphm evaluate`)
or on any tidy panel an analyst brings: staggered difference-in-differences (Callaway & Sant'Anna),
synthetic control and synthetic difference-in-differences, and the naive before-and-after beside them."""

from openphm.evaluate.did import BeforeAfter, StaggeredDiD, naive_before_after, staggered_did
from openphm.evaluate.synthetic import SyntheticResult, plain_did, synthetic_control, synthetic_did

__all__ = ["BeforeAfter", "StaggeredDiD", "SyntheticResult", "naive_before_after", "plain_did", "staggered_did",
           "synthetic_control", "synthetic_did"]
