"""Identity: NHS number checks, pseudonymisation and record linkage."""
