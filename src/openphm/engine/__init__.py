"""Where SQL runs: DuckDB, embedded, by default."""
