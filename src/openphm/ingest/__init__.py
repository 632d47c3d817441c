"""Loading source extracts: every row loaded or quarantined with a reason, idempotently."""
