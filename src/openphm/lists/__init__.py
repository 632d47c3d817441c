"""Case-finding lists for multidisciplinary teams, declared as data."""
