"""The web application: pages for analysts, clinicians, boards and the public (FastAPI)."""
