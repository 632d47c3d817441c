"""Indicators declared as data (one YAML file each in definitions/), their statistics and variation."""
