"""Population segments: every person in exactly one segment at each month, by rules written as data."""
