"""Risk of emergency admission within 12 months: features, models, reports and scoring."""
